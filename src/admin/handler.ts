/**
 * `createPoisonAdmin(store, options)`: the admin service (SPEC §7) as one request handler with
 * two faces, `fetch(request)` (Web-standard: Hono, Next.js route handlers, Deno, Bun) and
 * `node(req, res)` (node:http, Express, Fastify). Both go through the same `#handle`, which owns
 * routing, authentication, limits and the security headers; routes.ts owns what each route does.
 */
import { setMaxListeners } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { PoisonStoreClient } from "../core/contract.js";
import { InvalidArgumentError } from "../core/errors.js";
import {
  type AdminPrincipal,
  type AdminRole,
  type AdminToken,
  type AuthFailureDelay,
  bearerSecret,
  FailureThrottle,
  TokenVerifier,
} from "./auth.js";
import { consoleAsset, consolePage } from "./console.js";
import { AdminErrorCode, describeFailure, HttpError, invalidArgument } from "./errors.js";
import { type ChangeFeed, eventStream, type PollingOptions, watchFeed } from "./events.js";
import { openApiDocument } from "./openapi.js";
import {
  type Access,
  API_ROUTES,
  type ApiRoute,
  auditLog,
  clearPoison,
  getPoison,
  healthz,
  type JsonReply,
  listPoisons,
  putPoison,
  type RouteContext,
  type RouteName,
  whoami,
} from "./routes.js";

/** A source of Prometheus text, for example a prom-client `Registry`. */
export interface AdminMetricsSource {
  /** The Content-Type of the text, for example prom-client's `register.contentType`. */
  contentType: string;
  metrics(): Promise<string>;
}

/** Callers without a token, for a service only this machine can reach (`poison serve` on
 *  loopback without `--tokens`). */
export interface AdminAnonymousAccess {
  role: AdminRole;
  /** The audit actor of their clears and puts, for example the OS user running the service. */
  actor: string;
  /** Host names (beside localhost and loopback addresses) a tokenless request may name in its
   *  Host header; any other is refused, so a web page cannot reach the service through DNS
   *  rebinding. */
  allowedHosts?: readonly string[];
}

/** One line of the access log (`onRequest`). */
export interface AdminRequestLog {
  method: string;
  /** The path and query as received. */
  url: string;
  status: number;
  durationMs: number;
  /** The token's name (the audit actor), or null for a request without one. */
  actor: string | null;
  client: string;
}

export interface PoisonAdminOptions {
  /** Where the service is mounted, for example `/admin/poison` (default: the root). Requests
   *  outside it are answered 404. */
  basePath?: string;
  /** Bearer tokens with roles (see `readAdminTokens`, `hashAdminToken`). */
  tokens?: readonly AdminToken[];
  /** What a request without a token may do; without it, such requests are refused (401) on every
   *  route but the public ones. */
  anonymous?: AdminAnonymousAccess;
  /** Origins allowed to call the API from a browser (CORS). Default none: no CORS headers. */
  cors?: { origins: readonly string[] };
  /** Served at `GET /metrics`; `access` defaults to `viewer` (use `public` for a scraper
   *  without a token). Without it, `/metrics` answers 404. */
  metrics?: AdminMetricsSource & { access?: Access };
  /** Largest request body accepted, in bytes; larger bodies are answered 413. Default 65536. */
  maxBodyBytes?: number;
  /** How repeated failed authentication from one client is slowed down. */
  authFailureDelay?: AuthFailureDelay;
  /** The client address of a `fetch` request, for the failed-authentication throttle (the Node
   *  form uses the socket's address). Default: every `fetch` caller counts as one client. */
  clientAddress?: (request: Request) => string | undefined;
  /** `/api/v1/events`: polling (when the store has no `watch()`), keep-alive comments and the
   *  number of streams open at once (default 100; more are answered 429). */
  events?: PollingOptions & { keepAliveMs?: number; maxStreams?: number };
  /** Where "now" comes from (ages and liveness). Default `() => new Date()`. */
  now?: () => Date;
  /** Called once per request, when its response starts. */
  onRequest?: (entry: AdminRequestLog) => void;
  /** Called with an unexpected error (answered 500 without details). */
  onError?: (error: unknown) => void;
}

