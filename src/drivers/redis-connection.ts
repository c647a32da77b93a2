/**
 * How the Redis driver connects: TLS for `rediss://` URLs (the CA, client certificate and key as
 * `?ca=PATH&cert=PATH&key=PATH` or the `tls` option), and the one place that classifies failures.
 *
 * ioredis reports a connection that failed as "Connection is closed." and keeps the reason (a
 * refused connection, a wrong password, an untrusted certificate) in 'error' events: the driver
 * records them ({@link RedisErrorLog}) so that the error a call rejects with says why, and keeps
 * the real error as its `cause`.
 */
import tls from "node:tls";
import {
  BackendConfigurationError,
  BackendUnavailableError,
  InvalidArgumentError,
  type PoisonStoreError,
} from "../core/errors.js";
import {
  mergeTlsSources,
  namesTls,
  type ResolvedTls,
  resolveTls,
  type TlsOptions,
  type TlsSources,
  tlsConfigurationError,
} from "./tls.js";

/** URL parameters the driver reads itself (ioredis would take them as options). */
const TLS_PARAMS = ["ca", "cert", "key", "insecure-skip-tls-verify"] as const;

/** The TLS sources of a Redis URL (removing its TLS parameters from `parsed`), or null for a
 *  plain-text `redis://` URL. */
export function redisTlsSources(
  parsed: URL | null,
  option: TlsOptions | undefined,
): TlsSources | null {
  if (parsed === null) {
    if (option !== undefined) {
      throw new InvalidArgumentError(
        "tls",
        "goes with a rediss:// url; a client passed in brings its own",
      );
    }
    return null;
  }
  const secure = parsed.protocol === "rediss:";
  const fromUrl: Partial<TlsSources> = {};
  for (const name of ["ca", "cert", "key"] as const) {
    const value = parsed.searchParams.get(name);
    if (value !== null) fromUrl[name] = { value, setting: name };
  }
  const insecure = parsed.searchParams.get("insecure-skip-tls-verify");
  if (insecure !== null) {
    if (insecure !== "true" && insecure !== "false") {
      throw new InvalidArgumentError("url", "insecure-skip-tls-verify must be true or false");
    }
    fromUrl.rejectUnauthorized = insecure !== "true";
  }
  for (const name of TLS_PARAMS) parsed.searchParams.delete(name);
  const sources = mergeTlsSources(fromUrl, option);
  if (!secure && (namesTls(sources) || option !== undefined)) {
    throw new InvalidArgumentError("url", "TLS settings need a TLS scheme: rediss://");
  }
  return secure ? sources : null;
}

export function redisTls(sources: TlsSources): Promise<ResolvedTls> {
  return resolveTls(sources);
}

/** ioredis's own words for "the connection is gone", which hide the reason. */
const GENERIC =
  /Connection is closed|Stream isn't writeable|max retries per request|Reached the max retries/i;

/** The latest connection errors of a client, forgotten once it is ready again. */
export class RedisErrorLog {
  #recent: Error[] = [];

  record(error: Error): void {
    this.#recent.push(error);
    if (this.#recent.length > 8) this.#recent.shift();
  }

  clear(): void {
    this.#recent = [];
  }

