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
import { createPoisonAdmin, type PoisonAdmin, type PoisonStoreClient } from "../../src/index.js";
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

/**
 * A seeded memory store with the app `mount` builds on it, listening on a free loopback port:
 * runs `body` with the server's root URL, then closes the service, the server and the store.
 */
async function served(
  mount: (store: PoisonStoreClient) => { admin: PoisonAdmin; server: Server },
  body: (root: string, store: PoisonStoreClient) => Promise<void>,
): Promise<void> {
  const store = memoryStore();
  await seed(store);
  const { admin, server } = mount(store);
  await once(server, "listening");
  try {
    await body(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, store);
  } finally {
    await admin.close();
    server.close();
    await store.close();
  }
}

describe("examples", () => {
  it("examples/hono.ts mounts the service in Hono (served by @hono/node-server)", async () => {
    await served((store) => {
      const { app, admin } = createHonoApp(store, TOKENS);
      return {
        admin,
        server: serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }) as Server,
      };
    }, exercise);
  });

  it("examples/express.ts mounts the service in Express", async () => {
    await served((store) => {
      const { app, admin } = createExpressApp(store, TOKENS);
      return { admin, server: app.listen(0, "127.0.0.1") };
    }, exercise);
  });

  it("Express with express.json() mounted first still clears (the parsed body is used)", async () => {
    await served(
      (store) => {
        const app = express();
        app.use(express.json());
        const admin = createPoisonAdmin(store, { tokens: TOKENS, basePath: BASE_PATH });
        app.use(BASE_PATH, admin.node);
        return { admin, server: app.listen(0, "127.0.0.1") };
      },
      async (root, store) => {
        const cleared = await call(
          `${root}${BASE_PATH}/api/v1/poisons/${encodeURIComponent(STALE_KEY)}/clear`,
          { method: "POST", token: OPERATOR_SECRET, body: { reason: "parsed upstream" } },
        );
        assert.equal(cleared.status, 200, cleared.text);
        assert.equal(await store.getPoison(STALE_KEY), null);
      },
    );
  });
});
