/**
 * The admin service inside a Hono app, under /admin/poison, beside the app's own routes. Hono
 * hands `admin.fetch` the Web-standard Request, so the same two lines mount it in Hono on Node,
 * Bun, Deno or Cloudflare-style runtimes.
 *
 *   npx tsx examples/hono.ts            # then open http://127.0.0.1:8787/admin/poison/
 *
 * Environment: POISON_STORE_URL (default sqlite:./poison.db), POISON_TOKENS (a token file from
 * `poison serve --tokens FILE --add-token NAME --role operator`; without it, a one-off operator
 * token is made and printed).
 */
import { pathToFileURL } from "node:url";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import {
  type AdminToken,
  createPoisonAdmin,
  generateAdminToken,
  hashAdminToken,
  openPoisonStore,
  type PoisonAdmin,
  type PoisonStoreClient,
  readAdminTokens,
} from "../src/index.js";

export const BASE_PATH = "/admin/poison";

export function createApp(
  store: PoisonStoreClient,
  tokens: readonly AdminToken[],
): { app: Hono; admin: PoisonAdmin } {
  const app = new Hono();
  const admin = createPoisonAdmin(store, { tokens, basePath: BASE_PATH });
  app.get("/", (c) => c.text("control plane: see /admin/poison/ for poison keys"));
  // The bare base path redirects to the console; everything under it is the service's.
  app.all(BASE_PATH, (c) => admin.fetch(c.req.raw));
  app.all(`${BASE_PATH}/*`, (c) => admin.fetch(c.req.raw));
  return { app, admin };
}

async function main(): Promise<void> {
  const store = openPoisonStore(process.env.POISON_STORE_URL || "sqlite:./poison.db");
  let tokens: AdminToken[];
  if (process.env.POISON_TOKENS) tokens = await readAdminTokens(process.env.POISON_TOKENS);
  else {
    const secret = generateAdminToken();
    tokens = [{ name: "example-operator", role: "operator", hash: hashAdminToken(secret) }];
    process.stdout.write(`one-off operator token (sign in with it): ${secret}\n`);
  }
  const { app, admin } = createApp(store, tokens);
  const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 8787 }, (info) =>
    process.stdout.write(`listening on http://127.0.0.1:${info.port}${BASE_PATH}/\n`),
  );
  process.once("SIGINT", async () => {
    await admin.close();
    server.close();
    await store.close();
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
