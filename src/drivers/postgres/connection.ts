/**
 * How the PostgreSQL driver connects: the TLS parameters of a `postgres://` URL, read the way
 * `pg` users write them (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`), merged with the `tls`
 * option; and the one place that classifies connection failures.
 *
 * | URL                      | TLS | server certificate checked                          |
 * |--------------------------|-----|-----------------------------------------------------|
 * | (no ssl parameter)       | no  | —                                                   |
 * | `sslmode=disable`        | no  | —                                                   |
 * | `sslmode=require`, `prefer`, `verify-full`, `ssl=true` | yes | chain and host name (as `pg` does; stricter than libpq's require) |
 * | `sslmode=verify-ca`      | yes | chain only (libpq's meaning)                        |
 * | `sslmode=no-verify`      | yes | NOT checked (UNSAFE: anyone on the path can pose as the server) |
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

/** The URL `pg` receives (TLS parameters removed: the driver passes them as `ssl`) and the TLS
 *  to use, null for none. */
export interface PostgresConnection {
  connectionString: string;
  tls: (TlsSources & { checkHostName: boolean }) | null;
  /** `prepare=true|false` in the URL (named prepared statements), undefined when absent. */
  prepare?: boolean;
}

/** The URL parameters the driver reads itself; `pg` never sees them. */
const DRIVER_PARAMS = ["ssl", "sslmode", "sslrootcert", "sslcert", "sslkey", "prepare"];

export function postgresConnection(
  url: string,
  option: TlsOptions | undefined,
): PostgresConnection {
  const { base, params, others } = splitQuery(url);
  if (params.has("sslpassword")) {
    // A secret in a URL ends up in logs and `store.location`: take it as an option instead.
    throw new InvalidArgumentError(
      "url",
      "sslpassword is not read from the URL (it would be shown wherever the URL is); give the key's passphrase as tls.passphrase",
    );
  }
  if (params.has("uselibpqcompat")) {
    throw new InvalidArgumentError(
      "url",
      "uselibpqcompat is not supported: the driver reads sslmode itself (verify-full, verify-ca, require, no-verify, disable; see docs/BACKENDS-SQL.md)",
    );
  }
  const prepareParam = params.get("prepare");
  if (prepareParam !== null && !["true", "1", "false", "0"].includes(prepareParam)) {
    throw new InvalidArgumentError("url", "prepare must be true or false");
  }
  const mode = params.get("sslmode");
  const ssl = params.get("ssl");
  if (ssl !== null && !["true", "1", "false", "0"].includes(ssl)) {
    throw new InvalidArgumentError("url", "ssl must be true or false");
  }
  let enabled: boolean;
  let checkHostName = true;
  let rejectUnauthorized = true;
  if (mode !== null) {
    switch (mode) {
      case "disable":
        enabled = false;
        break;
      case "prefer":
      case "require":
      case "verify-full":
        enabled = true;
        break;
      case "verify-ca":
        enabled = true;
        checkHostName = false;
        break;
      case "no-verify":
        enabled = true;
        rejectUnauthorized = false;
        break;
      default:
        throw new InvalidArgumentError(
          "url",
          `sslmode=${mode} is not supported; use disable, require, verify-ca, verify-full or no-verify`,
        );
    }
  } else if (ssl !== null) {
    enabled = ssl === "true" || ssl === "1";
  } else {
    enabled =
      option !== undefined ||
      params.has("sslrootcert") ||
      params.has("sslcert") ||
      params.has("sslkey");
  }
  const fromUrl: Partial<TlsSources> = {};
  for (const [param, name] of [
    ["sslrootcert", "ca"],
    ["sslcert", "cert"],
    ["sslkey", "key"],
  ] as const) {
    const value = params.get(param);
    if (value !== null) fromUrl[name] = { value, setting: param };
  }
  if (!rejectUnauthorized) fromUrl.rejectUnauthorized = false;
  const sources = mergeTlsSources(fromUrl, option);
  if (!enabled && (option !== undefined || Object.keys(fromUrl).length > 0)) {
    throw new InvalidArgumentError(
      "url",
      "sslmode=disable (or ssl=false) contradicts the TLS settings given; remove one",
    );
  }
  if (mode === "verify-ca" && !sources.ca) {
    throw new InvalidArgumentError(
      "url",
      "sslmode=verify-ca needs the CA that signs the server's certificate (sslrootcert=PATH or tls.ca): with the public CAs, any certificate they issued would pass",
    );
  }
  return {
    connectionString: others.length > 0 ? `${base}?${others.join("&")}` : base,
    tls: enabled ? { ...sources, checkHostName } : null,
    ...(prepareParam === null ? {} : { prepare: prepareParam === "true" || prepareParam === "1" }),
  };
}

