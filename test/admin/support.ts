/**
 * What the admin tests share: tokens of both roles, a service on a real loopback port (through
 * the Node face, as `poison serve` runs it), a fetch helper, and a store seeded with the records
 * an operator meets (poisoned with an error and data, in progress and live, stale).
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type AdminToken,
  createPoisonAdmin,
  hashAdminToken,
  openPoisonStore,
  type PoisonAdmin,
  type PoisonAdminOptions,
  type PoisonStoreClient,
} from "../../src/index.js";

export const OPERATOR_SECRET = "pst_operator-secret-for-tests-0000000000000000000";
export const VIEWER_SECRET = "pst_viewer-secret-for-tests-00000000000000000000000";
export const BAD_SECRET = "pst_not-a-token-of-this-service-000000000000000000";

export const TOKENS: AdminToken[] = [
  { name: "olga", role: "operator", hash: hashAdminToken(OPERATOR_SECRET) },
  { name: "victor", role: "viewer", hash: hashAdminToken(VIEWER_SECRET) },
];

export interface RunningAdmin {
  url: string;
  admin: PoisonAdmin;
  server: Server;
  close(): Promise<void>;
}

/** The service on 127.0.0.1 with a random port. */
export async function startAdmin(
  store: PoisonStoreClient,
  options: PoisonAdminOptions = {},
): Promise<RunningAdmin> {
  const admin = createPoisonAdmin(store, { tokens: TOKENS, ...options });
  const server = createServer((req, res) => void admin.node(req, res));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${options.basePath ?? ""}`,
    admin,
    server,
    async close() {
      await admin.close();
      server.closeAllConnections();
      server.close();
      await once(server, "close").catch(() => undefined);
    },
  };
}

export interface Call {
  method?: string;
  token?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Answer {
  status: number;
  headers: Headers;
  /** Parsed JSON when the answer is JSON, else the text. */
  body: unknown;
  text: string;
}

export async function call(url: string, init: Call = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  let body: string | undefined;
  if (init.body !== undefined) {
    body = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
    headers["content-type"] ??= "application/json";
  }
  const response = await fetch(url, { method: init.method ?? "GET", headers, body });
  const text = await response.text();
  const isJson = (response.headers.get("content-type") ?? "").startsWith("application/json");
  return {
    status: response.status,
    headers: response.headers,
    body: isJson && text !== "" ? JSON.parse(text) : text,
    text,
  };
}

/** The error code of an error answer. */
export function codeOf(answer: Answer): string | undefined {
  return (answer.body as { error?: { code?: string } }).error?.code;
}

export const POISONED_KEY = "table/1024";
export const LIVE_KEY = "region/eu-west/rotate";
export const STALE_KEY = "shard/7";

/** Three records: one poisoned (with error, stack and data), one live, one stale. */
export async function seed(store: PoisonStoreClient): Promise<void> {
  await store.tryPutPoison(POISONED_KEY, "procedure-7f3a", {
    operation: "alter-table",
    owner: "node-1:4242",
    data: { shards: [1, 2, 3, 4], done: [1, 2], ddl: "ALTER TABLE t ADD COLUMN c INT" },
  });
  const failure = new Error("shard 3 did not answer within 30s; ALTER may be half-applied");
  failure.name = "ShardTimeoutError";
  // A stack as a control plane would record it (the test's own would show test internals in
  // the screenshots kept in docs/).
  failure.stack = [
    `${failure.name}: ${failure.message}`,
    "    at ShardClient.alter (/srv/control-plane/shards/client.js:214:11)",
    "    at async AlterTable.applyShard (/srv/control-plane/ops/alter-table.js:88:5)",
    "    at async AlterTable.run (/srv/control-plane/ops/alter-table.js:41:7)",
    "    at async PoisonGuard.run (/srv/control-plane/node_modules/poison-store/dist/src/guard/guard.js:167:22)",
  ].join("\n");
  await store.markPoisoned(POISONED_KEY, "procedure-7f3a", failure);
  await store.tryPutPoison(LIVE_KEY, "procedure-live", {
    operation: "rotate-key",
    owner: "node-2:77",
    heartbeatIntervalMs: 60_000,
  });
  await store.touchPoisons([LIVE_KEY], "procedure-live");
  await store.tryPutPoison(STALE_KEY, "procedure-dead", {
    operation: "migrate-region",
    owner: "node-3:9",
  });
}

/** A fresh in-memory store (its own map). */
export function memoryStore(): PoisonStoreClient {
  return openPoisonStore(`memory:admin-${Math.random().toString(36).slice(2)}`);
}
