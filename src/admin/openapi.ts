/**
 * The OpenAPI 3.1 document of the admin service, served at `/api/v1/openapi.json`. It describes
 * the route table of routes.ts; test/admin/openapi.test.ts checks every route and every response
 * the tests see against it, so the two cannot drift apart silently.
 */
import { ErrorCode } from "../core/errors.js";
import { AdminErrorCode } from "./errors.js";
import { API_ROUTES, LIST_STATES } from "./routes.js";

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const nullable = (schema: Schema): Schema => ({ oneOf: [schema, { type: "null" }] });
const isoTime: Schema = { type: "string", format: "date-time" };

const RECORD_PROPERTIES: Record<string, Schema> = {
  key: { type: "string" },
  token: { type: "string" },
  state: { enum: ["in-progress", "poisoned"] },
  createdAt: isoTime,
  updatedAt: isoTime,
  heartbeatAt: isoTime,
  heartbeatIntervalMs: { type: "number", exclusiveMinimum: 0 },
  operation: { type: "string" },
  owner: { type: "string" },
  error: ref("PoisonErrorInfo"),
  data: { description: "JSON the operation kept for its repair (any JSON value)." },
};
const RECORD_REQUIRED = ["key", "token", "state", "createdAt", "updatedAt"];

const object = (properties: Record<string, Schema>, required: string[], extra: Schema = {}) => ({
  type: "object",
  properties,
  required,
  additionalProperties: false,
  ...extra,
});

const SCHEMAS: Record<string, Schema> = {
  Error: object(
    {
      error: {
        type: "object",
        properties: {
          code: {
            type: "string",
            description:
              "Stable: INVALID_ARGUMENT, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, POISON_NOT_FOUND, METHOD_NOT_ALLOWED, POISON_CONFLICT, HOLDER_ALIVE, READ_ONLY_STORE, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, TOO_MANY_REQUESTS, BACKEND_UNAVAILABLE, BACKEND_CONFIGURATION, STORE_CLOSED, SHUTTING_DOWN, INTERNAL.",
          },
          message: { type: "string", description: "What went wrong and what to do next." },
          argument: { type: "string" },
          reason: { type: "string" },
          key: { type: "string" },
          token: { type: "string" },
          holder: { type: "string" },
          record: ref("PoisonRecord"),
          liveness: ref("Liveness"),
          backend: { type: "string" },
          setting: { type: "string" },
          role: { enum: ["viewer", "operator"] },
          required: { enum: ["viewer", "operator"] },
          allowed: { type: "array", items: { type: "string" } },
          limit: { type: "integer" },
        },
        required: ["code", "message"],
        additionalProperties: false,
      },
    },
    ["error"],
  ),
  PoisonErrorInfo: object(
    {
      name: { type: "string" },
      message: { type: "string" },
      stack: { type: "string" },
      at: isoTime,
    },
    ["name", "message", "at"],
  ),
  Liveness: object(
    {
      live: { type: "boolean", description: "now − heartbeatAt < 3 × heartbeatIntervalMs" },
      stale: { type: "boolean", description: "in-progress and not live" },
      heartbeatAgeMs: nullable({ type: "number" }),
      heartbeatIntervalMs: nullable({ type: "number" }),
    },
    ["live", "stale", "heartbeatAgeMs", "heartbeatIntervalMs"],
  ),
  PoisonRecord: object(RECORD_PROPERTIES, RECORD_REQUIRED),
  AdminRecord: object(
    { ...RECORD_PROPERTIES, liveness: ref("Liveness") },
    [...RECORD_REQUIRED, "liveness"],
    { description: "A record and its holder's liveness, computed by the server at `now`." },
  ),
  AuditEntry: object(
    {
      id: { type: "string" },
      at: isoTime,
      action: { enum: ["put", "delete", "force-delete"] },
      key: { type: "string" },
      actor: { type: "string" },
      reason: { type: "string" },
      token: { type: "string" },
      record: ref("PoisonRecord"),
      evenIfAlive: { const: true },
    },
    ["id", "at", "action", "key", "actor", "reason"],
  ),
  PoisonPage: object(
    {
      records: { type: "array", items: ref("AdminRecord") },
      cursor: nullable({ type: "string" }),
      now: isoTime,
    },
    ["records", "cursor", "now"],
    {
      description:
        "With filters a page may hold fewer records than `limit` (even none) while `cursor` is not null: keep following it.",
    },
  ),
  PoisonDetail: object({ record: ref("AdminRecord"), now: isoTime }, ["record", "now"]),
  ClearRequest: object(
    {
      reason: { type: "string", minLength: 1, description: "Why, for the audit log." },
      expectedToken: {
        type: "string",
        description: "Refuse (409 POISON_CONFLICT) unless this token holds the key.",
      },
      evenIfAlive: {
        type: "boolean",
        description: "Clear even a live holder (409 HOLDER_ALIVE otherwise); audited.",
      },
    },
    ["reason"],
  ),
  ClearResult: object(
    {
      cleared: { const: true },
      record: ref("PoisonRecord"),
      audit: nullable(ref("AuditEntry")),
    },
    ["cleared", "record", "audit"],
  ),
  PutRequest: object(
    {
      key: { type: "string", minLength: 1 },
      token: { type: "string", minLength: 1 },
      operation: { type: "string", description: "Default manual-quarantine." },
      reason: { type: "string", minLength: 1 },
    },
    ["key", "token", "reason"],
  ),
  PutResult: object({ created: { type: "boolean" }, record: ref("AdminRecord") }, [
    "created",
    "record",
  ]),
  AuditPage: object(
    { entries: { type: "array", items: ref("AuditEntry") }, cursor: nullable({ type: "string" }) },
    ["entries", "cursor"],
  ),
  WhoAmI: object(
    {
      name: { type: "string", description: "The token's name: the audit actor." },
      role: { enum: ["viewer", "operator"] },
      store: object(
        {
          backend: { type: "string" },
          namespace: { type: "string" },
          location: { type: "string", description: "Where the store is (passwords redacted)." },
        },
        ["backend", "namespace", "location"],
      ),
      now: isoTime,
    },
    ["name", "role", "store", "now"],
  ),
  Health: object({ status: { const: "ok" } }, ["status"]),
  ChangeEvent: object(
    {
      type: { enum: ["put", "poisoned", "touched", "deleted", "force-deleted", "resync"] },
      key: { type: "string" },
      record: ref("PoisonRecord"),
      at: isoTime,
      error: { type: "string" },
    },
    ["type", "key", "at"],
  ),
};

