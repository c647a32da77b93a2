/**
 * The admin service inside an Express app, under /admin/poison, beside the app's own routes.
 * `admin.node` is an ordinary (req, res) handler; mount it before body parsers such as
 * express.json() (it reads and bounds its own bodies; a body already parsed is accepted too).
 *
 *   npx tsx examples/express.ts         # then open http://127.0.0.1:8788/admin/poison/
 *
 * Environment: as examples/hono.ts (POISON_STORE_URL, POISON_TOKENS).
 */
import { pathToFileURL } from "node:url";
import express, { type Express } from "express";
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
): { app: Express; admin: PoisonAdmin } {
  const app = express();
  // basePath matches the mount path: the service reads Express's req.originalUrl.
  const admin = createPoisonAdmin(store, { tokens, basePath: BASE_PATH });
  app.use(BASE_PATH, admin.node);
  app.use(express.json());
  app.get("/", (_req, res) => {
    res.type("text").send("control plane: see /admin/poison/ for poison keys");
  });
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
  const server = app.listen(8788, "127.0.0.1", () =>
    process.stdout.write(`listening on http://127.0.0.1:8788${BASE_PATH}/\n`),
  );
  process.once("SIGINT", async () => {
    await admin.close();
    server.close();
    await store.close();
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