/** What `pg` takes as `ssl`. */
export async function postgresSsl(
  tls: NonNullable<PostgresConnection["tls"]>,
): Promise<ResolvedTls & { checkServerIdentity?: () => undefined }> {
  const resolved = await resolveTls(tls);
  return tls.checkHostName ? resolved : { ...resolved, checkServerIdentity: () => undefined };
}

/** The URL before its query, the query's values, and its parts other than the driver's own (kept
 *  as written, so `pg` reads them exactly as before). */
function splitQuery(url: string): { base: string; params: URLSearchParams; others: string[] } {
  const hash = url.indexOf("#");
  const withoutHash = hash >= 0 ? url.slice(0, hash) : url;
  const question = withoutHash.indexOf("?");
  if (question < 0) return { base: withoutHash, params: new URLSearchParams(), others: [] };
  const query = withoutHash.slice(question + 1);
  const others = query
    .split("&")
    .filter((part) => part !== "" && !DRIVER_PARAMS.includes(decodeName(part)));
  return { base: withoutHash.slice(0, question), params: new URLSearchParams(query), others };
}

function decodeName(part: string): string {
  const name = part.split("=")[0] as string;
  try {
    return decodeURIComponent(name.replaceAll("+", " "));
  } catch {
    return name;
  }
}

/** PostgreSQL's SQLSTATE codes that mean "fix the setup", not "retry". */
const CONFIGURATION_CODES: Record<string, { setting: string; fix: string }> = {
  "28P01": { setting: "password", fix: "check the user name and password in the URL" },
  "3D000": {
    setting: "database",
    fix: "create the database, or name an existing one in the URL's path",
  },
  "42501": {
    setting: "privileges",
    fix: "grant the user CREATE on the schema (for the tables) and SELECT, INSERT, UPDATE, DELETE on them",
  },
};

/**
 * A failure to connect or to run a statement, classified in one place: a BackendConfigurationError
 * naming what to fix (credentials, database, pg_hba.conf, TLS), or null when it is something
 * else (the network, the server's load: the caller reports it as unavailable).
 */
export function postgresConfigurationError(error: unknown): PoisonStoreError | null {
  if (!(error instanceof Error)) return null;
  const code = (error as { code?: unknown }).code;
  const message = error.message;
  const known = typeof code === "string" ? CONFIGURATION_CODES[code] : undefined;
  if (known) {
    return new BackendConfigurationError(
      "postgres",
      known.setting,
      `${message}; ${known.fix}`,
      error,
    );
  }
  if (code === "28000") {
    if (/certificate/i.test(message)) {
      return configuration(
        "tls.cert",
        `${message}; give a client certificate the server trusts (sslcert=PATH&sslkey=PATH, or tls.cert and tls.key)`,
        error,
      );
    }
    if (/no encryption/i.test(message)) {
      return configuration(
        "sslmode",
        `${message}; the server accepts this user only over TLS: add sslmode=verify-full&sslrootcert=PATH`,
        error,
      );
    }
    if (/role .* does not exist/i.test(message)) {
      return configuration("user", `${message}; check the user name in the URL`, error);
    }
    return configuration(
      "pg_hba.conf",
      `${message}; the server's pg_hba.conf has no rule letting this user, database and host in`,
      error,
    );
  }
  if (/does not support SSL/i.test(message)) {
    return configuration(
      "sslmode",
      `${message}; enable ssl on the server, or (over a trusted network only) use sslmode=disable`,
      error,
    );
  }
  if (/client password must be a string|password authentication failed/i.test(message)) {
    return configuration("password", `${message}; give the password in the URL`, error);
  }
  return tlsConfigurationError("postgres", error, {
    "tls.ca": " (sslrootcert=PATH, or tls.ca)",
    "tls.cert": " (sslcert=PATH&sslkey=PATH, or tls.cert and tls.key)",
  });
}

function configuration(setting: string, message: string, cause: unknown) {
  return new BackendConfigurationError("postgres", setting, message, cause);
}
