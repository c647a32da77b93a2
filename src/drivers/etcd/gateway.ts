/**
 * The etcd driver's client for etcd's JSON gateway (`POST /v3/…`): endpoints, failover, TLS and
 * etcd's own authentication, over node:http / node:https (no dependency; TLS options reach the
 * sockets directly). The driver hands it request bodies and gets parsed answers or typed errors.
 *
 * What is sent again, and where:
 * - a request that certainly never reached a server (connection refused, DNS, a TLS handshake
 *   that failed) goes to the next endpoint;
 * - a read goes to the next endpoint after any connection failure;
 * - a write whose connection failed once the request may have been sent is NEVER sent again:
 *   its first attempt may have applied, and an answer from a second attempt ("absent") could
 *   contradict it. It fails with BackendUnavailableError (outcome unknown);
 * - a request the server refused for its auth token (expired, or the auth store changed) was not
 *   executed: it is sent once more with a fresh token.
 */
import http from "node:http";
import https from "node:https";
import { deadlinesOf } from "../../core/deadlines.js";
import {
  BackendConfigurationError,
  BackendUnavailableError,
  InvalidArgumentError,
  PoisonStoreError,
} from "../../core/errors.js";
import {
  mergeTlsSources,
  namesTls,
  type ResolvedTls,
  resolveTls,
  type TlsOptions,
  type TlsSources,
  tlsConfigurationError,
} from "../tls.js";

/** etcd's default `--max-request-bytes`: 1.5 MiB. */
export const DEFAULT_ETCD_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

/** One HTTP exchange with one endpoint, as the transport sees it. */
export interface EtcdHttpRequest {
  /** `http://host:port` or `https://host:port`. */
  endpoint: string;
  /** `/v3/kv/txn`, `/v3/kv/range`, `/v3/auth/authenticate`, … */
  path: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

export interface EtcdHttpResponse {
  status: number;
  body: string;
}

/**
 * Sends requests: `(request, send) => send(request)` is the default. Tests count or delay
 * requests with it. An error thrown for a request that certainly did not reach the server should
 * be an {@link EtcdTransportError} with `sent: false` (so it may go to another endpoint); any
 * other error is taken as "may have been sent".
 */
export type EtcdTransport = (
  request: EtcdHttpRequest,
  send: (request: EtcdHttpRequest) => Promise<EtcdHttpResponse>,
) => Promise<EtcdHttpResponse>;

/** A failed exchange, with what is known of whether the request reached the server. */
export class EtcdTransportError extends Error {
  /** False only when the request certainly never reached a server. */
  readonly sent: boolean;
  readonly timedOut: boolean;
  /** The socket's error code (`ECONNREFUSED`, `ECONNRESET`, `ENOTFOUND`…), when it had one. */
  readonly code: string | undefined;

