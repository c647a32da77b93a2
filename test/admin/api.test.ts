/**
 * The JSON API on real stores (memory and a SQLite file): what each route answers, keys that need
 * encoding, paging and filters, clears and puts with their audit entries, limits, headers and
 * every error status. Every answer of an API route is checked against the OpenAPI document.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openApiDocument } from "../../src/admin/openapi.js";
import { BackendConfigurationError } from "../../src/core/errors.js";
import {
  type AuditEntry,
  createPoisonAdmin,
  openPoisonStore,
  type PoisonAdminOptions,
  type PoisonStoreClient,
} from "../../src/index.js";
import { backendSkipReason } from "../conformance/harness.js";
import { OpenApiChecker } from "./openapi-check.js";
import {
  type Answer,
  type Call,
  call,
  codeOf,
  LIVE_KEY,
  memoryStore,
  OPERATOR_SECRET,
  POISONED_KEY,
  type RunningAdmin,
  STALE_KEY,
  seed,
  startAdmin,
  VIEWER_SECRET,
} from "./support.js";

const checker = new OpenApiChecker(openApiDocument(""));

/** Call the service and check the answer against the OpenAPI document (API routes only). */
async function api(running: RunningAdmin, path: string, init: Call = {}): Promise<Answer> {
  const answer = await call(`${running.url}${path}`, { token: OPERATOR_SECRET, ...init });
  const bare = path.split("?")[0] as string;
  if (bare.startsWith("/api/") || bare === "/healthz" || bare === "/metrics") {
    // A GET of a key with raw slashes is ours, not the document's (which encodes them).
    if (checker.template(bare)) checker.check(init.method ?? "GET", bare, answer);
  }
  return answer;
}

const enc = encodeURIComponent;
type Page = { records: Array<{ key: string; state: string }>; cursor: string | null };

