/**
 * The role matrix: every route × {no token, a bad token, viewer, operator}, each answer checked
 * against the OpenAPI document the service serves. And the document against the route table.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { API_ROUTES } from "../../src/admin/routes.js";
import type { PoisonStoreClient } from "../../src/index.js";
import { OpenApiChecker } from "./openapi-check.js";
import {
  type Answer,
  BAD_SECRET,
  call,
  codeOf,
  memoryStore,
  OPERATOR_SECRET,
  type RunningAdmin,
  seed,
  startAdmin,
  VIEWER_SECRET,
} from "./support.js";

const BASE = "/admin";

type Access = "console" | "public" | "viewer" | "operator";

interface RouteCase {
  name: string;
  method: "GET" | "POST";
  access: Access;
  /** The path under the base path; a function gets a fresh one per call. */
  path: string | ((n: number) => Promise<string>);
  body?: (n: number) => unknown;
  /** The status of a successful call. */
  ok: number;
  stream?: true;
}

const CALLERS = [
  { name: "no token", token: null },
  { name: "a bad token", token: BAD_SECRET },
  { name: "a viewer token", token: VIEWER_SECRET },
  { name: "an operator token", token: OPERATOR_SECRET },
] as const;

function expected(access: Access, caller: (typeof CALLERS)[number]["name"], ok: number): number {
  if (access === "console") return 200;
  if (caller === "a bad token") return 401;
  if (access === "public") return 200;
  if (caller === "no token") return 401;
  if (access === "operator" && caller === "a viewer token") return 403;
  return ok;
}

