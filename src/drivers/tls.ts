/**
 * TLS settings shared by the networked drivers: the `tls` option (PEM text or file paths), the
 * certificate files named in URLs, read and checked once at init, and the one place that tells a
 * TLS failure that needs a configuration change (an untrusted server certificate, a refused
 * client certificate, a port that does not speak TLS) from a network failure.
 *
 * Key material is never put into an error: a value that looks like PEM text is named by its
 * setting only, and a file is named by its path.
 */
import { readFile } from "node:fs/promises";
import { createSecureContext } from "node:tls";
import { BackendConfigurationError, InvalidArgumentError } from "../core/errors.js";

/** TLS for a networked backend. Verification of the server is on unless `rejectUnauthorized`
 *  is `false`. */
export interface TlsOptions {
  /** The CA certificate(s) to trust instead of Node's built-in list: PEM text or a file path. */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** This client's certificate (when the server asks for one): PEM text or a file path. */
  cert?: string | Buffer;
  /** The private key of `cert`: PEM text or a file path. */
  key?: string | Buffer;
  /** The passphrase of an encrypted `key`. */
  passphrase?: string;
  /** Verify the server's certificate and host name. Default `true`. `false` is UNSAFE: anyone
   *  on the network path can pose as the server and read the credentials sent to it. */
  rejectUnauthorized?: boolean;
  /** The name the server's certificate must carry, when it differs from the host connected to. */
  servername?: string;
}

/** Where a TLS value came from, for error messages: `tls.ca`, or a URL parameter such as `ca`. */
export interface TlsValue {
  value: string | Buffer | ReadonlyArray<string | Buffer>;
  setting: string;
}

/** TLS settings gathered from a URL and options, not yet read from disk. */
export interface TlsSources {
  ca?: TlsValue;
  cert?: TlsValue;
  key?: TlsValue;
  passphrase?: string;
  rejectUnauthorized: boolean;
  servername?: string;
}

/** What `tls.connect` takes: PEM text, verification explicit. */
export interface ResolvedTls {
  ca?: string[];
  cert?: string;
  key?: string;
  passphrase?: string;
  rejectUnauthorized: boolean;
  servername?: string;
}

/**
 * Merge the URL's TLS parameters with the `tls` option. Naming one value in both places is
 * ambiguous and refused; `rejectUnauthorized: false` from either place turns verification off.
 */
export function mergeTlsSources(
  fromUrl: Partial<TlsSources>,
  option: TlsOptions | undefined,
): TlsSources {
  if (option !== undefined && (option === null || typeof option !== "object")) {
    throw new InvalidArgumentError(
      "tls",
      "must be an object { ca?, cert?, key?, rejectUnauthorized? }",
    );
  }
  const pick = (name: "ca" | "cert" | "key"): TlsValue | undefined => {
    const given = option?.[name];
    const urlValue = fromUrl[name];
    if (given !== undefined && urlValue !== undefined) {
      throw new InvalidArgumentError(
        `tls.${name}`,
        `is given both as an option and in the URL (${urlValue.setting}); give it once`,
      );
    }
    return given !== undefined ? { value: given, setting: `tls.${name}` } : urlValue;
  };
  if (option?.rejectUnauthorized !== undefined && typeof option.rejectUnauthorized !== "boolean") {
    throw new InvalidArgumentError("tls.rejectUnauthorized", "must be true or false");
  }
  const sources: TlsSources = {
    rejectUnauthorized:
      option?.rejectUnauthorized !== false && fromUrl.rejectUnauthorized !== false,
  };
  const ca = pick("ca");
  const cert = pick("cert");
  const key = pick("key");
  if (ca) sources.ca = ca;
  if (cert) sources.cert = cert;
  if (key) sources.key = key;
  const passphrase = option?.passphrase ?? fromUrl.passphrase;
  if (passphrase !== undefined) sources.passphrase = passphrase;
  const servername = option?.servername ?? fromUrl.servername;
  if (servername !== undefined) sources.servername = servername;
  if ((sources.cert === undefined) !== (sources.key === undefined)) {
    throw new InvalidArgumentError(
      sources.cert ? (sources.cert.setting === "tls.cert" ? "tls.key" : "key") : "cert",
      "a client certificate needs both its certificate and its private key",
    );
  }
  return sources;
}

/** True when any TLS setting was given (so a plain-text URL scheme contradicts it). */
export function namesTls(sources: TlsSources): boolean {
  return (
    sources.ca !== undefined ||
    sources.cert !== undefined ||
    sources.key !== undefined ||
    !sources.rejectUnauthorized ||
    sources.servername !== undefined
  );
}

/** Read every file named, and check that the certificates and key load (a wrong file or a key
 *  that does not match its certificate fails here, typed, before anything connects). */