const scratch = mkdtempSync(join(tmpdir(), "poison-admin-api-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const STORES: Array<{ name: string; open(): PoisonStoreClient }> = [
  { name: "memory", open: memoryStore },
  {
    name: "sqlite",
    open: () =>
      openPoisonStore(`sqlite:${join(scratch, `${Math.random().toString(36).slice(2)}.db`)}`),
  },
];

for (const backend of STORES) {
  describe(`admin API on ${backend.name}`, async () => {
    const skip = await backendSkipReason(backend.name);
    if (skip !== null) return;
    let store: PoisonStoreClient;
    let running: RunningAdmin;

    before(async () => {
      store = backend.open();
      await seed(store);
      running = await startAdmin(store);
    });
    after(async () => {
      await running.close();
      await store.close();
    });

    it("lists records ordered by key, with liveness and the server's now", async () => {
      const answer = await api(running, "/api/v1/poisons");
      assert.equal(answer.status, 200);
      const page = answer.body as Page & { now: string };
      assert.deepEqual(
        page.records.map((r) => r.key),
        [LIVE_KEY, STALE_KEY, POISONED_KEY],
      );
      assert.equal(page.cursor, null);
      assert.ok(Math.abs(Date.parse(page.now) - Date.now()) < 5000);
      const stale = page.records.find((r) => r.key === STALE_KEY) as unknown as {
        liveness: { stale: boolean; live: boolean };
      };
      assert.deepEqual(
        { live: stale.liveness.live, stale: stale.liveness.stale },
        { live: false, stale: true },
      );
    });

    it("pages with limit and cursor, and filters by prefix", async () => {
      const first = (await api(running, "/api/v1/poisons?limit=2")).body as Page;
      assert.equal(first.records.length, 2);
      assert.ok(first.cursor);
      const second = (await api(running, `/api/v1/poisons?limit=2&cursor=${enc(first.cursor)}`))
        .body as Page;
      assert.deepEqual(
        second.records.map((r) => r.key),
        [POISONED_KEY],
      );
      assert.equal(second.cursor, null);
      const prefixed = (await api(running, "/api/v1/poisons?prefix=table%2F")).body as Page;
      assert.deepEqual(
        prefixed.records.map((r) => r.key),
        [POISONED_KEY],
      );
    });

    // Needs listPoisons's state/token/operation filters (the lead's second-release store).
    it("filters by state, token and operation (following the cursor)", async () => {
      const all = async (query: string) => {
        const keys: string[] = [];
        let cursor: string | null = null;
        do {
          const page = (
            await api(
              running,
              `/api/v1/poisons?${query}&limit=1${cursor ? `&cursor=${enc(cursor)}` : ""}`,
            )
          ).body as Page;
          keys.push(...page.records.map((r) => r.key));
          cursor = page.cursor;
        } while (cursor !== null);
        return keys;
      };
      assert.deepEqual(await all("state=poisoned"), [POISONED_KEY]);
      assert.deepEqual(await all("state=stale"), [STALE_KEY]);
      assert.deepEqual(await all("token=procedure-dead"), [STALE_KEY]);
      assert.deepEqual(await all("operation=alter-table"), [POISONED_KEY]);
    });

    it("refuses malformed list parameters with 400 INVALID_ARGUMENT", async () => {
      for (const query of [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "state=broken",
        "status=poisoned",
        "prefix=a&prefix=b",
        "cursor=not-a-cursor",
      ]) {
        const answer = await api(running, `/api/v1/poisons?${query}`);
        assert.equal(answer.status, 400, query);
        assert.equal(codeOf(answer), "INVALID_ARGUMENT", query);
      }
    });

    it("addresses any valid key: /, %, spaces, non-ASCII, even one ending in /clear", async () => {
      const keys = [
        "a/b c%d/é/日本語",
        "100% done",
        "trailing/",
        "/leading",
        "ends/with/clear",
        "question?hash#",
        "plus+and&amp",
      ];
      for (const [i, key] of keys.entries()) {
        await store.tryPutPoison(key, `enc-${i}`);
        const got = await api(running, `/api/v1/poisons/${enc(key)}`);
        assert.equal(got.status, 200, key);
        assert.equal((got.body as { record: { key: string } }).record.key, key);
      }
      // Raw slashes in a GET path are accepted too (curl-friendly).
      const raw = await call(`${running.url}/api/v1/poisons/table/1024`, {
        token: VIEWER_SECRET,
      });
      assert.equal((raw.body as { record: { key: string } }).record.key, POISONED_KEY);
      // The key "ends/with/clear" is cleared, not confused with the clear action of "ends/with".
      const cleared = await api(running, `/api/v1/poisons/${enc("ends/with/clear")}/clear`, {
        method: "POST",
        body: { reason: "encoding test" },
      });
      assert.equal(cleared.status, 200);
      assert.equal((cleared.body as { record: { key: string } }).record.key, "ends/with/clear");
      for (const [i, key] of keys.entries()) await store.deletePoison(key, `enc-${i}`);
    });

    it("answers 404 POISON_NOT_FOUND for an absent key, 400 for a malformed encoding", async () => {
      const absent = await api(running, `/api/v1/poisons/${enc("no/such/key")}`);
      assert.equal(absent.status, 404);
      assert.equal(codeOf(absent), "POISON_NOT_FOUND");
      const broken = await api(running, "/api/v1/poisons/%E0%A4%A");
      assert.equal(broken.status, 400);
      const tooLong = await api(running, `/api/v1/poisons/${"k".repeat(1025)}`);
      assert.equal(tooLong.status, 400);
      assert.equal((tooLong.body as { error: { argument: string } }).error.argument, "key");
    });

    it("clears a key as the token's name and answers the audit entry it wrote", async () => {
      await store.tryPutPoison("clear/me", "procedure-9", { operation: "resize" });
      const answer = await api(running, `/api/v1/poisons/${enc("clear/me")}/clear`, {
        method: "POST",
        body: { reason: "disk resized by hand", expectedToken: "procedure-9" },
      });
      assert.equal(answer.status, 200);
      const body = answer.body as { cleared: true; record: { token: string }; audit: AuditEntry };
      assert.equal(body.record.token, "procedure-9");
      assert.equal(body.audit.action, "force-delete");
      assert.equal(body.audit.actor, "olga");
      assert.equal(body.audit.reason, "disk resized by hand");
      assert.equal(await store.getPoison("clear/me"), null);
      const history = await api(running, `/api/v1/audit?key=${enc("clear/me")}`);
      assert.deepEqual(
        (history.body as { entries: AuditEntry[] }).entries.map((e) => [e.action, e.actor]),
        [["force-delete", "olga"]],
      );
      const again = await api(running, `/api/v1/poisons/${enc("clear/me")}/clear`, {
        method: "POST",
        body: { reason: "twice" },
      });
      assert.equal(again.status, 404);
      assert.equal(codeOf(again), "POISON_NOT_FOUND");
    });

    it("refuses a clear whose expectedToken is not the holder: 409 POISON_CONFLICT", async () => {
      const answer = await api(running, `/api/v1/poisons/${enc(STALE_KEY)}/clear`, {
        method: "POST",
        body: { reason: "wrong holder", expectedToken: "procedure-other" },
      });
      assert.equal(answer.status, 409);
      const error = (answer.body as { error: Record<string, unknown> }).error;
      assert.equal(error.code, "POISON_CONFLICT");
      assert.equal(error.holder, "procedure-dead");
      assert.equal(await store.getPoison(STALE_KEY), "procedure-dead");
    });

    // Needs forceDeletePoison's live-holder refusal and heartbeatIntervalMs (second release).
    it("refuses a live holder with 409 HOLDER_ALIVE unless evenIfAlive, which is audited", async () => {
      const refused = await api(running, `/api/v1/poisons/${enc(LIVE_KEY)}/clear`, {
        method: "POST",
        body: { reason: "looks stuck" },
      });
      assert.equal(refused.status, 409, refused.text);
      const error = (refused.body as { error: { code: string; liveness: { live: boolean } } })
        .error;
      assert.equal(error.code, "HOLDER_ALIVE");
      assert.equal(error.liveness.live, true);
      assert.equal(await store.getPoison(LIVE_KEY), "procedure-live");
      const forced = await api(running, `/api/v1/poisons/${enc(LIVE_KEY)}/clear`, {
        method: "POST",
        body: { reason: "the node is gone, its process too", evenIfAlive: true },
      });
      assert.equal(forced.status, 200, forced.text);
      assert.equal((forced.body as { audit: AuditEntry }).audit.evenIfAlive, true);
      await store.tryPutPoison(LIVE_KEY, "procedure-live", {
        operation: "rotate-key",
        heartbeatIntervalMs: 60_000,
      });
    });

    it("refuses malformed clear bodies with 400", async () => {
      const path = `/api/v1/poisons/${enc(STALE_KEY)}/clear`;
      for (const body of [
        {},
        { reason: "" },
        { reason: "   " },
        { reason: 42 },
        { reason: "ok", evenIfAlive: "yes" },
        { reason: "ok", expectedToken: 7 },
        { reason: "ok", actor: "someone-else" },
        [],
        "just a string",
      ]) {
        const answer = await api(running, path, { method: "POST", body });
        assert.equal(answer.status, 400, JSON.stringify(body));
        assert.equal(codeOf(answer), "INVALID_ARGUMENT");
      }
      const notJson = await api(running, path, { method: "POST", body: "{not json" });
      assert.equal(notJson.status, 400);
      assert.equal(await store.getPoison(STALE_KEY), "procedure-dead");
    });

    it("puts a manual quarantine (201), idempotently (200), refuses another holder (409)", async () => {
      const body = { key: "region/us-east", token: "maint-7", reason: "network maintenance" };
      const created = await api(running, "/api/v1/poisons", { method: "POST", body });
      assert.equal(created.status, 201);
      const record = (created.body as { record: Record<string, unknown> }).record;
      assert.equal(record.operation, "manual-quarantine");
      assert.equal(record.owner, "poison-admin:olga");
      const again = await api(running, "/api/v1/poisons", { method: "POST", body });
      assert.equal(again.status, 200);
      assert.equal((again.body as { created: boolean }).created, false);
      const other = await api(running, "/api/v1/poisons", {
        method: "POST",
        body: { ...body, token: "maint-8", operation: "freeze" },
      });
      assert.equal(other.status, 409);
      assert.equal(codeOf(other), "POISON_CONFLICT");
      const audit = await api(running, `/api/v1/audit?key=${enc("region/us-east")}`);
      const entries = (audit.body as { entries: AuditEntry[] }).entries;
      assert.deepEqual(
        entries.map((e) => [e.action, e.actor, e.reason]),
        [["put", "olga", "network maintenance"]],
      );
      const missing = await api(running, "/api/v1/poisons", {
        method: "POST",
        body: { key: "x", token: "y" },
      });
      assert.equal(missing.status, 400);
      await store.deletePoison("region/us-east", "maint-7");
    });

    it("pages the audit log newest first and refuses a foreign cursor", async () => {
      for (let i = 0; i < 3; i++) {
        await store.tryPutPoison(`audit/${i}`, "t", { audit: { actor: "seed", reason: `r${i}` } });
      }
      const first = (await api(running, "/api/v1/audit?limit=2")).body as {
        entries: AuditEntry[];
        cursor: string;
      };
      assert.equal(first.entries.length, 2);
      assert.ok(first.entries[0] && first.entries[1] && first.entries[0].at >= first.entries[1].at);
      const second = await api(running, `/api/v1/audit?limit=2&cursor=${enc(first.cursor)}`);
      assert.equal(second.status, 200);
      const bad = await api(running, "/api/v1/audit?cursor=nope");
      assert.equal(bad.status, 400);
    });

    it("says who the caller is and which store this is", async () => {
      const answer = await api(running, "/api/v1/whoami", { token: VIEWER_SECRET });
      const body = answer.body as { name: string; role: string; store: { backend: string } };
      assert.deepEqual(
        [body.name, body.role, body.store.backend],
        ["victor", "viewer", backend.name],
      );
    });
  });
}

describe("admin service limits and headers", () => {
  let store: PoisonStoreClient;
  let running: RunningAdmin;
  before(async () => {
    store = memoryStore();
    await seed(store);
    running = await startAdmin(store, { maxBodyBytes: 1024 });
  });
  after(async () => {
    await running.close();
    await store.close();
  });
  const clearPath = `/api/v1/poisons/${enc(STALE_KEY)}/clear`;

  it("answers 413 for a body over the limit, with or without Content-Length", async () => {
    const big = { reason: "x".repeat(2000) };
    const answer = await api(running, clearPath, { method: "POST", body: big });
    assert.equal(answer.status, 413);
    assert.equal(codeOf(answer), "PAYLOAD_TOO_LARGE");
    // Chunked: no Content-Length, the limit is enforced while reading.
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 8; i++) controller.enqueue(new TextEncoder().encode("x".repeat(400)));
        controller.close();
      },
    });
    const response = await fetch(`${running.url}${clearPath}`, {
      method: "POST",
      headers: { authorization: `Bearer ${OPERATOR_SECRET}`, "content-type": "application/json" },
      body: chunks,
      duplex: "half",
    } as RequestInit);
    assert.equal(response.status, 413);
    await response.text();
    assert.equal(await store.getPoison(STALE_KEY), "procedure-dead");
  });

  it("answers 415 unless the body is application/json", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]) {
      const answer = await api(running, clearPath, {
        method: "POST",
        body: JSON.stringify({ reason: "csrf attempt" }),
        headers: { "content-type": type },
      });
      assert.equal(answer.status, 415, type);
    }
    assert.equal(await store.getPoison(STALE_KEY), "procedure-dead");
  });

  it("answers 404 outside the routes, 405 with Allow for a wrong method, HEAD without a body", async () => {
    const missing = await call(`${running.url}/api/v2/poisons`, { token: OPERATOR_SECRET });
    assert.equal(missing.status, 404);
    assert.equal(codeOf(missing), "NOT_FOUND");
    const wrong = await call(`${running.url}/api/v1/audit`, {
      method: "POST",
      token: OPERATOR_SECRET,
      body: {},
    });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "GET, HEAD");
    const head = await call(`${running.url}/api/v1/poisons`, {
      method: "HEAD",
      token: OPERATOR_SECRET,
    });
    assert.equal(head.status, 200);
    assert.equal(head.text, "");
  });

  it("sends no CORS headers unless configured, and only to a listed origin", async () => {
    const plain = await call(`${running.url}/api/v1/poisons`, {
      token: VIEWER_SECRET,
      headers: { origin: "https://evil.example" },
    });
    assert.equal(plain.headers.get("access-control-allow-origin"), null);
    const preflight = await call(`${running.url}/api/v1/poisons`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    });
    assert.equal(preflight.headers.get("access-control-allow-origin"), null);
    assert.notEqual(preflight.status, 204);

    const cors = await startAdmin(store, { cors: { origins: ["https://portal.example"] } });
    try {
      const allowed = await call(`${cors.url}/api/v1/poisons`, {
        token: VIEWER_SECRET,
        headers: { origin: "https://portal.example" },
      });
      assert.equal(allowed.headers.get("access-control-allow-origin"), "https://portal.example");
      assert.equal(allowed.headers.get("access-control-allow-credentials"), null);
      const ok = await call(`${cors.url}/api/v1/poisons`, {
        method: "OPTIONS",
        headers: { origin: "https://portal.example", "access-control-request-method": "POST" },
      });
      assert.equal(ok.status, 204);
      assert.match(ok.headers.get("access-control-allow-headers") ?? "", /Authorization/);
      const other = await call(`${cors.url}/api/v1/poisons`, {
        token: VIEWER_SECRET,
        headers: { origin: "https://evil.example" },
      });
      assert.equal(other.headers.get("access-control-allow-origin"), null);
    } finally {
      await cors.close();
    }
  });

  it("serves the console with a CSP that allows no inline script, and revalidates by ETag", async () => {
    const page = await call(`${running.url}/`);
    assert.equal(page.status, 200);
    const csp = page.headers.get("content-security-policy") ?? "";
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(page.text, /<script>|<script [^>]*>[^<]/, "no inline script");
    assert.doesNotMatch(page.text, /\son[a-z]+=/i, "no inline event handlers");
    const etag = page.headers.get("etag") as string;
    const again = await call(`${running.url}/`, { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304);
  });
});

