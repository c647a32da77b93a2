/**
 * Scale mode: fill our store with 1k, 100k and 1M records and, at each size, measure put and get
 * throughput and the time and peak memory of listing everything page by page. Throughput should
 * stay flat as the store grows, and listing memory should stay bounded by the page.
 *
 * The fill goes through the public batch put (`tryPutPoisons`: one atomic step per batch, so one
 * commit per batch on the SQL backends instead of one per key), with batches as large as the
 * backend takes (1000 keys; etcd: 42, its transaction limit) and several in flight, so that a
 * networked backend's round trips overlap. Only what follows the fill is the measurement proper.
 */
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  BackendUnavailableError,
  InvalidArgumentError,
  type PoisonStoreClient,
} from "../src/index.js";
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

/** The largest batch the public API takes on any backend (MAX_PAGE_SIZE); also the list page. */
const BATCH = 1000;
/** Batches in flight during the fill: enough to overlap round trips, under the SQL drivers'
 *  default pool of 10 connections. */
const FILL_IN_FLIGHT = 8;
/** A batch slower than this halves the next ones: half the drivers' default step bound (5 s).
 *  Tighter (1 s) shrank MariaDB's batches to 31 keys and made its fill 2-3× slower. */
const SLOW_BATCH_MS = 2500;
/** Smaller batches would pay a commit per few keys for nothing: on MySQL a batch's cost per key
 *  is the same at any size (a statement per key), and PostgreSQL's batch is one statement. */
const MIN_BATCH = 100;
/** Attempts of a batch whose outcome was unknown, each in smaller batches. */
const MAX_ATTEMPTS = 4;
const scaleKey = (i: number) => `scale/${String(i).padStart(8, "0")}`;
const scaleKeys = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => scaleKey(from + i));
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
  // One sizer per store: what the fill learnt about slow batches serves its cleanup too.
  const sizer = new BatchSize(BATCH);
  try {
    sizer.size = await batchLimit(store);
    for (const size of sizes) {
      const started = performance.now();
      const from = filled;
      // Counted before the fill, so that a fill failing halfway is cleaned up too.
      filled = size;
      await fill(store, from, size, sizer);
      const fillSeconds = (performance.now() - started) / 1000;
      log(
        `  ${entry.name}: ${size.toLocaleString("en-US")} records (filled in ${fillSeconds.toFixed(1)} s, batches of ${sizer.size} at the end)`,
      );
      const putOpsPerSec = await measurePuts(store, size, sizer, options);
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
  } catch (error) {
    // One backend failing must not lose the figures of the others: report it as this row.
    rows.push({ backend: entry.name, skipped: `failed: ${(error as Error).message}` });
    log(`  ${entry.name}: failed: ${(error as Error).stack ?? error}`);
  } finally {
    try {
      await removeAll(entry, store, filled, sizer);
    } catch (error) {
      log(`  ${entry.name}: could not remove the ${filled} records: ${(error as Error).message}`);
    }
    await store.close();
  }
  return rows;
}

/**
 * The most keys one batch call may name on this store: BATCH, unless the backend refuses it.
 * Asked with a delete of BATCH keys that do not exist: it changes nothing when accepted, and the
 * runtime refuses a batch that is too large before sending anything (InvalidArgumentError saying
 * "at most N keys"). The limit is not in the public API, so it is read from that refusal.
 */
async function batchLimit(store: PoisonStoreClient): Promise<number> {
  const absent = Array.from({ length: BATCH }, (_, i) => `scale-probe/${i}`);
  try {
    const { removed } = await store.deletePoisons(absent, TOKEN);
    if (removed.length !== 0) throw new Error("deleting absent keys removed some");
    return BATCH;
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) {
      // The batch reached the backend (a slow server, say), so its size was accepted.
      if (error instanceof BackendUnavailableError) return BATCH;
      throw error;
    }
    const limit = /at most (\d+) keys/.exec(error.reason);
    if (!limit) throw error;
    return Number(limit[1]);
  }
}

async function fill(
  store: PoisonStoreClient,
  from: number,
  to: number,
  sizer: BatchSize,
): Promise<void> {
  let next = from;
  const worker = async () => {
    while (next < to) {
      const start = next;
      next = Math.min(to, start + sizer.size);
      await putBatch(store, scaleKeys(start, next), sizer);
    }
  };
  await Promise.all(Array.from({ length: FILL_IN_FLIGHT }, worker));
}

