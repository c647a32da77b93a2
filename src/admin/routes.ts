/**
 * The JSON API v1 (SPEC §7): one entry per route, each with the role it needs. The OpenAPI
 * document (openapi.ts) describes the same table, and a test holds the two together.
 */
import type { PoisonStoreClient } from "../core/contract.js";
import { ErrorCode } from "../core/errors.js";
import { type Liveness, livenessOf } from "../core/liveness.js";
import type { AuditEntry, ListState, PoisonRecord } from "../core/records.js";
import type { AdminPrincipal, AdminRole } from "./auth.js";
import { HttpError, invalidArgument } from "./errors.js";

/** Who may call a route: anyone, or a caller with at least this role. */
export type Access = "public" | AdminRole;

/** A route's view of the request. */
export interface RouteContext {
  store: PoisonStoreClient;
  principal: AdminPrincipal | null;
  /** Path parameters, percent-decoded. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body (POST only). */
  body: unknown;
  signal: AbortSignal;
  now: Date;
}

/** What a JSON route answers. */
export interface JsonReply {
  status: number;
  body: unknown;
}

export interface ApiRoute {
  method: "GET" | "POST";
  /** OpenAPI-style template under the base path, for example `/api/v1/poisons/{key}`. */
  path: string;
  operationId: string;
  access: Access;
}

/** A record as the API shows it: the stored record plus its holder's liveness at `now`. */
export type AdminRecord = PoisonRecord & { liveness: Liveness };

export const LIST_STATES: readonly ListState[] = ["in-progress", "poisoned", "stale"];

/** Defaults of a manual quarantine, as the CLI's `poison put` writes them. */
const MANUAL_OPERATION = "manual-quarantine";

export function withLiveness(record: PoisonRecord, now: Date): AdminRecord {
  return { ...record, liveness: livenessOf(record, now) };
}

/** Query parameters: only the named ones, each at most once (a typo must not be ignored). */
function queryOf(
  query: URLSearchParams,
  allowed: readonly string[],
): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const name of new Set(query.keys())) {
    if (!allowed.includes(name))
      throw invalidArgument(
        name,
        `unknown query parameter; this route takes ${allowed.join(", ") || "none"}`,
      );
    const values = query.getAll(name);
    if (values.length > 1) throw invalidArgument(name, "given more than once");
    out[name] = values[0];
  }
  return out;
}

function limitOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]{1,4}$/.test(text) || Number(text) < 1 || Number(text) > 1000)
    throw invalidArgument("limit", "must be a whole number from 1 to 1000");
  return Number(text);
}

/** The body of a POST as an object with only the named fields. */
function bodyOf(
  body: unknown,
  required: readonly string[],
  optional: readonly string[],
): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw invalidArgument("body", "must be a JSON object");
  const fields = body as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (!required.includes(name) && !optional.includes(name))
      throw invalidArgument(
        name,
        `unknown field; the body takes ${[...required, ...optional].join(", ")}`,
      );
  }
  for (const name of required) {
    if (fields[name] === undefined) throw invalidArgument(name, "is required");
  }
  return fields;
}