const jsonContent = (schema: Schema) => ({ "application/json": { schema } });

const ERROR_RESPONSES: Record<string, { description: string }> = {
  "400": { description: `${ErrorCode.InvalidArgument}: a parameter or body field is malformed.` },
  "401": { description: `${AdminErrorCode.Unauthenticated}: no bearer token, or not a valid one.` },
  "403": {
    description: `${AdminErrorCode.Forbidden}: the token's role is not enough; or READ_ONLY_STORE: the store opens read-only (the greptimedb layout without allowWrite).`,
  },
  "404": { description: `${ErrorCode.PoisonNotFound}: the key is not present.` },
  "409": {
    description: `${ErrorCode.PoisonConflict}: held by another token; ${ErrorCode.HolderAlive}: the holder is live.`,
  },
  "413": { description: `${AdminErrorCode.PayloadTooLarge}: the body is too large.` },
  "415": {
    description: `${AdminErrorCode.UnsupportedMediaType}: the body is not application/json.`,
  },
  "429": { description: `${AdminErrorCode.TooManyRequests}: too many failed sign-ins or streams.` },
  "503": {
    description: `${ErrorCode.BackendUnavailable} (retry) or ${ErrorCode.BackendConfiguration} (fix the store's setup).`,
  },
};

function errors(...statuses: string[]): Record<string, unknown> {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      { ...ERROR_RESPONSES[status], content: jsonContent(ref("Error")) },
    ]),
  );
}

/** 401 and 429 (failed sign-ins) for every route that takes a token. */
const AUTH = ["401", "403", "429"];

const queryParam = (name: string, description: string, schema: Schema = { type: "string" }) => ({
  name,
  in: "query",
  required: false,
  description,
  schema,
});

const LIMIT = queryParam("limit", "Page size, 1..1000 (default 100).", {
  type: "integer",
  minimum: 1,
  maximum: 1000,
});
const CURSOR = queryParam("cursor", "The `cursor` of the previous page (same filters).");
const KEY_PARAM = {
  name: "key",
  in: "path",
  required: true,
  description:
    "The poison key, percent-encoded as one segment (encodeURIComponent: `/` as %2F, `%` as %25, spaces, non-ASCII). Keys that are exactly `.` or `..` cannot be named in a URL path.",
  schema: { type: "string" },
};