  get recent(): readonly Error[] {
    return this.#recent;
  }
}

/**
 * A failed Redis call or connection, classified in one place: a BackendConfigurationError naming
 * what to fix (password, permissions, TLS), or for ioredis's generic "connection is closed" a
 * BackendUnavailableError that names and keeps the connection's real error (ECONNREFUSED…);
 * anything else unchanged.
 */
export function redisFailure(error: unknown, log: RedisErrorLog | null, secure: boolean): unknown {
  hideCredentials(error);
  for (const earlier of log?.recent ?? []) hideCredentials(earlier);
  const direct = redisConfigurationError(error);
  if (direct) return direct;
  if (!(error instanceof Error) || !GENERIC.test(error.message) || !log) return error;
  const recent = log.recent.filter((e) => !GENERIC.test(e.message));
  for (const candidate of [...recent].reverse()) {
    const configured = redisConfigurationError(candidate);
    if (configured) return configured;
  }
  const reason = recent.at(-1);
  if (!reason) return error;
  const code = (reason as { code?: unknown }).code;
  const hint =
    code === "ECONNRESET" && !secure
      ? "; if the server expects TLS on this port, use rediss://"
      : "";
  return new BackendUnavailableError(
    "redis",
    `${error.message.replace(/\.$/, "")} (${typeof code === "string" && !reason.message.includes(code) ? `${code}: ` : ""}${reason.message.trim()})${hint}`,
    reason,
  );
}

/** ioredis's ReplyError carries the command it answered, arguments and all: for AUTH (and HELLO
 *  … AUTH) that is the password, which anything printing the error (util.inspect, a logger)
 *  would show. Replace those arguments in place. */
function hideCredentials(error: unknown): void {
  const command = (error as { command?: { name?: unknown; args?: unknown } } | null)?.command;
  if (!command || typeof command !== "object") return;
  const name = String(command.name ?? "").toLowerCase();
  if (name === "auth" || name === "hello") command.args = ["(hidden)"];
}

export function redisConfigurationError(error: unknown): PoisonStoreError | null {
  if (!(error instanceof Error)) return null;
  const message = error.message.trim();
  if (/^WRONGPASS/.test(message) || /called without any password configured/i.test(message)) {
    return configuration(
      "password",
      `${message}; check the user name and password in the URL (redis://[USER]:PASSWORD@…)`,
      error,
    );
  }
  if (/^NOAUTH/.test(message)) {
    return configuration(
      "password",
      `${message}; the server requires a password: redis://[USER]:PASSWORD@…`,
      error,
    );
  }
  if (/^NOPERM/.test(message)) {
    return configuration(
      "permissions",
      `${message}; the ACL user needs the commands EVALSHA, EVAL, INFO, HGET, HGETALL (and XREAD, XRANGE for store.watch) and every key under the store's key prefix`,
      error,
    );
  }
  return tlsConfigurationError("redis", error, {
    "tls.ca": " (?ca=PATH, or tls.ca)",
    "tls.cert": " (?cert=PATH&key=PATH, or tls.cert and tls.key)",
    url: ": use redis:// for a plain-text port",
  });
}

/**
 * A first connection that failed, classified; for a TLS connection that was only reset, asked
 * again without writing (below), so that a refused client certificate reads as one.
 */
export async function explainConnectFailure(
  error: unknown,
  log: RedisErrorLog,
  settings: { tls: TlsSources | null; host: string; port: number; connectTimeoutMs: number },
): Promise<unknown> {
  const explained = redisFailure(error, log, settings.tls !== null);
  if (!settings.tls || !(explained instanceof BackendUnavailableError)) return explained;
  const reset = (explained.cause as { code?: unknown } | undefined)?.code;
  if (reset !== "ECONNRESET" && reset !== "EPIPE") return explained;
  const alert = await tlsHandshakeAlert(
    settings.host,
    settings.port,
    await redisTls(settings.tls),
    Math.min(settings.connectTimeoutMs, 1000),
  );
  return (alert && redisConfigurationError(alert)) ?? explained;
}

/**
 * Why a TLS server closed the connection: with TLS 1.3 a server that refuses the client's
 * certificate says so after the handshake, and a client that wrote at once (ioredis sends AUTH)
 * sees only a reset. A handshake that writes nothing reads the server's alert. Resolves with the
 * TLS error, or null when the server kept quiet for `ms`.
 */
export function tlsHandshakeAlert(
  host: string,
  port: number,
  options: ResolvedTls,
  ms: number,
): Promise<Error | null> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, ...options });
    const done = (result: Error | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(null), ms);
    socket.on("error", (error) => done(error));
    socket.on("close", () => done(null));
  });
}

function configuration(setting: string, message: string, cause: unknown) {
  return new BackendConfigurationError("redis", setting, message, cause);
}