/** The admin service: mount `fetch` or `node`, call `close()` before closing the server. */
export interface PoisonAdmin {
  fetch(request: Request): Promise<Response>;
  /** For node:http, Express, Fastify (`reply.raw`). Never rejects. */
  node(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Ends the open event streams and stops polling. The store is left open. */
  close(): Promise<void>;
}

export function createPoisonAdmin(
  store: PoisonStoreClient,
  options: PoisonAdminOptions = {},
): PoisonAdmin {
  const service = new AdminService(store, options);
  return {
    fetch: (request) => service.fetch(request),
    node: (req, res) => service.node(req, res),
    close: () => service.close(),
  };
}

const DEFAULT_MAX_BODY_BYTES = 65536;
const DEFAULT_KEEP_ALIVE_MS = 15_000;
const DEFAULT_MAX_STREAMS = 100;
const RANK: Record<AdminRole, number> = { viewer: 1, operator: 2 };

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

/** A request as the service sees it, whichever face it came through. */
interface AdminRequest {
  method: string;
  /** Path as received, still percent-encoded. */
  path: string;
  query: URLSearchParams;
  url: string;
  headers: Headers;
  readBody(limit: number): Promise<Uint8Array>;
  signal: AbortSignal;
  client: string;
}

/** The routes of API_ROUTES with a fixed path (no `{key}`), by path, then by method: matched
 *  from the one table the OpenAPI document is written from. Methods in table order (the order
 *  a 405 names them). */
const FIXED_PATH_ROUTES = new Map<string, Map<string, RouteName>>();
for (const [name, route] of Object.entries(API_ROUTES) as [RouteName, ApiRoute][]) {
  if (route.path.includes("{")) continue;
  const byMethod = FIXED_PATH_ROUTES.get(route.path) ?? new Map<string, RouteName>();
  byMethod.set(route.method, name);
  FIXED_PATH_ROUTES.set(route.path, byMethod);
}

/** The routes answered with one JSON reply by routes.ts (openapi, metrics and events are
 *  answered by AdminService#route itself). */
const JSON_HANDLERS: Partial<
  Record<RouteName, (ctx: RouteContext) => Promise<JsonReply> | JsonReply>
> = { listPoisons, getPoison, clearPoison, putPoison, auditLog, whoami, healthz };

type Matched =
  | { kind: "api"; name: RouteName; params: Record<string, string> }
  | { kind: "console" }
  | { kind: "asset"; name: string }
  | { kind: "redirect"; location: string };

class AdminService {
  readonly #store: PoisonStoreClient;
  readonly #basePath: string;
  readonly #verifier: TokenVerifier | null;
  readonly #anonymous: AdminAnonymousAccess | null;
  readonly #corsOrigins: ReadonlySet<string>;
  readonly #metrics: PoisonAdminOptions["metrics"] | null;
  readonly #maxBodyBytes: number;
  readonly #throttle: FailureThrottle;
  readonly #options: PoisonAdminOptions;
  readonly #now: () => Date;
  readonly #feed: ChangeFeed;
  readonly #keepAliveMs: number;
  readonly #maxStreams: number;
  /** Aborted by close(): every open event stream listens to it. */
  readonly #closing = new AbortController();
  #streams = 0;

  constructor(store: PoisonStoreClient, options: PoisonAdminOptions) {
    if (typeof store !== "object" || store === null || typeof store.listPoisons !== "function")
      throw new InvalidArgumentError("store", "must be a store from openPoisonStore()");
    this.#store = store;
    this.#options = options;
    this.#basePath = checkBasePath(options.basePath);
    if (options.tokens === undefined && options.anonymous === undefined) {
      throw new InvalidArgumentError(
        "options.tokens",
        "give tokens (bearer tokens with roles, see readAdminTokens) or anonymous: { role, actor } for a service only this machine can reach",
      );
    }
    this.#verifier = options.tokens === undefined ? null : new TokenVerifier(options.tokens);
    if (this.#verifier?.size === 0 && options.anonymous === undefined)
      throw new InvalidArgumentError("options.tokens", "is empty: nobody could sign in");
    this.#anonymous = options.anonymous ? checkAnonymous(options.anonymous) : null;
    this.#corsOrigins = new Set(options.cors?.origins ?? []);
    this.#metrics = options.metrics ?? null;
    this.#maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#throttle = new FailureThrottle(options.authFailureDelay);
    this.#now = options.now ?? (() => new Date());
    this.#feed = watchFeed(store, {
      ...(options.events?.intervalMs === undefined
        ? {}
        : { intervalMs: options.events.intervalMs }),
      ...(options.events?.maxKeys === undefined ? {} : { maxKeys: options.events.maxKeys }),
    });
    this.#keepAliveMs = options.events?.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS;
    // One listener per open stream (up to maxStreams): not a leak.
    setMaxListeners(0, this.#closing.signal);
    this.#maxStreams = options.events?.maxStreams ?? DEFAULT_MAX_STREAMS;
  }