  constructor(message: string, options: { sent: boolean; timedOut?: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = "EtcdTransportError";
    this.sent = options.sent;
    this.timedOut = options.timedOut ?? false;
    const code = (options.cause as { code?: unknown } | undefined)?.code;
    this.code = typeof code === "string" ? code : undefined;
  }
}

/** Where and how to reach etcd. */
export interface EtcdConnectionOptions {
  /** `etcd://[user:password@]host:port[,host:port…][?ca=PATH&cert=PATH&key=PATH]`, or
   *  `etcds://…` for TLS. */
  url?: string;
  /** Instead of a URL: base URLs such as `https://10.0.0.5:2379`, tried in order. */
  endpoints?: string[];
  /** TLS for every endpoint (PEM text or file paths); implied by `etcds://` / `https://`. */
  tls?: TlsOptions;
  /** etcd user (auth enabled on the server); with `password`. The URL's user:password is the
   *  same. */
  username?: string;
  password?: string;
}

/** The parsed location: endpoints with their scheme, TLS, credentials and the URL's other
 *  parameters (for the driver: metaPrefix, maxRequestBytes). */
export interface EtcdLocation {
  endpoints: string[];
  tls: TlsSources | null;
  credentials: { username: string; password: string } | null;
  params: URLSearchParams;
}

/** The URL parameters the etcd driver understands; any other is refused (a misspelt `ca`
 *  must not be ignored silently). */
const KNOWN_PARAMS = new Set([
  "metaPrefix",
  "maxRequestBytes",
  "ca",
  "cert",
  "key",
  "insecure-skip-tls-verify",
]);

const ENDPOINT = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(:\d{1,5})?$/i;

/** Parse a URL or endpoint list into a location. Errors never quote the password. */
export function parseEtcdLocation(options: EtcdConnectionOptions): EtcdLocation {
  let endpoints: string[];
  let secure: boolean;
  let params = new URLSearchParams();
  let credentials: { username: string; password: string } | null = null;
  if (options.endpoints && options.endpoints.length > 0) {
    endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ""));
    for (const endpoint of endpoints) {
      if (!/^https?:\/\/[^/?#@]+$/i.test(endpoint)) {
        throw new InvalidArgumentError(
          "endpoints",
          `each must look like http://host:port or https://host:port, got ${JSON.stringify(endpoint.replace(/\/\/[^/@]*@/, "//***@"))}`,
        );
      }
    }
    secure = endpoints.some((e) => /^https:/i.test(e));
    if (secure && !endpoints.every((e) => /^https:/i.test(e))) {
      throw new InvalidArgumentError("endpoints", "mix http:// and https://; use one scheme");
    }
  } else {
    const url = options.url ?? "etcd://127.0.0.1:2379";
    const match = /^(etcds?):\/\/([^/?#]*)\/?(?:\?([^#]*))?$/i.exec(url);
    if (!match) {
      throw new InvalidArgumentError(
        "url",
        "must look like etcd://[user:password@]host:port[,host:port…][?ca=PATH&cert=PATH&key=PATH] (etcds:// for TLS)",
      );
    }
    secure = (match[1] as string).toLowerCase() === "etcds";
    let authority = match[2] as string;
    params = new URLSearchParams(match[3] ?? "");
    // The user information runs to the last "@": a password typed with a raw "@" still parses.
    const at = authority.lastIndexOf("@");
    if (at >= 0) {
      credentials = parseUserInfo(authority.slice(0, at));
      authority = authority.slice(at + 1);
    }
    endpoints = authority.split(",").map((hostPort) => {
      const trimmed = hostPort.trim();
      if (!ENDPOINT.test(trimmed)) {
        throw new InvalidArgumentError("url", `bad etcd endpoint ${JSON.stringify(trimmed)}`);
      }
      return `${secure ? "https" : "http"}://${/:\d+$/.test(trimmed) ? trimmed : `${trimmed}:2379`}`;
    });
    for (const name of params.keys()) {
      if (!KNOWN_PARAMS.has(name)) {
        throw new InvalidArgumentError(
          "url",
          `unknown parameter ${JSON.stringify(name)}; known: ${[...KNOWN_PARAMS].join(", ")}`,
        );
      }
    }
  }
  if (options.username !== undefined || options.password !== undefined) {
    if (credentials) {
      throw new InvalidArgumentError("username", "is given both as an option and in the URL");
    }
    if (typeof options.username !== "string" || typeof options.password !== "string") {
      throw new InvalidArgumentError("username", "needs both username and password (strings)");
    }
    credentials = { username: options.username, password: options.password };
  }
  if (credentials && credentials.username.length === 0) {
    throw new InvalidArgumentError("url", "an etcd user name must not be empty");
  }

  const fromUrl: Partial<TlsSources> = {};
  for (const name of ["ca", "cert", "key"] as const) {
    const value = params.get(name);
    if (value !== null) fromUrl[name] = { value, setting: name };
  }
  const insecure = params.get("insecure-skip-tls-verify");
  if (insecure !== null) {
    if (insecure !== "true" && insecure !== "false") {
      throw new InvalidArgumentError("url", "insecure-skip-tls-verify must be true or false");
    }
    fromUrl.rejectUnauthorized = insecure !== "true";
  }
  const tls = mergeTlsSources(fromUrl, options.tls);
  if (!secure && (namesTls(tls) || options.tls !== undefined)) {
    throw new InvalidArgumentError(
      options.endpoints ? "endpoints" : "url",
      "TLS settings need a TLS scheme: etcds:// (or https:// endpoints)",
    );
  }
  return { endpoints, tls: secure ? tls : null, credentials, params };
}

function parseUserInfo(userInfo: string): { username: string; password: string } {
  const colon = userInfo.indexOf(":");
  const decode = (text: string, what: string) => {
    try {
      return decodeURIComponent(text);
    } catch {
      // Never quote it: it may be the password.
      throw new InvalidArgumentError("url", `the ${what} in the URL is not valid percent-encoding`);
    }
  };
  if (colon < 0) {
    throw new InvalidArgumentError("url", "an etcd user needs a password: etcd://user:password@…");
  }
  return {
    username: decode(userInfo.slice(0, colon), "user name"),
    password: decode(userInfo.slice(colon + 1), "password"),
  };
}

export interface EtcdGatewayOptions {
  /** One HTTP exchange without an answer after this long fails (its outcome unknown). */
  requestTimeoutMs: number;
  /** The server's `--max-request-bytes`; larger requests are refused before sending. Default:
   *  the URL's `maxRequestBytes`, else etcd's default 1.5 MiB. */
  maxRequestBytes?: number;
  transport?: EtcdTransport;
}

/** The gateway client the driver uses. */
export interface EtcdGateway {
  /** POST `body` as JSON to `path`; the parsed answer, or a typed error (BackendUnavailable:
   *  outcome unknown; BackendConfiguration: fix the setting named; InvalidArgument: not sent). */
  post(path: string, body: object): Promise<Record<string, unknown>>;
  /**
   * POST `body` to a streaming endpoint (`/v3/watch`) and yield each JSON message of its
   * newline-delimited answer, as it arrives. Any endpoint that answers (it is a read); the auth
   * token is renewed once if refused. Aborting `signal` closes the response and ends the
   * iteration (it returns); a failure of the stream throws a typed error. The transport option
   * does not apply: streams go straight to node:http(s).
   */
  stream(path: string, body: object, signal: AbortSignal): AsyncGenerator<Record<string, unknown>>;
  /** Release the connections kept alive. */
  close(): Promise<void>;
}

/** The shape of etcd's error answers through the gateway. */
interface GatewayFailure {
  status: number;
  message: string;
}

export function createEtcdGateway(
  location: EtcdLocation,
  options: EtcdGatewayOptions,
): EtcdGateway {
  const { requestTimeoutMs } = options;
  const { endpoints, credentials } = location;
  const fromUrl = location.params.get("maxRequestBytes");
  const maxRequestBytes =
    options.maxRequestBytes ??
    (fromUrl === null ? DEFAULT_ETCD_MAX_REQUEST_BYTES : Number(fromUrl));
  if (!Number.isSafeInteger(maxRequestBytes) || maxRequestBytes <= 0) {
    throw new InvalidArgumentError("maxRequestBytes", "must be a positive whole number of bytes");
  }
  const transport: EtcdTransport = options.transport ?? ((request, send) => send(request));
  let preferred = 0;
  let closed = false;
  // Connections are kept alive per gateway; TLS is read from disk once, on first use. Once
  // resolved, the connection is kept as a plain value: no promise chain per request.
  let tls: Promise<ResolvedTls | null> | null = null;
  let ready: { agent: http.Agent; tls: ResolvedTls | null } | null = null;
  const connection = (): Promise<{ agent: http.Agent; tls: ResolvedTls | null }> => {
    tls ??= location.tls ? resolveTls(location.tls) : Promise.resolve(null);
    const pending = tls;
    pending.catch(() => {
      if (tls === pending) tls = null;
    });
    return pending.then((resolved) => {
      ready ??= {
        // One socket per concurrent request, kept open between requests (etcd's gateway speaks
        // HTTP/1.1: no multiplexing); LIFO reuse keeps the warm sockets busy.
        agent: resolved
          ? new https.Agent({ keepAlive: true, scheduling: "lifo", ...resolved })
          : new http.Agent({ keepAlive: true, scheduling: "lifo" }),
        tls: resolved,
      };
      return ready;
    });
  };
  const targets = new Map(endpoints.map((endpoint) => [endpoint, targetOf(endpoint)]));

  const sendHttp = async (request: EtcdHttpRequest): Promise<EtcdHttpResponse> => {
    const current = ready ?? (await connection());
    return exchange(request, current.agent, current.tls, targets.get(request.endpoint));
  };

  /** One request through the failover rules above. */
  const send = async (
    path: string,
    body: string,
    kind: "read" | "write",
    token: string | null,
  ): Promise<{ endpoint: string; response: EtcdHttpResponse }> => {
    let lastError: unknown;
    let configuration: PoisonStoreError | null = null;
    for (let i = 0; i < endpoints.length; i++) {
      const index = (preferred + i) % endpoints.length;
      const endpoint = endpoints[index] as string;
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (token) headers.authorization = token;
      let response: EtcdHttpResponse;
      try {
        response = await transport(
          { endpoint, path, headers, body, timeoutMs: requestTimeoutMs },
          sendHttp,
        );
      } catch (error) {
        if (error instanceof InvalidArgumentError) throw error; // TLS files: nothing was sent
        const failure = error instanceof EtcdTransportError ? error : null;
        if (failure?.timedOut) {
          throw new BackendUnavailableError(
            "etcd",
            `${endpoint} did not answer within ${requestTimeoutMs} ms (requestTimeoutMs)`,
            error,
          );
        }
        // The server refused the handshake or its certificate is not trusted: nothing was
        // executed; another endpoint may be set up differently.
        const misconfigured = classifyConnectionError(error, endpoint);
        if (misconfigured) {
          configuration ??= misconfigured;
          lastError = error;
          continue;
        }
        if (kind === "write" && failure?.sent !== false) {
          throw new BackendUnavailableError(
            "etcd",
            `the connection to ${endpoint} failed after the request may have been sent (${describe(error)}); a write is never sent again to another endpoint`,
            error,
          );
        }
        lastError = error;
        continue;
      }
      preferred = index;
      return { endpoint, response };
    }
    if (configuration) throw configuration;
    throw new BackendUnavailableError(
      "etcd",
      `no endpoint answered (${describe(lastError)})${schemeHint(lastError, endpoints)}`,
      lastError,
    );
  };

  // Authentication: one token at a time, fetched once for all concurrent calls.
  let token: Promise<string | null> | null = null;
  const currentToken = (): Promise<string | null> => {
    if (!credentials) return Promise.resolve(null);
    if (!token) {
      const pending = authenticate(credentials);
      token = pending;
      pending.catch(() => {
        if (token === pending) token = null;
      });
    }
    return token;
  };
  const authenticate = async (user: {
    username: string;
    password: string;
  }): Promise<string | null> => {
    const { endpoint, response } = await send(
      "/v3/auth/authenticate",
      JSON.stringify({ name: user.username, password: user.password }),
      "read",
      null,
    );
    if (response.status === 200) {
      const value = parseJson(response.body, endpoint, "/v3/auth/authenticate").token;
      if (typeof value === "string" && value.length > 0) return value;
      throw new BackendUnavailableError("etcd", `${endpoint} answered the login without a token`);
    }
    const failure = failureOf(response);
    // A server without auth needs no token: go on without one.
    if (/authentication is not enabled/i.test(failure.message)) return null;
    throw classifyAnswer(failure, endpoint, "/v3/auth/authenticate", credentials);
  };

  return {
    async post(path, body) {
      if (closed) throw new BackendUnavailableError("etcd", "the driver is closed");
      const payload = JSON.stringify(body);
      checkRequestSize(payload, body, maxRequestBytes);
      const kind = isRead(path, body) ? "read" : "write";
      for (let attempt = 0; ; attempt++) {
        const pending = currentToken();
        const used = await pending;
        const { endpoint, response } = await send(path, payload, kind, used);
        if (response.status === 200) return parseJson(response.body, endpoint, path);
        const failure = failureOf(response);
        if (credentials && attempt === 0 && tokenRefused(failure)) {
          // Refused before it ran: renew the token (once for all callers) and send it again.
          if (token === pending) token = null;
          continue;
        }
        throw classifyAnswer(failure, endpoint, path, credentials);
      }
    },
    async *stream(path, body, signal) {
      if (closed) throw new BackendUnavailableError("etcd", "the driver is closed");
      const payload = JSON.stringify(body);
      for (let attempt = 0; ; attempt++) {
        const pending = currentToken();
        const used = await pending;
        const current = ready ?? (await connection());
        let opened: OpenStream | null = null;
        let lastError: unknown;
        for (let i = 0; i < endpoints.length && !opened; i++) {
          if (signal.aborted) return;
          const index = (preferred + i) % endpoints.length;
          const endpoint = endpoints[index] as string;
          try {
            opened = await openStream(
              endpoint,
              path,
              payload,
              used,
              requestTimeoutMs,
              current,
              targets.get(endpoint) as Target,
              signal,
            );
            preferred = index;
          } catch (error) {
            if (signal.aborted) return;
            const misconfigured = classifyConnectionError(error, endpoint);
            if (misconfigured) throw misconfigured;
            lastError = error;
          }
        }
        if (!opened) {
          throw new BackendUnavailableError(
            "etcd",
            `no endpoint answered the watch (${describe(lastError)})${schemeHint(lastError, endpoints)}`,
            lastError,
          );
        }
        const { endpoint, response } = opened;
        if (response.statusCode !== 200) {
          const failure = failureOf({
            status: response.statusCode ?? 0,
            body: await readAll(response),
          });
          if (credentials && attempt === 0 && tokenRefused(failure)) {
            if (token === pending) token = null;
            continue;
          }
          throw classifyAnswer(failure, endpoint, path, credentials);
        }
        try {
          let buffered = "";
          response.setEncoding("utf8");
          for await (const chunk of response as AsyncIterable<string>) {
            buffered += chunk;
            for (let end = buffered.indexOf("\n"); end >= 0; end = buffered.indexOf("\n")) {
              const line = buffered.slice(0, end).trim();
              buffered = buffered.slice(end + 1);
              if (line.length === 0) continue;
              const message = parseJson(line, endpoint, path);
              if (message.error !== undefined) {
                const detail = message.error as { message?: unknown; http_code?: unknown };
                const failure: GatewayFailure = {
                  status: typeof detail.http_code === "number" ? detail.http_code : 500,
                  message: typeof detail.message === "string" ? detail.message : String(detail),
                };
                // A token refused mid-stream: the next stream logs in again.
                if (tokenRefused(failure) && token === pending) token = null;
                throw classifyAnswer(failure, endpoint, path, credentials);
              }
              yield (message.result ?? message) as Record<string, unknown>;
              if (signal.aborted) return;
            }
          }
        } catch (error) {
          if (signal.aborted) return;
          if (error instanceof PoisonStoreError) throw error;
          throw new BackendUnavailableError(
            "etcd",
            `the stream from ${endpoint}${path} broke (${describe(error)})`,
            error,
          );
        } finally {
          response.destroy();
        }
        if (signal.aborted) return;
        throw new BackendUnavailableError(
          "etcd",
          `${endpoint}${path}: the server ended the stream`,
        );
      }
    },
    async close() {
      closed = true;
      ready?.agent.destroy();
    },
  };
}

interface OpenStream {
  endpoint: string;
  response: http.IncomingMessage;
}

/** Send a streaming request and resolve once the answer's headers arrived (bounded by
 *  `timeoutMs`); aborting `signal` destroys the request at any point. */
function openStream(
  endpoint: string,
  path: string,
  body: string,
  token: string | null,
  timeoutMs: number,
  connection: { agent: http.Agent; tls: ResolvedTls | null },
  target: Target,
  signal: AbortSignal,
): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(body)),
    };
    if (token) headers.authorization = token;
    const { tls, agent } = connection;
    const req = (tls ? https : http).request(
      {
        method: "POST",
        hostname: target.hostname,
        port: target.port || (tls ? 443 : 80),
        path,
        headers,
        agent,
        ...(tls ?? {}),
      },
      (response) => {
        clearTimeout(timer);
        resolve({ endpoint, response });
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onAbort = () => req.destroy(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    req.on("close", () => signal.removeEventListener("abort", onAbort));
    req.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(body);
  });
}

async function readAll(response: http.IncomingMessage): Promise<string> {
  let text = "";
  response.setEncoding("utf8");
  for await (const chunk of response as AsyncIterable<string>) text += chunk;
  return text;
}

/** One POST over node:http(s), bounded by the request's timeout. `sent` turns true once the
 *  connection is established (after the TLS handshake): from then on the server may have the
 *  request. */
function exchange(
  request: EtcdHttpRequest,
  agent: http.Agent,
  tls: ResolvedTls | null,
  known: Target | undefined,
): Promise<EtcdHttpResponse> {
  return new Promise((resolve, reject) => {
    // A transport may rewrite the endpoint: parse it then; the driver's own are parsed once.
    const target = known ?? targetOf(request.endpoint);
    let sent = false;
    let timedOut = false;
    const options: https.RequestOptions = {
      method: "POST",
      hostname: target.hostname,
      port: target.port || (tls ? 443 : 80),
      path: request.path,
      headers: { ...request.headers, "content-length": String(Buffer.byteLength(request.body)) },
      agent,
      ...(tls ?? {}),
    };
    const req = (tls ? https : http).request(options, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => {
        deadlines.settle(deadline);
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on("error", (error) => fail(error));
    });
    const fail = (error: Error) => {
      deadlines.settle(deadline);
      reject(
        new EtcdTransportError(timedOut ? "no answer in time" : error.message, {
          sent,
          timedOut,
          cause: error,
        }),
      );
    };
    // The same shared deadline queue as the runtime's bound: one timer for every request in
    // flight with this bound, not one per request (src/core/deadlines.ts).
    const deadlines = deadlinesOf(request.timeoutMs);
    const deadline = deadlines.add(() => {
      timedOut = true;
      req.destroy(new Error(`no answer within ${request.timeoutMs} ms`));
    });
    req.on("socket", (socket) => {
      if (req.reusedSocket) {
        sent = true;
        return;
      }
      socket.once(tls ? "secureConnect" : "connect", () => {
        sent = true;
      });
    });
    req.on("error", fail);
    req.end(request.body);
  });
}

/** An endpoint's host (IPv6 without brackets) and port, parsed once. */
interface Target {
  hostname: string;
  port: string;
}

function targetOf(endpoint: string): Target {
  const url = new URL(endpoint);
  return { hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"), port: url.port };
}

/** Reads may go to another endpoint after any failure: a range, or a txn of ranges only. */
function isRead(path: string, body: object): boolean {
  if (path === "/v3/kv/range") return true;
  if (path !== "/v3/kv/txn") return false;
  const txn = body as { compare?: unknown[]; success?: unknown[]; failure?: unknown[] };
  if ((txn.compare?.length ?? 0) > 0) return false;
  const ops = [...(txn.success ?? []), ...(txn.failure ?? [])];
  return ops.every(
    (op) => op !== null && typeof op === "object" && Object.keys(op).join() === "request_range",
  );
}

function failureOf(response: EtcdHttpResponse): GatewayFailure {
  let message = response.body.trim();
  try {
    const doc = JSON.parse(response.body) as { error?: unknown; message?: unknown };
    if (typeof doc.message === "string") message = doc.message;
    else if (typeof doc.error === "string") message = doc.error;
  } catch {
    // not JSON: the text itself (Go's http.Error answers)
  }
  return { status: response.status, message: message.slice(0, 300) };
}

function parseJson(text: string, endpoint: string, path: string): Record<string, unknown> {
  try {
    const doc = JSON.parse(text) as unknown;
    if (doc && typeof doc === "object") return doc as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new BackendUnavailableError(
    "etcd",
    `${endpoint}${path} answered something that is not JSON`,
  );
}

/** The server refused the request for its token (expired, invalid, or issued before the auth
 *  store changed); it did not run it. */
function tokenRefused(failure: GatewayFailure): boolean {
  return /invalid auth token|auth store is old|revision of auth store is old/i.test(
    failure.message,
  );
}

/**
 * Every answer etcd gives with a non-200 status, classified in one place: what the server refused
 * for its configuration (BackendConfigurationError, fix the setting), for the request's size
 * (InvalidArgumentError, not applied), or anything else (BackendUnavailableError, unknown).
 */
export function classifyAnswer(
  failure: GatewayFailure,
  endpoint: string,
  path: string,
  credentials: { username: string } | null,
): PoisonStoreError {
  const { status, message } = failure;
  const user = credentials ? ` (user ${JSON.stringify(credentials.username)})` : "";
  if (/authentication failed|invalid user ID or password|password was given/i.test(message)) {
    return new BackendConfigurationError(
      "etcd",
      "password",
      `${endpoint} refused the login${user}: ${message}. Check the user name and password in the URL (etcd://USER:PASSWORD@…)`,
    );
  }
  if (!credentials && /user name is empty|user name not found|permission denied/i.test(message)) {
    return new BackendConfigurationError(
      "etcd",
      "user",
      `${endpoint} refused a request without an etcd user (${message}): it has authentication enabled; give one as etcd://USER:PASSWORD@…`,
    );
  }
  if (/user name is empty|user name not found/i.test(message)) {
    return new BackendConfigurationError(
      "etcd",
      "user",
      `${endpoint} does not know the user${user}: ${message}`,
    );
  }
  if (status === 403 || /permission denied/i.test(message)) {
    return new BackendConfigurationError(
      "etcd",
      "permissions",
      `${endpoint} denied ${path}${user}: ${message}. Grant the user's role readwrite on the store's namespace and meta prefix`,
    );
  }
  if (/HTTP request to an HTTPS server/i.test(message)) {
    return new BackendConfigurationError(
      "etcd",
      "url",
      `${endpoint} speaks TLS; use etcds:// (with ?ca=PATH, and cert/key if it asks for a client certificate)`,
    );
  }
  if (/CommonName of client/i.test(message)) {
    return new BackendConfigurationError(
      "etcd",
      "tls.cert",
      `${endpoint} refuses client certificates that carry a Common Name on its JSON gateway when auth is enabled (${message}); use a client certificate without a CN, and authenticate as etcd://USER:PASSWORD@…`,
    );
  }
  if (/request is too large|larger than max/i.test(message)) {
    return new InvalidArgumentError(
      "request size",
      `${endpoint} refused the request as too large (${message}); nothing was applied. ${SIZE_ADVICE}`,
    );
  }
  if (/too many operations in txn/i.test(message)) {
    return new InvalidArgumentError(
      "keys",
      `${endpoint} refused the transaction (${message}): the server's --max-txn-ops is below the default 128; nothing was applied`,
    );
  }
  if (tokenRefused(failure) && credentials) {
    return new BackendUnavailableError(
      "etcd",
      `${endpoint} refused a freshly issued auth token (${message})`,
    );
  }
  return new BackendUnavailableError(
    "etcd",
    `${endpoint}${path} answered HTTP ${status}: ${message}`,
  );
}

/** A connection that failed for configuration (TLS), or null for a network failure. */
function classifyConnectionError(error: unknown, endpoint: string): PoisonStoreError | null {
  return tlsConfigurationError(
    "etcd",
    error,
    {
      "tls.ca": " (tls.ca, or ?ca=PATH in the URL)",
      "tls.cert": " (tls.cert and tls.key, or ?cert=PATH&key=PATH in the URL)",
      url: ": use etcd:// for a plain-text port",
    },
    `${endpoint}: `,
  );
}

const SIZE_ADVICE =
  "Write less data per key or fewer keys per call, or raise --max-request-bytes on every etcd member and set the driver's maxRequestBytes (URL: ?maxRequestBytes=N) to match";

/**
 * Refuse a request etcd would refuse for its size, before sending it. etcd limits the protobuf
 * form of a write (`--max-request-bytes`, default 1.5 MiB), which is smaller than its JSON (base64
 * inflates bytes by 4/3, and a field's name is longer than its tag), so a JSON body within the
 * limit passes at once; a larger one is measured as protobuf, erring high.
 */
function checkRequestSize(payload: string, body: object, maxRequestBytes: number): void {
  // What etcd adds around the request in its raft entry (header, user name): a generous bound.
  const envelope = 512;
  // A UTF-16 code unit is at most 3 UTF-8 bytes: most requests pass without being measured.
  if (payload.length * 3 + envelope <= maxRequestBytes) return;
  if (Buffer.byteLength(payload) + envelope <= maxRequestBytes) return;
  const bytes = protobufSize(body) + envelope;
  if (bytes > maxRequestBytes) {
    throw new InvalidArgumentError(
      "request size",
      `the etcd request would take about ${bytes} bytes, over the server's limit of ${maxRequestBytes} bytes (etcd's --max-request-bytes, default 1.5 MiB); nothing was sent. ${SIZE_ADVICE}`,
    );
  }
}

/** Fields that the gateway decodes from base64 into raw bytes. */
const BYTES_FIELDS = new Set(["key", "range_end", "value"]);

/** An upper bound of the protobuf size of a gateway JSON message. */
function protobufSize(value: unknown, field?: string): number {
  const header = (length: number) => 2 + varintSize(length); // tag (≤ 2 bytes) + length
  if (Array.isArray(value)) {
    return value.reduce<number>((sum, item) => sum + protobufSize(item, field), 0);
  }
  if (value !== null && typeof value === "object") {
    let inner = 0;
    for (const [name, item] of Object.entries(value)) inner += protobufSize(item, name);
    return field === undefined ? inner : header(inner) + inner;
  }
  if (typeof value === "string" && field !== undefined && BYTES_FIELDS.has(field)) {
    const bytes = Buffer.byteLength(value, "base64");
    return header(bytes) + bytes;
  }
  if (typeof value === "string") return header(Buffer.byteLength(value)) + Buffer.byteLength(value);
  return 12; // a number, boolean or enum: tag + varint
}

function varintSize(n: number): number {
  let size = 1;
  for (let rest = n; rest >= 128; rest = Math.floor(rest / 128)) size++;
  return size;
}

/** A connection closed at once is what a TLS port does to plain HTTP (and a plain port to a TLS
 *  handshake): say so, since a network failure looks the same. */
function schemeHint(error: unknown, endpoints: readonly string[]): string {
  if ((error as { code?: unknown } | undefined)?.code !== "ECONNRESET") return "";
  return endpoints.some((e) => e.startsWith("https:"))
    ? "; if the server does not speak TLS on this port, use etcd://"
    : "; if the server expects TLS on this port, use etcds://";
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const code =
    (cause as { code?: unknown } | undefined)?.code ?? (error as { code?: unknown }).code;
  const message =
    cause instanceof Error && cause.message !== error.message
      ? `${error.message}: ${cause.message}`
      : error.message;
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
}
