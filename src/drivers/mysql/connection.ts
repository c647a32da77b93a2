/**
 * How the MySQL/MariaDB driver connects: the TLS parameters of a `mysql://` URL, spelled as the
 * `mysql` client's options (`ssl-mode`, `ssl-ca`, `ssl-cert`, `ssl-key`), merged with the `tls`
 * option; and the one place that classifies connection failures.
 *
 * | URL                                  | TLS | server certificate checked                 |
 * |--------------------------------------|-----|--------------------------------------------|
 * | (no ssl parameter)                   | no  | —                                          |
 * | `ssl-mode=DISABLED`                  | no  | —                                          |
 * | `ssl-mode=VERIFY_IDENTITY`, `REQUIRED`, or `ssl-ca=PATH` alone | yes | chain and host name (REQUIRED is stricter than the mysql client's) |
 * | `ssl-mode=VERIFY_CA`                 | yes | chain only                                 |
 * | `ssl-verify-server-cert=false`       | yes | NOT checked (UNSAFE: anyone on the path can pose as the server) |
 */
import {
  BackendConfigurationError,
  InvalidArgumentError,
  type PoisonStoreError,
} from "../../core/errors.js";
import {
  mergeTlsSources,
  type ResolvedTls,
  resolveTls,
  type TlsOptions,
  type TlsSources,
  tlsConfigurationError,
} from "../tls.js";

export interface MysqlConnection {
  /** The URL mysql2 receives: `mysql:` scheme, TLS parameters removed (passed as `ssl`). */
  uri: string;
  tls: (TlsSources & { checkHostName: boolean }) | null;
  /** `change-log=off` in the URL: no change log (the driver's `changeLog: false`); null when
   *  the URL does not say. */
  changeLog: boolean | null;
}

/** Read by the driver; mysql2 never sees them (it would warn about unknown options). */
const TLS_PARAMS = [
  "ssl-mode",
  "ssl-ca",
  "ssl-cert",
  "ssl-key",
  "ssl-verify-server-cert",
  "change-log",
];