/** The document, with `servers` set to where the service is mounted. */
export function openApiDocument(basePath: string): Record<string, unknown> {
  const r = API_ROUTES;
  const op = (
    route: { operationId: string; access: string },
    fields: Record<string, unknown>,
  ): Record<string, unknown> => ({
    operationId: route.operationId,
    ...(route.access === "public" ? { security: [] } : {}),
    "x-required-role": route.access,
    ...fields,
  });
  return {
    openapi: "3.1.0",
    info: {
      title: "poison-store admin API",
      version: "1",
      description:
        "Find, inspect and recover poison keys. Bearer tokens with roles `viewer` (read) and `operator` (read, clear, put). Errors are `{ error: { code, message, … } }`.",
    },
    servers: [{ url: basePath === "" ? "/" : basePath }],
    security: [{ bearer: [] }],
    paths: {
      [r.listPoisons.path]: {
        get: op(r.listPoisons, {
          summary: "List poison keys, ordered by key, one page at a time",
          parameters: [
            queryParam("prefix", "Only keys that start with this (matched literally)."),
            queryParam("state", "Only records in this state (stale: in-progress and not live).", {
              enum: [...LIST_STATES],
            }),
            queryParam("token", "Only records held by this token."),
            queryParam("operation", "Only records of this operation."),
            LIMIT,
            CURSOR,
          ],
          responses: {
            "200": { description: "One page.", content: jsonContent(ref("PoisonPage")) },
            ...errors("400", ...AUTH, "503"),
          },
        }),
        post: op(r.putPoison, {
          summary: "Quarantine a resource by hand (audited)",
          requestBody: { required: true, content: jsonContent(ref("PutRequest")) },
          responses: {
            "201": { description: "Written.", content: jsonContent(ref("PutResult")) },
            "200": {
              description: "Already held by this token; nothing changed.",
              content: jsonContent(ref("PutResult")),
            },
            ...errors("400", ...AUTH, "409", "413", "415", "503"),
          },
        }),
      },
      [r.getPoison.path]: {
        get: op(r.getPoison, {
          summary: "One record, with its holder's liveness",
          parameters: [KEY_PARAM],
          responses: {
            "200": { description: "The record.", content: jsonContent(ref("PoisonDetail")) },
            ...errors("400", ...AUTH, "404", "503"),
          },
        }),
      },
      [r.clearPoison.path]: {
        post: op(r.clearPoison, {
          summary: "Force-clear a key (an operator's recovery, audited with the token's name)",
          description:
            "Refuses a live holder with 409 HOLDER_ALIVE unless `evenIfAlive` is true, and a holder other than `expectedToken` with 409 POISON_CONFLICT.",
          parameters: [KEY_PARAM],
          requestBody: { required: true, content: jsonContent(ref("ClearRequest")) },
          responses: {
            "200": {
              description: "Cleared; `audit` is the entry written.",
              content: jsonContent(ref("ClearResult")),
            },
            ...errors("400", ...AUTH, "404", "409", "413", "415", "503"),
          },
        }),
      },
      [r.auditLog.path]: {
        get: op(r.auditLog, {
          summary: "The audit log, newest first",
          parameters: [queryParam("key", "Only entries about this exact key."), LIMIT, CURSOR],
          responses: {
            "200": { description: "One page.", content: jsonContent(ref("AuditPage")) },
            ...errors("400", ...AUTH, "503"),
          },
        }),
      },
      [r.events.path]: {
        get: op(r.events, {
          summary: "Changes as Server-Sent Events",
          description:
            "Each event's `data` is one ChangeEvent as JSON. From the store's watch(): the driver's native change feed, else its bounded polling fallback (see docs/OBSERVABILITY.md). On `resync`, reload.",
          parameters: [queryParam("prefix", "Only keys that start with this.")],
          responses: {
            "200": {
              description: "An endless stream.",
              content: {
                "text/event-stream": {
                  schema: { type: "string" },
                  "x-event-data": ref("ChangeEvent"),
                },
              },
            },
            ...errors("400", ...AUTH, "503"),
          },
        }),
      },
      [r.whoami.path]: {
        get: op(r.whoami, {
          summary: "Who the token is, its role and which store this is",
          responses: {
            "200": { description: "The caller.", content: jsonContent(ref("WhoAmI")) },
            ...errors("400", ...AUTH),
          },
        }),
      },
      [r.openapi.path]: {
        get: op(r.openapi, {
          summary: "This document",
          responses: {
            "200": { description: "OpenAPI 3.1.", content: jsonContent({ type: "object" }) },
            ...errors("401", "429"),
          },
        }),
      },
      [r.healthz.path]: {
        get: op(r.healthz, {
          summary: "Whether the store answers",
          responses: {
            "200": { description: "It does.", content: jsonContent(ref("Health")) },
            ...errors("400", "401", "429", "503"),
          },
        }),
      },
      [r.metrics.path]: {
        get: op(r.metrics, {
          summary: "Prometheus metrics, when the service is given a source",
          description: "The role needed is configured (`metrics.access`, default viewer).",
          responses: {
            "200": {
              description: "Prometheus text.",
              content: { "text/plain": { schema: { type: "string" } } },
            },
            "404": { description: "No metrics configured.", content: jsonContent(ref("Error")) },
            ...errors(...AUTH),
          },
        }),
      },
    },
    components: {
      schemas: SCHEMAS,
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "A token from the service's token file (`poison serve --add-token`).",
        },
      },
    },
  };
}