describe("admin role matrix", () => {
  let store: PoisonStoreClient;
  let running: RunningAdmin;
  let checker: OpenApiChecker;
  let counter = 0;

  before(async () => {
    store = memoryStore();
    await seed(store);
    running = await startAdmin(store, {
      basePath: BASE,
      // The matrix sends many bad tokens on purpose; the slowdown has its own test.
      authFailureDelay: { freeAttempts: 10_000 },
      metrics: {
        contentType: "text/plain; version=0.0.4; charset=utf-8",
        metrics: async () =>
          '# HELP poison_keys Poison keys by state\npoison_keys{state="poisoned"} 1\n',
      },
      events: { intervalMs: 50 },
    });
    const doc = await call(`${running.url}/api/v1/openapi.json`);
    checker = new OpenApiChecker(doc.body);
  });
  after(async () => {
    await running.close();
    await store.close();
  });

  const freshKey = async (n: number) => {
    const key = `matrix/clear/${n}/a key with spaces/é`;
    await store.tryPutPoison(key, `token-${n}`, { operation: "matrix" });
    return `/api/v1/poisons/${encodeURIComponent(key)}/clear`;
  };

  const ROUTES: RouteCase[] = [
    { name: "console page", method: "GET", access: "console", path: "/", ok: 200 },
    { name: "console script", method: "GET", access: "console", path: "/console/app.js", ok: 200 },
    { name: "console styles", method: "GET", access: "console", path: "/console/app.css", ok: 200 },
    { name: "healthz", method: "GET", access: "public", path: "/healthz", ok: 200 },
    { name: "openapi", method: "GET", access: "public", path: "/api/v1/openapi.json", ok: 200 },
    { name: "metrics", method: "GET", access: "viewer", path: "/metrics", ok: 200 },
    { name: "whoami", method: "GET", access: "viewer", path: "/api/v1/whoami", ok: 200 },
    { name: "list", method: "GET", access: "viewer", path: "/api/v1/poisons?limit=2", ok: 200 },
    {
      name: "detail",
      method: "GET",
      access: "viewer",
      path: `/api/v1/poisons/${encodeURIComponent("table/1024")}`,
      ok: 200,
    },
    { name: "audit", method: "GET", access: "viewer", path: "/api/v1/audit", ok: 200 },
    {
      name: "events",
      method: "GET",
      access: "viewer",
      path: "/api/v1/events",
      ok: 200,
      stream: true,
    },
    {
      name: "clear",
      method: "POST",
      access: "operator",
      path: freshKey,
      body: () => ({ reason: "matrix: repaired by hand" }),
      ok: 200,
    },
    {
      name: "put",
      method: "POST",
      access: "operator",
      path: "/api/v1/poisons",
      body: (n) => ({ key: `matrix/put/${n}`, token: "maint-1", reason: "matrix: maintenance" }),
      ok: 201,
    },
  ];

  it("covers every route of the API table", () => {
    const covered = new Set(
      ROUTES.filter((route) => route.access !== "console").map((route) => route.name),
    );
    assert.equal(covered.size, Object.keys(API_ROUTES).length);
  });

  for (const route of ROUTES) {
    for (const caller of CALLERS) {
      const want = expected(route.access, caller.name, route.ok);
      it(`${route.method} ${route.name} with ${caller.name}: ${want}`, async () => {
        const n = ++counter;
        const path = typeof route.path === "string" ? route.path : await route.path(n);
        const url = `${running.url}${path}`;
        const answer = route.stream
          ? await openStream(url, caller.token)
          : await call(url, {
              method: route.method,
              token: caller.token,
              ...(route.body ? { body: route.body(n) } : {}),
            });
        assert.equal(answer.status, want, `${answer.text.slice(0, 300)}`);
        assert.equal(answer.headers.get("set-cookie"), null, "no cookies, ever");
        assert.match(answer.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
        assert.equal(answer.headers.get("x-content-type-options"), "nosniff");
        if (want === 401) {
          assert.equal(codeOf(answer), "UNAUTHENTICATED");
          assert.match(answer.headers.get("www-authenticate") ?? "", /^Bearer/);
        }
        if (want === 403) assert.equal(codeOf(answer), "FORBIDDEN");
        if (route.access !== "console") checker.check(route.method, pathOnly(path), answer);
        if (route.name === "clear" && want === 200) {
          const body = answer.body as { audit: { actor: string } };
          assert.equal(body.audit.actor, "olga", "the audit actor is the token's name");
        }
      });
    }
  }

  it("saw a success of every operation of the OpenAPI document", () => {
    for (const [path, methods] of Object.entries(checker.doc.paths)) {
      for (const method of Object.keys(methods)) {
        const ok = [...checker.seen].some(
          (seen) =>
            seen.startsWith(`${method.toUpperCase()} ${path} 2`) && seen.split(" ").length === 3,
        );
        assert.ok(ok, `no successful ${method.toUpperCase()} ${path} was checked`);
      }
    }
  });

  it("the document lists exactly the routes of the API table, each once", () => {
    const documented = Object.entries(checker.doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(
        ([method, op]) =>
          `${method.toUpperCase()} ${path} ${(op as { operationId?: string }).operationId}`,
      ),
    );
    const table = Object.values(API_ROUTES).map(
      (route) => `${route.method} ${route.path} ${route.operationId}`,
    );
    assert.deepEqual(documented.sort(), table.sort());
    const doc = checker.doc as unknown as { openapi: string; servers: Array<{ url: string }> };
    assert.equal(doc.openapi, "3.1.0");
    assert.deepEqual(doc.servers, [{ url: BASE }]);
  });

  it("every role a route needs is the one the document states", () => {
    for (const route of Object.values(API_ROUTES)) {
      const op = checker.doc.paths[route.path]?.[route.method.toLowerCase()] as unknown as {
        "x-required-role": string;
        security?: unknown[];
      };
      assert.equal(op["x-required-role"], route.access);
      if (route.access === "public") assert.deepEqual(op.security, []);
    }
  });
});

function pathOnly(path: string): string {
  const split = path.indexOf("?");
  return split === -1 ? path : path.slice(0, split);
}

/** Open the event stream, read its first bytes, and hang up. */
async function openStream(url: string, token: string | null): Promise<Answer> {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: controller.signal,
  });
  let text = "";
  let body: unknown = "";
  if (response.ok && response.body) {
    const reader = response.body.getReader();
    const { value } = await reader.read();
    text = new TextDecoder().decode(value);
    assert.match(text, /^retry: \d+\n: connected\n\n/);
    text = "";
  } else {
    text = await response.text();
    body = JSON.parse(text);
  }
  controller.abort();
  return {
    status: response.status,
    headers: response.headers,
    body,
    text: response.ok ? "" : text,
  };
}