/**
 * The size of the next batch of a fill or removal: the backend's limit at first, halved whenever
 * a batch takes longer than SLOW_BATCH_MS or ends with an unknown outcome. The SQL drivers run
 * one statement per key inside a batch's transaction, and the whole step is bounded (5 s by
 * default, a bound the URL cannot change): on a loaded machine a 1000-key batch with 8 in flight
 * passes it (measured), and a timed-out batch costs the full bound and a connection.
 */
class BatchSize {
  constructor(public size: number) {}

  /** A batch of `keys` keys was slow: the next ones are at most half as large (not below
   *  MIN_BATCH). Batches in flight together that were all slow halve the size once, not once
   *  each. */
  slow(keys: number): void {
    this.size = Math.min(this.size, Math.max(MIN_BATCH, Math.floor(keys / 2)));
  }
}

/** Times `call` on a batch of `keys` keys, and shrinks the batches after a slow one. */
async function timed<T>(sizer: BatchSize, keys: number, call: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await call();
  if (performance.now() - started > SLOW_BATCH_MS) sizer.slow(keys);
  return result;
}

/**
 * One batch of fresh keys, checked: the first attempt must write every key. A batch whose outcome
 * is unknown (BackendUnavailableError: a step past its bound) is retried in smaller batches with
 * the same token, which is safe; keys an earlier attempt wrote then count as written.
 */
async function putBatch(
  store: PoisonStoreClient,
  keys: string[],
  sizer: BatchSize,
  attempt = 1,
): Promise<void> {
  try {
    const { records, created } = await timed(sizer, keys.length, () =>
      store.tryPutPoisons(keys, TOKEN),
    );
    const held = records.filter((record) => record.token === TOKEN).length;
    if (held !== keys.length || (attempt === 1 && created.length !== keys.length))
      throw new Error(
        `a batch put of ${keys.length} fresh keys wrote ${created.length}, holds ${held}`,
      );
  } catch (error) {
    if (!(error instanceof BackendUnavailableError) || attempt >= MAX_ATTEMPTS) throw error;
    sizer.slow(keys.length);
    for (let i = 0; i < keys.length; i += sizer.size)
      await putBatch(store, keys.slice(i, i + sizer.size), sizer, attempt + 1);
  }
}

/** Delete `keys` in batches; with `check`, each must have been present (a first attempt removed
 *  it). Retried like {@link putBatch}: deletes by the holder are idempotent. */
async function deleteBatch(
  store: PoisonStoreClient,
  keys: string[],
  sizer: BatchSize,
  check: boolean,
  attempt = 1,
): Promise<void> {
  try {
    const { removed } = await timed(sizer, keys.length, () => store.deletePoisons(keys, TOKEN));
    if (check && attempt === 1 && removed.length !== keys.length)
      throw new Error(
        `${keys.length - removed.length} of ${keys.length} measured puts left no key`,
      );
  } catch (error) {
    if (!(error instanceof BackendUnavailableError) || attempt >= MAX_ATTEMPTS) throw error;
    sizer.slow(keys.length);
    for (let i = 0; i < keys.length; i += sizer.size)
      await deleteBatch(store, keys.slice(i, i + sizer.size), sizer, check, attempt + 1);
  }
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
  sizer: BatchSize,
  options: { concurrency: number; measureMs: number },
): Promise<number> {
  const keys: string[] = [];
  const rate = await throughput(options, async (seq) => {
    const key = `scale-put/${size}/${seq}`;
    keys.push(key);
    await store.tryPutPoison(key, TOKEN);
  });
  // Untimed, and the check of the puts' answers: each one wrote its key.
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const start = next;
      next = Math.min(keys.length, start + sizer.size);
      await deleteBatch(store, keys.slice(start, next), sizer, true);
    }
  };
  await Promise.all(Array.from({ length: FILL_IN_FLIGHT }, worker));
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
async function removeAll(
  entry: BackendEntry,
  store: PoisonStoreClient,
  filled: number,
  sizer: BatchSize,
) {
  if (entry.name === "memory" || entry.name === "sqlite") return;
  let next = 0;
  const worker = async () => {
    while (next < filled) {
      const start = next;
      next = Math.min(filled, start + sizer.size);
      await deleteBatch(store, scaleKeys(start, next), sizer, false);
    }
  };
  await Promise.all(Array.from({ length: FILL_IN_FLIGHT }, worker));
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