export function mysqlConnection(url: string, option: TlsOptions | undefined): MysqlConnection {
  const uri = url.replace(/^mariadb:/i, "mysql:");
  const question = uri.indexOf("?");
  const query = question < 0 ? "" : uri.slice(question + 1).replace(/#.*$/, "");
  const params = new URLSearchParams(query);
  if (params.has("ssl") && [...params.keys()].some((name) => name.startsWith("ssl-"))) {
    throw new InvalidArgumentError(
      "url",
      "give TLS either as ssl-mode/ssl-ca/… or as mysql2's ssl, not both",
    );
  }
  const mode = params.get("ssl-mode")?.toUpperCase() ?? null;
  let enabled: boolean;
  let checkHostName = true;
  switch (mode) {
    case null:
      enabled =
        option !== undefined ||
        params.has("ssl-ca") ||
        params.has("ssl-cert") ||
        params.has("ssl-key") ||
        params.has("ssl-verify-server-cert");
      break;
    case "DISABLED":
      enabled = false;
      break;
    case "REQUIRED":
    case "VERIFY_IDENTITY":
      enabled = true;
      break;
    case "VERIFY_CA":
      enabled = true;
      checkHostName = false;
      break;
    default:
      throw new InvalidArgumentError(
        "url",
        `ssl-mode=${mode} is not supported; use DISABLED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY`,
      );
  }
  const fromUrl: Partial<TlsSources> = {};
  for (const name of ["ca", "cert", "key"] as const) {
    const value = params.get(`ssl-${name}`);
    if (value !== null) fromUrl[name] = { value, setting: `ssl-${name}` };
  }
  const verify = params.get("ssl-verify-server-cert");
  if (verify !== null) {
    if (verify !== "true" && verify !== "false") {
      throw new InvalidArgumentError("url", "ssl-verify-server-cert must be true or false");
    }
    if (verify === "false") fromUrl.rejectUnauthorized = false;
  }
  const changeLogParam = params.get("change-log");
  if (changeLogParam !== null && changeLogParam !== "on" && changeLogParam !== "off") {
    throw new InvalidArgumentError("url", "change-log must be on or off");
  }
  const sources = mergeTlsSources(fromUrl, option);
  if (!enabled && (option !== undefined || Object.keys(fromUrl).length > 0)) {
    throw new InvalidArgumentError(
      "url",
      "ssl-mode=DISABLED contradicts the TLS settings given; remove one",
    );
  }
  const others = query
    .split("&")
    .filter((part) => part !== "" && !TLS_PARAMS.includes(decodeName(part)));
  const base = question < 0 ? uri.replace(/#.*$/, "") : uri.slice(0, question);
  return {
    uri: others.length > 0 ? `${base}?${others.join("&")}` : base,
    tls: enabled ? { ...sources, checkHostName } : null,
    changeLog: changeLogParam === null ? null : changeLogParam === "on",
  };
}

/** What mysql2 takes as `ssl`: it checks the host name only when told (`verifyIdentity`). */
export async function mysqlSsl(
  tls: NonNullable<MysqlConnection["tls"]>,
): Promise<ResolvedTls & { verifyIdentity: boolean }> {
  const resolved = await resolveTls(tls);
  return { ...resolved, verifyIdentity: tls.checkHostName && resolved.rejectUnauthorized };
}

function decodeName(part: string): string {
  const name = part.split("=")[0] as string;
  try {
    return decodeURIComponent(name.replaceAll("+", " "));
  } catch {
    return name;
  }
}

const ER_DBACCESS_DENIED_ERROR = 1044;
const ER_ACCESS_DENIED_ERROR = 1045;
const ER_BAD_DB_ERROR = 1049;
const ER_TABLEACCESS_DENIED_ERROR = 1142;
const ER_PROCACCESS_DENIED_ERROR = 1370;
const ER_SPECIFIC_ACCESS_DENIED_ERROR = 1227;
const ER_BINLOG_CREATE_ROUTINE_NEED_SUPER = 1419;

/**
 * A failure to connect or to run a statement, classified in one place: a BackendConfigurationError
 * naming what to fix (credentials, database, privileges, TLS), or null when it is something else
 * (the network, the server's load: the caller reports it as unavailable).
 */
export function mysqlConfigurationError(error: unknown): PoisonStoreError | null {
  if (!(error instanceof Error)) return null;
  const errno = (error as { errno?: unknown }).errno;
  const code = (error as { code?: unknown }).code;
  const message = error.message;
  switch (errno) {
    case ER_ACCESS_DENIED_ERROR:
      return configuration(
        "password",
        `${message}; check the user name and password in the URL, and give a client certificate (ssl-cert, ssl-key) if the account requires one (REQUIRE X509)`,
        error,
      );
    case ER_BAD_DB_ERROR:
    case ER_DBACCESS_DENIED_ERROR:
      return configuration(
        "database",
        `${message}; create the database and grant the user access to it, or name another in the URL's path`,
        error,
      );
    case ER_TABLEACCESS_DENIED_ERROR:
    case ER_PROCACCESS_DENIED_ERROR:
    case ER_SPECIFIC_ACCESS_DENIED_ERROR:
      return configuration(
        "privileges",
        `${message}; the user needs SELECT, INSERT, UPDATE, DELETE, CREATE, INDEX, CREATE ROUTINE, TRIGGER and EXECUTE on the database (without TRIGGER, open the driver with changeLog: false)`,
        error,
      );
    case ER_BINLOG_CREATE_ROUTINE_NEED_SUPER:
      return configuration(
        "privileges",
        `${message}; with binary logging on, creating the driver's change log triggers needs log_bin_trust_function_creators = 1 on the server (or a user with SUPER), or open the driver with changeLog: false (store.watch then polls)`,
        error,
      );
  }
  if (/insecure transport/i.test(message)) {
    return configuration(
      "ssl-mode",
      `${message}; the server requires TLS: add ssl-mode=VERIFY_IDENTITY&ssl-ca=PATH`,
      error,
    );
  }
  if (code === "HANDSHAKE_NO_SSL_SUPPORT" || /does not support secure connection/i.test(message)) {
    return configuration(
      "ssl-mode",
      `${message}; enable TLS on the server, or (over a trusted network only) use ssl-mode=DISABLED`,
      error,
    );
  }
  return tlsConfigurationError("mysql", error, {
    "tls.ca": " (ssl-ca=PATH, or tls.ca)",
    "tls.cert": " (ssl-cert=PATH&ssl-key=PATH, or tls.cert and tls.key)",
  });
}

function configuration(setting: string, message: string, cause: unknown) {
  return new BackendConfigurationError("mysql", setting, message, cause);
}
