/**
 * Scale mode: fill our store with 1k, 100k and 1M records (batched through tryPutPoisons, 1000
 * keys a call) and, at each size, measure put and get throughput and the time and peak memory of
 * listing everything page by page. Throughput should stay flat as the store grows, and listing
 * memory should stay bounded by the page.
 */
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { PoisonStoreClient } from "../src/index.js";
import type { BackendEntry, BackendName } from "./backends.js";
import { TOKEN } from "./operations.js";

export interface ScaleFigures {
  backend: BackendName;
  /** Records in the store. */
  size: number;
  /** Seconds to fill from the previous size to this one. */
  fillSeconds: number;
  /** tryPutPoison of fresh keys (removed again afterwards, untimed). */
  putOpsPerSec: number;
  /** getPoison of random present keys. */
  getOpsPerSec: number;
  /** Listing every record, 1000 a page. */
  listSeconds: number;
  listPages: number;
  /** Peak of heapUsed during the listing, above heapUsed just before it (after a GC). */
  listHeapGrowthMB: number;
  /** Peak resident set size during the listing (includes the store itself on memory:). */
  listPeakRssMB: number;
}

export type ScaleRow = ScaleFigures | { backend: BackendName; size?: number; skipped: string };

const BATCH = 1000;
const scaleKey = (i: number) => `scale/${String(i).padStart(8, "0")}`;
const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

/** A GC we can call between phases, so heap figures start from live data only. */
const gc: () => void = (() => {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
})();

export async function runScale(
  entry: BackendEntry,
  sizes: readonly number[],
  options: { concurrency: number; measureMs: number; namespace: string },
  log: (line: string) => void,
): Promise<ScaleRow[]> {
  const reason = (await entry.reachable()) ?? entry.oursUnavailable();
  if (reason) return [{ backend: entry.name, skipped: reason }];
  const store = await entry.ours({ namespace: options.namespace, timeoutMs: 60_000 });
  const rows: ScaleRow[] = [];
  let filled = 0;
  try {
    for (const size of sizes) {
      const started = performance.now();
      filled = await fill(store, filled, size);
      const fillSeconds = (performance.now() - started) / 1000;
      log(
        `  ${entry.name}: ${size.toLocaleString("en-US")} records (filled in ${fillSeconds.toFixed(1)} s)`,
      );
      const putOpsPerSec = await measurePuts(store, size, options);
      const getOpsPerSec = await throughput(options, async () => {
        const key = scaleKey(Math.floor(Math.random() * size));
        if ((await store.getPoison(key)) !== TOKEN) throw new Error(`${key} is missing`);
      });
      rows.push({
        backend: entry.name,
        size,
        fillSeconds,
        putOpsPerSec,
        getOpsPerSec,
        ...(await listAll(store, size)),
      });
    }
  } finally {
    await removeAll(entry, store, filled);
    await store.close();
  }
  return rows;
}

async function fill(store: PoisonStoreClient, from: number, to: number): Promise<number> {
  // A few batches in flight, so a networked backend's round trips overlap.
  let next = from;
  const worker = async () => {
    while (next < to) {
      const start = next;
      const end = Math.min(to, start + BATCH);
      next = end;
      const keys = Array.from({ length: end - start }, (_, i) => scaleKey(start + i));
      await store.tryPutPoisons(keys, TOKEN);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return to;
}

async function throughput(
  options: { concurrency: number; measureMs: number },
  operation: (seq: number) => Promise<void>,
): Promise<number> {
  let seq = 0;
  const start = performance.now();
  const deadline = start + options.measureMs;
  const worker = async () => {
    while (performance.now() < deadline) await operation(seq++);
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return seq / ((performance.now() - start) / 1000);
}

async function measurePuts(
  store: PoisonStoreClient,
  size: number,
  options: { concurrency: number; measureMs: number },
): Promise<number> {
  const keys: string[] = [];
  const rate = await throughput(options, async (seq) => {
    const key = `scale-put/${size}/${seq}`;
    keys.push(key);
    await store.tryPutPoison(key, TOKEN);
  });
  for (let i = 0; i < keys.length; i += BATCH)
    await store.deletePoisons(keys.slice(i, i + BATCH), TOKEN);
  return rate;
}

async function listAll(store: PoisonStoreClient, size: number) {
  gc();
  const before = process.memoryUsage();
  let heapPeak = before.heapUsed;
  let rssPeak = before.rss;
  let pages = 0;
  let records = 0;
  let cursor: string | null = null;
  const started = performance.now();
  do {
    const page = await store.listPoisons({ limit: BATCH, ...(cursor ? { cursor } : {}) });
    records += page.records.length;
    cursor = page.cursor;
    pages++;
    const now = process.memoryUsage();
    heapPeak = Math.max(heapPeak, now.heapUsed);
    rssPeak = Math.max(rssPeak, now.rss);
  } while (cursor !== null);
  const listSeconds = (performance.now() - started) / 1000;
  if (records !== size) throw new Error(`listed ${records} records, expected ${size}`);
  return {
    listSeconds,
    listPages: pages,
    listHeapGrowthMB: mb(heapPeak - before.heapUsed),
    listPeakRssMB: mb(rssPeak),
  };
}

/** Leave a shared server as we found it; local files and maps go with the process anyway. */
async function removeAll(entry: BackendEntry, store: PoisonStoreClient, filled: number) {
  if (entry.name === "memory" || entry.name === "sqlite") return;
  for (let i = 0; i < filled; i += BATCH) {
    const keys = Array.from({ length: Math.min(BATCH, filled - i) }, (_, j) => scaleKey(i + j));
    await store.deletePoisons(keys, TOKEN);
  }
}

export function scaleTable(rows: readonly ScaleRow[]): string {
  const out = [
    `${"backend".padEnd(9)} ${"records".padStart(9)} | ${"fill s".padStart(7)} | ${"put ops/s".padStart(10)} ${"get ops/s".padStart(10)} | ${"list s".padStart(7)} ${"pages".padStart(6)} ${"heap +MB".padStart(8)} ${"rss MB".padStart(7)}`,
  ];
  for (const row of rows) {
    if ("skipped" in row) {
      out.push(`${row.backend.padEnd(9)} skipped: ${row.skipped}`);
      continue;
    }
    const n = (v: number) => Math.round(v).toLocaleString("en-US");
    out.push(
      `${row.backend.padEnd(9)} ${n(row.size).padStart(9)} | ${row.fillSeconds.toFixed(1).padStart(7)} | ${n(row.putOpsPerSec).padStart(10)} ${n(row.getOpsPerSec).padStart(10)} | ${row.listSeconds.toFixed(2).padStart(7)} ${String(row.listPages).padStart(6)} ${row.listHeapGrowthMB.toFixed(1).padStart(8)} ${row.listPeakRssMB.toFixed(0).padStart(7)}`,
    );
  }
  return out.join("\n");
}
