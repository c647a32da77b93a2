/**
 * Admin mode (`--admin`): the list endpoint of the admin service over real HTTP on loopback, on a
 * SQLite store of 10,000 keys (half of them poisoned), one page of 100 per request, walking the
 * whole store page by page with the cursor. Reports p50/p99 per page request (the client's fetch
 * and JSON parse included) and the live memory a walk needs, which must stay bounded by the page
 * whatever the store holds (a separate walk with a GC after each page, so garbage not yet
 * collected is not counted). Target: p50 < 10 ms.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  createPoisonAdmin,
  generateAdminToken,
  hashAdminToken,
  openPoisonStore,
  type PoisonStoreClient,
} from "../src/index.js";
import { Histogram } from "./measure.js";

export const ADMIN_TARGET_P50_MS = 10;

export interface AdminListRow {
  bench: "admin-list";
  backend: "sqlite";
  keys: number;
  pageSize: number;
  /** The query's filter, or "none". */
  filter: string;
  /** Page requests measured. */
  requests: number;
  /** Pages in one walk of the whole store. */
  pagesPerWalk: number;
  p50Ms: number;
  p99Ms: number;
  /** Live heap during one more walk, measured after a GC following each page, above the live
   *  heap before it: what serving the pages keeps, which must not grow with the store. Server
   *  and client share this process. */
  heapGrowthMB: number;
  /** The largest page answered, in KiB of JSON. */
  pageKB: number;
  peakRssMB: number;
  targetP50Ms: number;
  metTarget: boolean;
}

const gc: () => void = (() => {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
})();
const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
const FILL_BATCH = 1000;

export async function runAdminBench(
  options: { keys: number; pageSize: number; durationMs: number; tempDir: string },
  log: (line: string) => void,
): Promise<AdminListRow[]> {
  const store = openPoisonStore(`sqlite:${join(options.tempDir, "admin-list.db")}`, {
    timeoutMs: 60_000,
  });
  const secret = generateAdminToken();
  const admin = createPoisonAdmin(store, {
    tokens: [{ name: "bench", role: "viewer", hash: hashAdminToken(secret) }],
  });
  const server = createServer((req, res) => void admin.node(req, res));
  try {
    const started = performance.now();
    await fill(store, options.keys);
    log(
      `  admin: ${options.keys.toLocaleString("en-US")} keys on SQLite (filled in ${((performance.now() - started) / 1000).toFixed(1)} s)`,
    );
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/poisons`;
    const headers = { authorization: `Bearer ${secret}` };
    const rows: AdminListRow[] = [];
    for (const filter of ["none", "state=poisoned"]) {
      const query = `limit=${options.pageSize}${filter === "none" ? "" : `&${filter}`}`;
      const row = await measure(base, query, headers, options);
      rows.push({ ...row, keys: options.keys, pageSize: options.pageSize, filter });
      log(
        `  admin list (${filter}): p50 ${row.p50Ms.toFixed(2)} ms, p99 ${row.p99Ms.toFixed(2)} ms per page, live heap +${row.heapGrowthMB} MB`,
      );
    }
    return rows;
  } finally {
    await admin.close();
    server.closeAllConnections();
    server.close();
    await store.close();
  }
}

async function fill(store: PoisonStoreClient, keys: number): Promise<void> {
  const key = (i: number) => `bench/admin/${String(i).padStart(6, "0")}`;
  for (let start = 0; start < keys; start += FILL_BATCH) {
    const batch = Array.from({ length: Math.min(FILL_BATCH, keys - start) }, (_, i) =>
      key(start + i),
    );
    await store.tryPutPoisons(batch, "procedure-bench", {
      operation: "alter-table",
      owner: "bench:1",
      data: { shards: [1, 2, 3, 4] },
    });
    // Every other key failed: the poisoned half carries an error with a stack.
    const failed = batch.filter((_, i) => (start + i) % 2 === 0);
    if (failed.length > 0)
      await store.markPoisons(failed, "procedure-bench", new Error("shard 3 did not answer"));
  }
}

async function measure(
  base: string,
  query: string,
  headers: Record<string, string>,
  options: { durationMs: number },
): Promise<Omit<AdminListRow, "keys" | "pageSize" | "filter">> {
  const histogram = new Histogram();
  let cursor: string | null = null;
  let pagesPerWalk = 0;
  let pagesThisWalk = 0;
  let pageBytes = 0;
  const page = async (): Promise<void> => {
    const url = `${base}?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const response = await fetch(url, { headers });
    const text = await response.text();
    if (!response.ok) throw new Error(`list answered ${response.status}: ${text}`);
    pageBytes = Math.max(pageBytes, Buffer.byteLength(text));
    cursor = (JSON.parse(text) as { cursor: string | null }).cursor;
    pagesThisWalk++;
    if (cursor === null) {
      pagesPerWalk = pagesThisWalk;
      pagesThisWalk = 0;
    }
  };
  // Warm-up: one whole walk.
  do await page();
  while (cursor !== null);

  const deadline = performance.now() + options.durationMs;
  let requests = 0;
  let rssPeak = process.memoryUsage().rss;
  while (performance.now() < deadline || cursor !== null) {
    const t0 = performance.now();
    await page();
    histogram.record(performance.now() - t0);
    requests++;
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }

  gc();
  const before = process.memoryUsage().heapUsed;
  let heapPeak = before;
  do {
    await page();
    gc();
    heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
  } while (cursor !== null);

  const p50Ms = histogram.quantile(0.5);
  return {
    bench: "admin-list",
    backend: "sqlite",
    requests,
    pagesPerWalk,
    p50Ms,
    p99Ms: histogram.quantile(0.99),
    heapGrowthMB: mb(heapPeak - before),
    pageKB: Math.round((pageBytes / 1024) * 10) / 10,
    peakRssMB: mb(rssPeak),
    targetP50Ms: ADMIN_TARGET_P50_MS,
    metTarget: p50Ms < ADMIN_TARGET_P50_MS,
  };
}

export function adminTable(rows: readonly AdminListRow[]): string {
  const out = [
    `admin list endpoint over HTTP — SQLite, ${rows[0]?.keys.toLocaleString("en-US") ?? "?"} keys, pages of ${rows[0]?.pageSize ?? "?"}`,
    `  ${"filter".padEnd(16)} ${"pages/walk".padStart(10)} ${"requests".padStart(9)} | ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} | ${"page KiB".padStart(8)} ${"heap +MB".padStart(8)} ${"rss MB".padStart(7)} | target p50 < ${ADMIN_TARGET_P50_MS} ms`,
  ];
  for (const row of rows) {
    out.push(
      `  ${row.filter.padEnd(16)} ${String(row.pagesPerWalk).padStart(10)} ${String(row.requests).padStart(9)} | ${row.p50Ms.toFixed(2).padStart(7)} ${row.p99Ms.toFixed(2).padStart(7)} | ${row.pageKB.toFixed(1).padStart(8)} ${row.heapGrowthMB.toFixed(1).padStart(8)} ${row.peakRssMB.toFixed(0).padStart(7)} | ${row.metTarget ? "met" : "MISSED"}`,
    );
  }
  return out.join("\n");
}