describe("admin service mounted under a base path", () => {
  it("serves only under it, redirects the bare path, and links the console to it", async () => {
    const store = memoryStore();
    const running = await startAdmin(store, { basePath: "/ops/poison/" });
    try {
      const root = running.url.replace(/\/ops\/poison\/$/, "");
      assert.equal(
        (await call(`${root}/ops/poison/api/v1/whoami`, { token: VIEWER_SECRET })).status,
        200,
      );
      assert.equal((await call(`${root}/api/v1/whoami`, { token: VIEWER_SECRET })).status, 404);
      const bare = await fetch(`${root}/ops/poison`, { redirect: "manual" });
      assert.equal(bare.status, 308);
      assert.equal(bare.headers.get("location"), "/ops/poison/");
      const page = await call(`${root}/ops/poison/`);
      assert.match(page.text, /data-base="\/ops\/poison"/);
      assert.match(page.text, /src="\/ops\/poison\/console\/app\.js"/);
      const doc = await call(`${root}/ops/poison/api/v1/openapi.json`);
      assert.deepEqual((doc.body as { servers: unknown }).servers, [{ url: "/ops/poison" }]);
    } finally {
      await running.close();
      await store.close();
    }
  });
});

/** A GET through node:http with the headers as given; resolves with the status. */
function rawGet(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("admin service without tokens (anonymous, loopback)", () => {
  it("lets loopback callers act as the configured actor and refuses other Host names", async () => {
    const store = memoryStore();
    await seed(store);
    const options: PoisonAdminOptions = { anonymous: { role: "operator", actor: "alice@laptop" } };
    const running = await startAdmin(store, { ...options, tokens: undefined });
    try {
      const me = await call(`${running.url}/api/v1/whoami`);
      assert.deepEqual(
        [(me.body as { name: string }).name, (me.body as { role: string }).role],
        ["alice@laptop", "operator"],
      );
      const cleared = await call(`${running.url}/api/v1/poisons/${enc(STALE_KEY)}/clear`, {
        method: "POST",
        body: { reason: "local recovery" },
      });
      assert.equal((cleared.body as { audit: AuditEntry }).audit.actor, "alice@laptop");
      // DNS rebinding: a page from another site reaching 127.0.0.1 names its own host.
      // (fetch does not let a caller set Host, so this one goes through node:http.)
      const rebound = await rawGet(`${running.url}/api/v1/poisons`, { host: "attacker.example" });
      assert.equal(rebound, 403);
      assert.equal(await rawGet(`${running.url}/api/v1/poisons`, { host: "localhost:1234" }), 200);
      assert.equal(await rawGet(`${running.url}/api/v1/poisons`, { host: "[::1]:80" }), 200);
      const bearer = await call(`${running.url}/api/v1/poisons`, { token: OPERATOR_SECRET });
      assert.equal(bearer.status, 401, "a service without tokens accepts none");
    } finally {
      await running.close();
      await store.close();
    }
  });

  it("refuses to be created without tokens or anonymous access, or with a bad base path", () => {
    const store = memoryStore();
    assert.throws(() => createPoisonAdmin(store), { code: "INVALID_ARGUMENT" });
    assert.throws(() => createPoisonAdmin(store, { tokens: [] }), { code: "INVALID_ARGUMENT" });
    assert.throws(
      () => createPoisonAdmin(store, { anonymous: { role: "viewer", actor: "a" }, basePath: "x" }),
      { code: "INVALID_ARGUMENT" },
    );
    assert.throws(
      () =>
        createPoisonAdmin(store, {
          tokens: [{ name: "has space", role: "viewer", hash: `sha256:${"0".repeat(64)}` }],
        }),
      { code: "INVALID_ARGUMENT" },
    );
  });
});

describe("admin service when the store fails", () => {
  it("answers 503 BACKEND_UNAVAILABLE (with Retry-After) when the backend is down", async (t) => {
    // pg is a dev dependency; nothing listens on port 1.
    const store = openPoisonStore("postgres://postgres@127.0.0.1:1/test", { timeoutMs: 1000 });
    const running = await startAdmin(store);
    try {
      for (const path of ["/healthz", "/api/v1/poisons", `/api/v1/poisons/${enc(POISONED_KEY)}`]) {
        const answer = await api(running, path);
        assert.equal(answer.status, 503, `${path}: ${answer.text}`);
        assert.equal(codeOf(answer), "BACKEND_UNAVAILABLE");
        assert.equal(answer.headers.get("retry-after"), "1");
      }
    } finally {
      await running.close();
      await store.close().catch(() => undefined);
    }
    t.diagnostic("healthz, list and detail all answered 503");
  });

  it("answers 503 BACKEND_CONFIGURATION, and 500 without details for an unexpected error", async () => {
    const store = memoryStore();
    const errors: unknown[] = [];
    const failing = Object.create(store) as PoisonStoreClient;
    let mode: "config" | "bug" = "config";
    failing.listPoisons = async () => {
      if (mode === "config")
        throw new BackendConfigurationError(
          "postgres",
          "password",
          "password authentication failed",
        );
      throw new TypeError("cannot read properties of undefined (reading 'x')");
    };
    const running = await startAdmin(failing, { onError: (error) => errors.push(error) });
    try {
      const config = await api(running, "/api/v1/poisons");
      assert.equal(config.status, 503);
      assert.equal(codeOf(config), "BACKEND_CONFIGURATION");
      assert.equal((config.body as { error: { setting: string } }).error.setting, "password");
      mode = "bug";
      const bug = await call(`${running.url}/api/v1/poisons`, { token: VIEWER_SECRET });
      assert.equal(bug.status, 500);
      assert.equal(codeOf(bug), "INTERNAL");
      assert.doesNotMatch(bug.text, /reading 'x'/, "no internals in the answer");
      assert.equal(errors.length, 1);
    } finally {
      await running.close();
      await store.close();
    }
  });
});

describe("the fetch face", () => {
  it("answers the same as the Node face, body limits included", async () => {
    const store = memoryStore();
    await seed(store);
    const admin = createPoisonAdmin(store, {
      tokens: (await import("./support.js")).TOKENS,
      basePath: "/admin",
      maxBodyBytes: 256,
    });
    try {
      const auth = { authorization: `Bearer ${OPERATOR_SECRET}` };
      const list = await admin.fetch(
        new Request("http://svc.internal/admin/api/v1/poisons?state=poisoned", { headers: auth }),
      );
      assert.equal(list.status, 200);
      assert.equal(list.headers.get("x-content-type-options"), "nosniff");
      const cleared = await admin.fetch(
        new Request(`http://svc.internal/admin/api/v1/poisons/${enc(POISONED_KEY)}/clear`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({ reason: "via fetch" }),
        }),
      );
      assert.equal(cleared.status, 200);
      assert.equal(((await cleared.json()) as { audit: AuditEntry }).audit.actor, "olga");
      const tooBig = await admin.fetch(
        new Request(`http://svc.internal/admin/api/v1/poisons/${enc(STALE_KEY)}/clear`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({ reason: "y".repeat(300) }),
        }),
      );
      assert.equal(tooBig.status, 413);
      const outside = await admin.fetch(new Request("http://svc.internal/other"));
      assert.equal(outside.status, 404);
    } finally {
      await admin.close();
      await store.close();
    }
  });
});
