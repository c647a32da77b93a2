/**
 * examples/hono.ts and examples/express.ts, mounted as their files do and served over real HTTP:
 * the service answers under its base path, the app's own routes still work, the console's links
 * point under the mount, and a clear is audited as the token's name.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { serve } from "@hono/node-server";
import express from "express";
import { createApp as createExpressApp } from "../../examples/express.js";
import { BASE_PATH, createApp as createHonoApp } from "../../examples/hono.js";
import { createPoisonAdmin } from "../../src/index.js";
import {
  call,
  memoryStore,
  OPERATOR_SECRET,
  POISONED_KEY,
  STALE_KEY,
  seed,
  TOKENS,
  VIEWER_SECRET,
} from "./support.js";

async function exercise(root: string): Promise<void> {
  const own = await call(`${root}/`);
  assert.equal(own.status, 200);
  assert.match(own.text, /control plane/);
  const bare = await fetch(`${root}${BASE_PATH}`, { redirect: "manual" });
  assert.equal(bare.status, 308);
  assert.equal(bare.headers.get("location"), `${BASE_PATH}/`);
  const page = await call(`${root}${BASE_PATH}/`);
  assert.equal(page.status, 200);
  assert.match(page.text, /src="\/admin\/poison\/console\/app\.js"/);
  const script = await call(`${root}${BASE_PATH}/console/app.js`);
  assert.equal(script.status, 200);
  const me = await call(`${root}${BASE_PATH}/api/v1/whoami`, { token: VIEWER_SECRET });
  assert.equal((me.body as { name: string }).name, "victor");
  const list = await call(`${root}${BASE_PATH}/api/v1/poisons?prefix=table%2F`, {
    token: VIEWER_SECRET,
  });
  assert.deepEqual(
    (list.body as { records: Array<{ key: string }> }).records.map((r) => r.key),
    [POISONED_KEY],
  );
  const cleared = await call(
    `${root}${BASE_PATH}/api/v1/poisons/${encodeURIComponent(POISONED_KEY)}/clear`,
    { method: "POST", token: OPERATOR_SECRET, body: { reason: "example: repaired" } },
  );
  assert.equal(cleared.status, 200, cleared.text);
  assert.equal((cleared.body as { audit: { actor: string } }).audit.actor, "olga");
  const refused = await call(`${root}${BASE_PATH}/api/v1/poisons`, { token: null });
  assert.equal(refused.status, 401);
}

describe("examples", () => {
  it("examples/hono.ts mounts the service in Hono (served by @hono/node-server)", async () => {
    const store = memoryStore();
    await seed(store);
    const { app, admin } = createHonoApp(store, TOKENS);
    const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }) as Server;
    await once(server, "listening");
    try {
      await exercise(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      await admin.close();
      server.close();
      await store.close();
    }
  });

  it("examples/express.ts mounts the service in Express", async () => {
    const store = memoryStore();
    await seed(store);
    const { app, admin } = createExpressApp(store, TOKENS);
    const server = app.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      await exercise(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      await admin.close();
      server.close();
      await store.close();
    }
  });

  it("Express with express.json() mounted first still clears (the parsed body is used)", async () => {
    const store = memoryStore();
    await seed(store);
    const app = express();
    app.use(express.json());
    const admin = createPoisonAdmin(store, { tokens: TOKENS, basePath: BASE_PATH });
    app.use(BASE_PATH, admin.node);
    const server = app.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const root = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const cleared = await call(
        `${root}${BASE_PATH}/api/v1/poisons/${encodeURIComponent(STALE_KEY)}/clear`,
        { method: "POST", token: OPERATOR_SECRET, body: { reason: "parsed upstream" } },
      );
      assert.equal(cleared.status, 200, cleared.text);
      assert.equal(await store.getPoison(STALE_KEY), null);
    } finally {
      await admin.close();
      server.close();
      await store.close();
    }
  });
});