  async close(): Promise<void> {
    this.#closing.abort();
    this.#feed.close();
  }

  fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const client = this.#options.clientAddress?.(request) ?? "fetch";
    return this.#handle({
      method: request.method.toUpperCase(),
      path: url.pathname,
      query: url.searchParams,
      url: url.pathname + url.search,
      headers: request.headers,
      signal: request.signal,
      client,
      readBody: (limit) => readWebBody(request, limit),
    });
  }

  async node(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const abort = new AbortController();
    res.once("close", () => abort.abort());
    try {
      // Express strips its mount path from req.url and keeps the whole in originalUrl.
      const raw = (req as { originalUrl?: unknown }).originalUrl;
      const target = typeof raw === "string" ? raw : (req.url ?? "/");
      const split = target.indexOf("?");
      const path = split === -1 ? target : target.slice(0, split);
      const search = split === -1 ? "" : target.slice(split);
      const headers = new Headers();
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i] as string;
        if (!name.startsWith(":")) headers.append(name, req.rawHeaders[i + 1] as string);
      }
      const response = await this.#handle({
        method: (req.method ?? "GET").toUpperCase(),
        path,
        query: new URLSearchParams(search),
        url: target,
        headers,
        signal: abort.signal,
        client: req.socket?.remoteAddress ?? "unknown",
        readBody: (limit) => readNodeBody(req, limit),
      });
      await writeNodeResponse(response, res, abort.signal);
    } catch (error) {
      this.#options.onError?.(error);
      if (!res.headersSent) {
        res.statusCode = 500;
        res.setHeader("content-type", "application/json");
        res.end(
          JSON.stringify({ error: { code: AdminErrorCode.Internal, message: "unexpected error" } }),
        );
      } else {
        res.destroy();
      }
    }
  }

  async #handle(request: AdminRequest): Promise<Response> {
    const started = performance.now();
    let principal: AdminPrincipal | null = null;
    let response: Response;
    try {
      response = await this.#route(request, (who) => {
        principal = who;
      });
    } catch (error) {
      response = this.#failure(error);
    }
    response = this.#finish(request, response);
    const who = principal as AdminPrincipal | null;
    this.#options.onRequest?.({
      method: request.method,
      url: request.url,
      status: response.status,
      durationMs: performance.now() - started,
      actor: who ? who.name : null,
      client: request.client,
    });
    return response;
  }

  async #route(
    request: AdminRequest,
    identified: (principal: AdminPrincipal | null) => void,
  ): Promise<Response> {
    const head = request.method === "HEAD";
    const method = head ? "GET" : request.method;
    if (method === "OPTIONS") return this.#preflight(request);
    const matched = this.#match(method, request.path);
    if (matched.kind === "redirect")
      return new Response(null, { status: 308, headers: { location: matched.location } });
    if (matched.kind === "console")
      return consolePage(this.#basePath, request.headers.get("if-none-match"), head);
    if (matched.kind === "asset")
      return consoleAsset(matched.name, request.headers.get("if-none-match"), head);

    const route = API_ROUTES[matched.name];
    const access: Access =
      matched.name === "metrics" ? (this.#metrics?.access ?? "viewer") : route.access;
    if (matched.name === "metrics" && !this.#metrics)
      throw new HttpError(
        404,
        AdminErrorCode.NotFound,
        "no metrics are configured for this service",
      );
    const principal = await this.#authenticate(request, access);
    identified(principal);
    const now = this.#now();
    if (matched.name === "openapi") return json(200, openApiDocument(this.#basePath), head);
    if (matched.name === "metrics") {
      const metrics = this.#metrics as AdminMetricsSource;
      const text = await metrics.metrics();
      return new Response(head ? null : text, {
        status: 200,
        headers: { "content-type": metrics.contentType, "cache-control": "no-store" },
      });
    }
    if (matched.name === "events") return this.#events(request, head);

    let body: unknown;
    if (method === "POST") body = await this.#jsonBody(request);
    const ctx: RouteContext = {
      store: this.#store,
      principal,
      params: matched.params,
      query: request.query,
      body,
      signal: request.signal,
      now,
    };
    const run = JSON_HANDLERS[matched.name];
    if (!run) throw new Error(`route ${matched.name} has no handler`);
    const reply = await run(ctx);
    return json(reply.status, reply.body, head);
  }

  #match(method: string, path: string): Matched {
    const base = this.#basePath;
    if (base !== "" && path === base) return { kind: "redirect", location: `${base}/` };
    if (!path.startsWith(`${base}/`)) throw notFound();
    const rel = path.slice(base.length);
    const allow = (...methods: string[]) => {
      if (!methods.includes(method)) throw methodNotAllowed(methods);
    };
    if (rel === "/") {
      allow("GET");
      return { kind: "console" };
    }
    if (rel === "/console/app.js" || rel === "/console/app.css") {
      allow("GET");
      return { kind: "asset", name: rel.slice("/console/".length) };
    }
    const api = (name: RouteName, params: Record<string, string> = {}): Matched => ({
      kind: "api",
      name,
      params,
    });
    const fixed = FIXED_PATH_ROUTES.get(rel);
    if (fixed) {
      allow(...fixed.keys());
      return api(fixed.get(method) as RouteName);
    }
    const itemPrefix = "/api/v1/poisons/";
    if (rel.startsWith(itemPrefix) && rel.length > itemPrefix.length) {
      const rest = rel.slice(itemPrefix.length);
      // POST …/{key}/clear: the key is everything before the last "/clear", so a key may hold
      // "/" (encoded or not) and even end in "/clear". GET …/{key}: the key is all of it.
      if (method === "POST") {
        if (!rest.endsWith("/clear") || rest.length === "/clear".length)
          throw methodNotAllowed(["GET"]);
        return api("clearPoison", { key: decodeKey(rest.slice(0, -"/clear".length)) });
      }
      allow("GET");
      return api("getPoison", { key: decodeKey(rest) });
    }
    throw notFound();
  }

  /** The caller, or a refusal: 401 for a missing or wrong token (a wrong one after the
   *  failed-attempt delay), 403 for a role too small. */
  async #authenticate(request: AdminRequest, access: Access): Promise<AdminPrincipal | null> {
    const secret = bearerSecret(request.headers.get("authorization"));
    if (secret !== undefined) {
      const principal = secret === null ? null : (this.#verifier?.verify(secret) ?? null);
      if (!principal) {
        const waited = await this.#throttle.failed(request.client, request.signal);
        if (!waited)
          throw new HttpError(
            429,
            AdminErrorCode.TooManyRequests,
            "too many failed sign-ins at once; wait and retry with a valid token",
            {},
            { "retry-after": "5" },
          );
        throw unauthenticated(
          this.#verifier
            ? "the bearer token is not valid; ask for a token (`poison serve --add-token`)"
            : "this service takes no tokens; send no Authorization header",
        );
      }
      return this.#allow(principal, access);
    }
    if (access === "public") return null;
    if (this.#anonymous) {
      this.#checkHost(request);
      return this.#allow({ name: this.#anonymous.actor, role: this.#anonymous.role }, access);
    }
    throw unauthenticated("this route needs a bearer token: send `Authorization: Bearer <token>`");
  }

  #allow(principal: AdminPrincipal, access: Access): AdminPrincipal {
    if (access !== "public" && RANK[principal.role] < RANK[access]) {
      throw new HttpError(
        403,
        AdminErrorCode.Forbidden,
        `this needs the ${access} role; ${JSON.stringify(principal.name)} has ${principal.role}`,
        { role: principal.role, required: access },
      );
    }
    return principal;
  }

  /** Tokenless requests must name this machine in Host (see AdminAnonymousAccess). */
  #checkHost(request: AdminRequest): void {
    const host = request.headers.get("host") ?? "";
    const name = host
      .replace(/:[0-9]*$/, "")
      .replace(/^\[(.*)\]$/, "$1")
      .toLowerCase();
    const allowed =
      name === "localhost" ||
      name === "::1" ||
      /^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(name) ||
      (this.#anonymous?.allowedHosts ?? []).some((h) => h.toLowerCase() === name);
    if (!allowed) {
      throw new HttpError(
        403,
        AdminErrorCode.Forbidden,
        `requests without a token must be addressed to this machine (Host ${JSON.stringify(host)} is not); use a token, or list the host in anonymous.allowedHosts`,
      );
    }
  }

  async #jsonBody(request: AdminRequest): Promise<unknown> {
    const type = request.headers.get("content-type") ?? "";
    if (!/^application\/json\s*(;|$)/i.test(type)) {
      throw new HttpError(
        415,
        AdminErrorCode.UnsupportedMediaType,
        "send the body as JSON with `Content-Type: application/json`",
      );
    }
    const length = request.headers.get("content-length");
    if (length !== null && Number(length) > this.#maxBodyBytes) throw tooLarge(this.#maxBodyBytes);
    const bytes = await request.readBody(this.#maxBodyBytes);
    try {
      return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (error) {
      throw invalidArgument("body", `is not valid JSON (${(error as Error).message})`);
    }
  }

  #events(request: AdminRequest, head: boolean): Response {
    const q = request.query;
    for (const name of q.keys()) {
      if (name !== "prefix")
        throw invalidArgument(name, "unknown query parameter; this route takes prefix");
    }
    if (q.getAll("prefix").length > 1) throw invalidArgument("prefix", "given more than once");
    if (this.#closing.signal.aborted)
      throw new HttpError(503, "SHUTTING_DOWN", "the service is shutting down");
    const headers = {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    };
    if (head) return new Response(null, { status: 200, headers });
    if (this.#streams >= this.#maxStreams) {
      throw new HttpError(
        429,
        AdminErrorCode.TooManyRequests,
        `${this.#maxStreams} event streams are open already; close one and retry`,
        {},
        { "retry-after": "5" },
      );
    }
    this.#streams++;
    const { signal, dispose } = eitherSignal(request.signal, this.#closing.signal);
    let released = false;
    // Released when the stream ends however it ends: the request aborted, the service closed,
    // or the body cancelled by a runtime that does not abort request.signal.
    const release = () => {
      if (!released) {
        released = true;
        this.#streams--;
        dispose();
      }
    };
    const body = eventStream(this.#feed, q.get("prefix") ?? "", signal, this.#keepAliveMs, release);
    return new Response(body, { status: 200, headers });
  }

  #preflight(request: AdminRequest): Response {
    const origin = request.headers.get("origin");
    if (origin === null || !this.#corsOrigins.has(origin)) throw methodNotAllowed(["GET", "POST"]);
    return new Response(null, {
      status: 204,
      headers: {
        "access-control-allow-methods": "GET, POST",
        "access-control-allow-headers": "Authorization, Content-Type",
        "access-control-max-age": "600",
      },
    });
  }

  #failure(error: unknown): Response {
    const failure = describeFailure(error, this.#now());
    if (!failure) {
      this.#options.onError?.(error);
      return json(500, {
        error: {
          code: AdminErrorCode.Internal,
          message: "unexpected error; the service log has the details",
        },
      });
    }
    const response = json(failure.status, failure.body);
    for (const [name, value] of Object.entries(failure.headers)) response.headers.set(name, value);
    return response;
  }

  /** Every response: the security headers, CORS for an allowed origin, never a cookie. */
  #finish(request: AdminRequest, response: Response): Response {
    const headers = response.headers;
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
      if (!headers.has(name)) headers.set(name, value);
    }
    headers.delete("set-cookie");
    const origin = request.headers.get("origin");
    if (origin !== null && this.#corsOrigins.has(origin)) {
      headers.set("access-control-allow-origin", origin);
      headers.append("vary", "Origin");
    }
    return response;
  }
}

/** A signal that aborts when either does (AbortSignal.any is not in every Node 20), and a
 *  `dispose` that detaches it from both. */
function eitherSignal(a: AbortSignal, b: AbortSignal): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const dispose = () => {
    a.removeEventListener("abort", abort);
    b.removeEventListener("abort", abort);
  };
  function abort() {
    dispose();
    controller.abort();
  }
  if (a.aborted || b.aborted) controller.abort();
  else {
    a.addEventListener("abort", abort);
    b.addEventListener("abort", abort);
  }
  return { signal: controller.signal, dispose };
}

function json(status: number, body: unknown, head = false): Response {
  return new Response(head ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
}

function notFound(): HttpError {
  return new HttpError(404, AdminErrorCode.NotFound, "no such route; see /api/v1/openapi.json");
}

function methodNotAllowed(methods: string[]): HttpError {
  return new HttpError(
    405,
    AdminErrorCode.MethodNotAllowed,
    `this route takes ${methods.join(" or ")}`,
    { allowed: methods },
    { allow: [...methods, ...(methods.includes("GET") ? ["HEAD"] : [])].join(", ") },
  );
}

function unauthenticated(message: string): HttpError {
  return new HttpError(
    401,
    AdminErrorCode.Unauthenticated,
    message,
    {},
    {
      "www-authenticate": 'Bearer realm="poison-admin"',
    },
  );
}

function tooLarge(limit: number): HttpError {
  return new HttpError(
    413,
    AdminErrorCode.PayloadTooLarge,
    `the body is larger than ${limit} bytes`,
    { limit },
  );
}

function decodeKey(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw invalidArgument(
      "key",
      "is not valid percent-encoded UTF-8; encode it with encodeURIComponent",
    );
  }
}

function checkBasePath(value: unknown): string {
  if (value === undefined) return "";
  if (
    typeof value !== "string" ||
    (value !== "" && !value.startsWith("/")) ||
    /[?#%\s]/.test(value)
  )
    throw new InvalidArgumentError(
      "options.basePath",
      'must be a path such as "/admin/poison" (starting with "/", no query, no escapes)',
    );
  return value.replace(/\/+$/, "");
}

function checkAnonymous(value: AdminAnonymousAccess): AdminAnonymousAccess {
  if (value.role !== "viewer" && value.role !== "operator")
    throw new InvalidArgumentError("options.anonymous.role", "must be viewer or operator");
  if (typeof value.actor !== "string" || value.actor.trim() === "")
    throw new InvalidArgumentError(
      "options.anonymous.actor",
      "must name who acts (the audit actor)",
    );
  return value;
}

async function readWebBody(request: Request, limit: number): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

function readNodeBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  // A body parser mounted before us (express.json()) has read the stream already.
  const parsed = (req as { body?: unknown }).body;
  if (req.readableEnded && parsed !== undefined) {
    const text = typeof parsed === "string" ? parsed : JSON.stringify(parsed);
    const bytes = Buffer.from(text, "utf8");
    return bytes.byteLength > limit ? Promise.reject(tooLarge(limit)) : Promise.resolve(bytes);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (error: unknown, body?: Uint8Array) => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      if (error) reject(error);
      else resolve(body as Uint8Array);
    };
    const onData = (chunk: Buffer | string) => {
      const buffer = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      size += buffer.byteLength;
      if (size > limit) {
        // Stop reading (without destroying the socket the 413 goes out on); the answer closes
        // the connection, so the rest is never parsed as another request.
        req.pause();
        done(tooLarge(limit));
        return;
      }
      chunks.push(buffer);
    };
    const onEnd = () => done(null, Buffer.concat(chunks));
    const onError = (error: Error) => done(error);
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

async function writeNodeResponse(
  response: Response,
  res: ServerResponse,
  closed: AbortSignal,
): Promise<void> {
  res.statusCode = response.status;
  response.headers.forEach((value, name) => {
    res.setHeader(name, value);
  });
  if (response.status === 413) res.setHeader("connection", "close");
  if (!response.body) {
    res.end();
    return;
  }
  res.flushHeaders();
  const reader = response.body.getReader();
  const cancel = () => void reader.cancel().catch(() => undefined);
  closed.addEventListener("abort", cancel, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            res.off("drain", go);
            res.off("close", go);
            resolve();
          };
          res.on("drain", go);
          res.on("close", go);
        });
      }
      if (closed.aborted) break;
    }
  } catch {
    // The client went away mid-stream: nothing left to tell it.
  } finally {
    closed.removeEventListener("abort", cancel);
    if (!res.writableEnded) res.end();
  }
}