export async function resolveTls(sources: TlsSources): Promise<ResolvedTls> {
  const resolved: ResolvedTls = { rejectUnauthorized: sources.rejectUnauthorized };
  if (sources.ca) {
    const values = Array.isArray(sources.ca.value) ? sources.ca.value : [sources.ca.value];
    resolved.ca = await Promise.all(
      values.map((value) => pemOf(value as string | Buffer, (sources.ca as TlsValue).setting)),
    );
  }
  if (sources.cert) resolved.cert = await pemOf(single(sources.cert), sources.cert.setting);
  if (sources.key) resolved.key = await pemOf(single(sources.key), sources.key.setting);
  if (sources.passphrase !== undefined) resolved.passphrase = sources.passphrase;
  if (sources.servername !== undefined) resolved.servername = sources.servername;
  try {
    createSecureContext({
      ...(resolved.ca ? { ca: resolved.ca } : {}),
      ...(resolved.cert ? { cert: resolved.cert } : {}),
      ...(resolved.key ? { key: resolved.key } : {}),
      ...(resolved.passphrase !== undefined ? { passphrase: resolved.passphrase } : {}),
    });
  } catch (error) {
    // OpenSSL's message names the problem ("no start line", "key values mismatch"), never the
    // material itself.
    const setting = [sources.ca, sources.cert, sources.key]
      .filter((value): value is TlsValue => value !== undefined)
      .map((value) => value.setting)
      .join(", ");
    throw new InvalidArgumentError(
      setting || "tls",
      `the certificates or key do not load: ${(error as Error).message}`,
    );
  }
  return resolved;
}

function single(source: TlsValue): string | Buffer {
  if (Array.isArray(source.value)) {
    throw new InvalidArgumentError(source.setting, "must be one certificate or key, not a list");
  }
  return source.value as string | Buffer;
}

/** PEM text as given, or the text of the file it names. */
async function pemOf(value: string | Buffer, setting: string): Promise<string> {
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidArgumentError(setting, "must be PEM text or a file path");
  }
  if (looksLikePem(value)) return value;
  try {
    return await readFile(value, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code ?? (error as Error).message;
    throw new InvalidArgumentError(
      setting,
      `cannot read the file ${printablePath(value)} (${code})`,
    );
  }
}

/** PEM text, or anything else that must not be printed as if it were a path. */
function looksLikePem(value: string): boolean {
  return value.includes("-----BEGIN") || value.includes("\n") || value.length > 4096;
}

function printablePath(path: string): string {
  return JSON.stringify(path);
}

/** How a TLS failure reads to the person who must fix it, or null when `error` is not one. */
export interface TlsFailure {
  /** What to fix: `tls.ca` (the server's certificate is not trusted), `tls.servername` (it
   *  names another host), `tls.cert` (the server refused this client's certificate or its
   *  absence), `url` (the port does not speak TLS). */
  setting: "tls.ca" | "tls.servername" | "tls.cert" | "url";
  message: string;
}

const UNTRUSTED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_REVOKED",
  "INVALID_CA",
  "INVALID_PURPOSE",
]);

/** The alerts a server sends when it refuses the client's certificate, or its absence. */
const CLIENT_CERT_REFUSED =
  /ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|ACCESS_DENIED|UNSUPPORTED_CERTIFICATE|CERTIFICATE_EXPIRED|HANDSHAKE_FAILURE)/;

/** OpenSSL's verification messages, for clients that replace the error's code (mysql2 sets
 *  HANDSHAKE_SSL_ERROR) and keep only the message. */
const UNTRUSTED_MESSAGE =
  /self[- ]signed certificate|unable to verify the first certificate|unable to get (local )?issuer certificate|certificate has expired|certificate is not yet valid|certificate signature failure|unsuitable certificate purpose|invalid CA certificate/i;

/** Classify a TLS failure from a socket (anywhere on `error`'s cause chain). */
export function tlsFailure(error: unknown): TlsFailure | null {
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    const message = current instanceof Error ? current.message : String(current);
    if (typeof code === "string") {
      if (UNTRUSTED.has(code)) {
        return {
          setting: "tls.ca",
          message: `the server's certificate is not trusted (${code}: ${message}); give the CA that signed it`,
        };
      }
      if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
        return {
          setting: "tls.servername",
          message: `the server's certificate does not name the host connected to (${message}); connect by a name the certificate carries, or set tls.servername`,
        };
      }
      if (CLIENT_CERT_REFUSED.test(code)) {
        return {
          setting: "tls.cert",
          message: `the server refused the TLS handshake (${code}): it requires a client certificate signed by a CA it trusts; give the client certificate and key`,
        };
      }
      if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || code === "ERR_SSL_PACKET_LENGTH_TOO_LONG") {
        return {
          setting: "url",
          message: `the server does not speak TLS on this port (${code}); use the plain-text URL form, or the server's TLS port`,
        };
      }
    }
    if (UNTRUSTED_MESSAGE.test(message)) {
      return {
        setting: "tls.ca",
        message: `the server's certificate is not trusted (${message}); give the CA that signed it`,
      };
    }
    if (/does not match certificate's altnames/i.test(message)) {
      return {
        setting: "tls.servername",
        message: `the server's certificate does not name the host connected to (${message}); connect by a name the certificate carries, or set tls.servername`,
      };
    }
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}

/** Where a backend's user sets what a {@link TlsFailure} names, appended to its message as is:
 *  `" (sslrootcert=PATH, or tls.ca)"`. A setting without a hint gets none. */
export type TlsFixHints = Partial<Record<TlsFailure["setting"], string>>;

/**
 * A TLS failure from `backend` as the BackendConfigurationError that says what to fix and where
 * (`fix`, the backend's own spelling of each setting), or null when `error` is not one. `about`
 * goes before the message (the etcd endpoint that failed).
 */
export function tlsConfigurationError(
  backend: string,
  error: unknown,
  fix: TlsFixHints,
  about = "",
): BackendConfigurationError | null {
  const failure = tlsFailure(error);
  if (!failure) return null;
  return new BackendConfigurationError(
    backend,
    failure.setting,
    `${about}${failure.message}${fix[failure.setting] ?? ""}`,
    error,
  );
}