function stringField(fields: Record<string, unknown>, name: string): string | undefined {
  const value = fields[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw invalidArgument(name, "must be a string");
  return value;
}

function actorOf(ctx: RouteContext): string {
  if (!ctx.principal) throw new Error("a write route ran without a principal");
  return ctx.principal.name;
}

/** The routes of the JSON API, in the order the OpenAPI document lists them. */
export const API_ROUTES = {
  listPoisons: {
    method: "GET",
    path: "/api/v1/poisons",
    operationId: "listPoisons",
    access: "viewer",
  },
  getPoison: {
    method: "GET",
    path: "/api/v1/poisons/{key}",
    operationId: "getPoison",
    access: "viewer",
  },
  clearPoison: {
    method: "POST",
    path: "/api/v1/poisons/{key}/clear",
    operationId: "clearPoison",
    access: "operator",
  },
  putPoison: {
    method: "POST",
    path: "/api/v1/poisons",
    operationId: "putPoison",
    access: "operator",
  },
  auditLog: { method: "GET", path: "/api/v1/audit", operationId: "auditLog", access: "viewer" },
  events: { method: "GET", path: "/api/v1/events", operationId: "events", access: "viewer" },
  whoami: { method: "GET", path: "/api/v1/whoami", operationId: "whoami", access: "viewer" },
  openapi: {
    method: "GET",
    path: "/api/v1/openapi.json",
    operationId: "openapi",
    access: "public",
  },
  healthz: { method: "GET", path: "/healthz", operationId: "healthz", access: "public" },
  metrics: { method: "GET", path: "/metrics", operationId: "metrics", access: "viewer" },
} as const satisfies Record<string, ApiRoute>;

export type RouteName = keyof typeof API_ROUTES;

export async function listPoisons(ctx: RouteContext): Promise<JsonReply> {
  const q = queryOf(ctx.query, ["prefix", "state", "token", "operation", "limit", "cursor"]);
  if (q.state !== undefined && !LIST_STATES.includes(q.state as ListState))
    throw invalidArgument("state", `must be one of ${LIST_STATES.join(", ")}`);
  const limit = limitOf(q.limit);
  const page = await ctx.store.listPoisons({
    ...(q.prefix === undefined ? {} : { prefix: q.prefix }),
    ...(q.state === undefined ? {} : { state: q.state as ListState }),
    ...(q.token === undefined ? {} : { token: q.token }),
    ...(q.operation === undefined ? {} : { operation: q.operation }),
    ...(limit === undefined ? {} : { limit }),
    ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
  });
  return {
    status: 200,
    body: {
      records: page.records.map((record) => withLiveness(record, ctx.now)),
      cursor: page.cursor,
      now: ctx.now.toISOString(),
    },
  };
}

export async function getPoison(ctx: RouteContext): Promise<JsonReply> {
  queryOf(ctx.query, []);
  const key = ctx.params.key as string;
  const record = await ctx.store.inspectPoison(key);
  if (!record) throw notPresent(key);
  return {
    status: 200,
    body: { record: withLiveness(record, ctx.now), now: ctx.now.toISOString() },
  };
}

export async function clearPoison(ctx: RouteContext): Promise<JsonReply> {
  queryOf(ctx.query, []);
  const key = ctx.params.key as string;
  const fields = bodyOf(ctx.body, ["reason"], ["expectedToken", "evenIfAlive"]);
  const reason = stringField(fields, "reason") as string;
  if (reason.trim() === "")
    throw invalidArgument("reason", "must say why (it goes to the audit log)");
  const expectedToken = stringField(fields, "expectedToken");
  const evenIfAlive = fields.evenIfAlive;
  if (evenIfAlive !== undefined && typeof evenIfAlive !== "boolean")
    throw invalidArgument("evenIfAlive", "must be true or false");
  const actor = actorOf(ctx);
  const removed = await ctx.store.forceDeletePoison(key, {
    actor,
    reason,
    ...(expectedToken === undefined ? {} : { expectedToken }),
    ...(evenIfAlive === true ? { evenIfAlive: true } : {}),
  });
  if (!removed) throw notPresent(key);
  return {
    status: 200,
    body: {
      cleared: true,
      record: removed,
      audit: await auditEntryOf(ctx.store, key, actor, reason, removed),
    },
  };
}

export async function putPoison(ctx: RouteContext): Promise<JsonReply> {
  queryOf(ctx.query, []);
  const fields = bodyOf(ctx.body, ["key", "token", "reason"], ["operation"]);
  const key = stringField(fields, "key") as string;
  const token = stringField(fields, "token") as string;
  const reason = stringField(fields, "reason") as string;
  if (reason.trim() === "")
    throw invalidArgument("reason", "must say why (it goes to the audit log)");
  const actor = actorOf(ctx);
  const result = await ctx.store.tryPutPoisons([key], token, {
    operation: stringField(fields, "operation") ?? MANUAL_OPERATION,
    owner: `poison-admin:${actor}`,
    audit: { actor, reason },
  });
  const record = result.records[0] as PoisonRecord;
  const created = result.created.length > 0;
  return {
    status: created ? 201 : 200,
    body: { created, record: withLiveness(record, ctx.now) },
  };
}

export async function auditLog(ctx: RouteContext): Promise<JsonReply> {
  const q = queryOf(ctx.query, ["key", "limit", "cursor"]);
  const limit = limitOf(q.limit);
  const page = await ctx.store.auditLog({
    ...(q.key === undefined ? {} : { key: q.key }),
    ...(limit === undefined ? {} : { limit }),
    ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
  });
  return { status: 200, body: { entries: page.entries, cursor: page.cursor } };
}

export function whoami(ctx: RouteContext): JsonReply {
  queryOf(ctx.query, []);
  const principal = ctx.principal as AdminPrincipal;
  return {
    status: 200,
    body: {
      name: principal.name,
      role: principal.role,
      store: {
        backend: ctx.store.backend,
        namespace: ctx.store.namespace,
        location: ctx.store.location,
      },
      now: ctx.now.toISOString(),
    },
  };
}

export async function healthz(ctx: RouteContext): Promise<JsonReply> {
  queryOf(ctx.query, []);
  // A one-record read: it reaches the backend without writing anything.
  await ctx.store.listPoisons({ limit: 1 });
  return { status: 200, body: { status: "ok" } };
}

function notPresent(key: string): HttpError {
  return new HttpError(
    404,
    ErrorCode.PoisonNotFound,
    `poison key ${JSON.stringify(key)} is not present; it may have been cleared already (see its history in the audit log)`,
    { key },
  );
}

/**
 * The audit entry the clear just wrote, for the caller to show: the newest force-delete of the
 * key by this actor with this reason and the removed record's token. Best effort: the clear is
 * done whatever this read says, so a failed read answers null rather than an error.
 */
async function auditEntryOf(
  store: PoisonStoreClient,
  key: string,
  actor: string,
  reason: string,
  removed: PoisonRecord,
): Promise<AuditEntry | null> {
  try {
    const { entries } = await store.auditLog({ key, limit: 20 });
    return (
      entries.find(
        (entry) =>
          entry.action === "force-delete" &&
          entry.actor === actor &&
          entry.reason === reason &&
          entry.record?.token === removed.token,
      ) ?? null
    );
  } catch {
    return null;
  }
}
