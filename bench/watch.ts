/**
 * Watch delay (`npm run bench`, after each backend's operations): how long after a change a
 * consumer of `store.watch({ prefix })` hears of it. One store watches, another store object on
 * the same backend and namespace makes N changes at random, spaced moments (every kind a watch
 * reports but forced deletes: put, poisoned, touched, deleted, each on its own key so that the
 * polling fallback cannot coalesce two of them), and the delay is taken from the resolution of
 * each write's promise to the arrival of its event. The default settings of the watch are
 * measured (no short `pollIntervalMs`): that is what a user gets.
 *
 * Every event is checked (its key, its type, the record's holder), and a change that never shows
 * up fails the measurement: a watch that loses changes must not report a fine delay.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import type { ChangeEvent, ChangeType, PoisonStoreClient } from "../src/index.js";
import type { BackendName } from "./backends.js";
import { TOKEN } from "./operations.js";

export interface WatchFigures {
  /** Where the events come from, as the watch reports it. */
  source: "native" | "polling";
  /** Changes made and seen. */
  changes: number;
  /** From `watch()` to `ready`. */
  readyMs: number;
  /** From a write's resolution to its event (nearest-rank quantiles of `changes` samples). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Events that arrived before their write's promise resolved (their delay counts as 0): a
   *  native feed may beat the reply to the writer. */
  beforeResolution: number;
}

/** One backend's watch measurement in the `--json` document, or why it was skipped. */
export interface WatchRow {
  backend: BackendName;
  watch: WatchFigures | { skipped: string };
}

export const isWatchRow = (row: object): row is WatchRow => "watch" in row;

export interface WatchStores {
  /** The store that watches. */
  watcher: PoisonStoreClient;
  /** Another store object on the same backend and namespace, that makes the changes. */
  writer: PoisonStoreClient;
}

export interface WatchBenchOptions {
  changes: number;
  /** Pause before each change, drawn uniformly in [min, max] ms: the changes land at moments
   *  unrelated to a polling loop's phase, so the delays sample it evenly. */
  gapMs?: { min: number; max: number };
  /** How long to wait for `ready`, and for the last events after the last change. */
  timeoutMs?: number;
}

const KINDS = ["put", "poisoned", "touched", "deleted"] as const satisfies readonly ChangeType[];
type Kind = (typeof KINDS)[number];

const PREFIX = "watch/";
const PROBE = "watch-probe";

/** Nearest-rank quantile of sorted samples (with 20 samples, p99 is the largest). */
export function nearestRank(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
}

/** Measure on two open stores (the caller closes them). Rejects if the watch loses, duplicates
 *  or mislabels a change, or never becomes ready. */
export async function measureWatch(
  stores: WatchStores,
  options: WatchBenchOptions,
): Promise<WatchFigures> {
  const { watcher, writer } = stores;
  const gap = options.gapMs ?? { min: 50, max: 250 };
  const timeoutMs = options.timeoutMs ?? 30_000;
  const plan = Array.from({ length: options.changes }, (_, i) => ({
    key: `${PREFIX}${String(i).padStart(6, "0")}`,
    kind: KINDS[i % KINDS.length] as Kind,
  }));

  // The two objects must be one store: what the writer puts, the watcher reads.
  await writer.tryPutPoison(PROBE, TOKEN);
  if ((await watcher.getPoison(PROBE)) !== TOKEN)
    throw new Error("the watching store does not see the writing store's keys");
  await writer.deletePoison(PROBE, TOKEN);

  // Keys that the changes update or delete exist before the watch starts: they are no events.
  const existing = plan.filter((change) => change.kind !== "put");
  for (let i = 0; i < existing.length; i += 32)
    await Promise.all(
      existing.slice(i, i + 32).map((change) => writer.tryPutPoison(change.key, TOKEN)),
    );

  const controller = new AbortController();
  // Every timer below ends with the measurement, so that none keeps the process alive after it.
  const sleep = (ms: number) =>
    delay(ms, undefined, { signal: controller.signal }).catch(() => undefined);
  const arrived = new Map<string, number>();
  const problems: string[] = [];
  let onArrival: () => void = () => {};
  const expected = new Map(plan.map((change) => [change.key, change.kind]));
  const started = performance.now();
  const stream = watcher.watch({ prefix: PREFIX, signal: controller.signal });
  const consumed = (async () => {
    try {
      for await (const event of stream) {
        const at = performance.now();
        const problem = checkEvent(event, expected.get(event.key), arrived.has(event.key));
        if (problem) problems.push(problem);
        else arrived.set(event.key, at);
        onArrival();
      }
    } catch (error) {
      problems.push(`the watch failed: ${(error as Error).message}`);
      onArrival();
    }
  })();
  const resolved = new Map<string, number>();
  try {
    const ready = await Promise.race([stream.ready, sleep(timeoutMs).then(() => null)]);
    if (ready !== true)
      throw new Error(
        ready === null
          ? `the watch was not ready after ${timeoutMs} ms`
          : "the watch ended before it was ready",
      );
    const readyMs = performance.now() - started;

    for (const change of plan) {
      await sleep(gap.min + Math.random() * (gap.max - gap.min));
      await makeChange(writer, change.key, change.kind);
      resolved.set(change.key, performance.now());
    }
    // One timer for the whole wait (a timer per event would pile up listeners on the signal).
    let timedOut = false;
    const deadline = sleep(timeoutMs).then(() => {
      timedOut = true;
    });
    while (arrived.size < plan.length && problems.length === 0 && !timedOut) {
      await Promise.race([
        new Promise<void>((resolve) => {
          onArrival = resolve;
        }),
        deadline,
      ]);
    }
    if (problems.length > 0) throw new Error(`the watch misreported: ${problems.join("; ")}`);
    const missing = plan.filter((change) => !arrived.has(change.key));
    if (missing.length > 0)
      throw new Error(
        `${missing.length} of ${plan.length} changes never arrived within ${timeoutMs} ms (first: ${missing[0]?.kind} ${missing[0]?.key})`,
      );

    let beforeResolution = 0;
    const delays = plan
      .map((change) => {
        const late = (arrived.get(change.key) as number) - (resolved.get(change.key) as number);
        if (late < 0) beforeResolution++;
        return Math.max(0, late);
      })
      .sort((a, b) => a - b);
    return {
      source: stream.source,
      changes: plan.length,
      readyMs,
      p50Ms: nearestRank(delays, 0.5),
      p99Ms: nearestRank(delays, 0.99),
      maxMs: delays.at(-1) ?? Number.NaN,
      beforeResolution,
    };
  } finally {
    controller.abort();
    await consumed.catch(() => {});
    // Leave a shared server as found; absent keys are fine (idempotent deletes).
    await Promise.allSettled(plan.map((change) => writer.deletePoison(change.key, TOKEN)));
  }
}

/** What is wrong with `event`, or null. */
function checkEvent(event: ChangeEvent, kind: Kind | undefined, seen: boolean): string | null {
  if (event.type === "resync") return "a resync (changes may have been lost)";
  if (kind === undefined) return `an event for a key no change touched: ${event.type} ${event.key}`;
  if (seen) return `a second event for ${event.key} (${event.type})`;
  if (event.type !== kind) return `${event.key}: expected ${kind}, got ${event.type}`;
  if (event.record && event.record.token !== TOKEN)
    return `${event.key}: the record's token is ${event.record.token}`;
  return null;
}

async function makeChange(store: PoisonStoreClient, key: string, kind: Kind): Promise<void> {
  switch (kind) {
    case "put":
      await store.tryPutPoison(key, TOKEN);
      return;
    case "poisoned": {
      const record = await store.markPoisoned(key, TOKEN, new Error("bench: watch delay"));
      if (record.state !== "poisoned") throw new Error(`markPoisoned left ${key} ${record.state}`);
      return;
    }
    case "touched": {
      const [record] = await store.touchPoisons([key], TOKEN);
      if (record?.token !== TOKEN) throw new Error(`touchPoisons did not return ${key}`);
      return;
    }
    case "deleted":
      await store.deletePoison(key, TOKEN);
      return;
  }
}

const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toPrecision(2));

/** The human table: one line per backend. */
export function watchTable(rows: readonly WatchRow[]): string {
  const out = [
    "watch delay — store.watch({ prefix }) with its defaults; another store object writes; from each write's resolution to its event",
    `  ${"backend".padEnd(9)} ${"source".padEnd(8)} ${"changes".padStart(7)} | ${"ready ms".padStart(8)} | ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"max ms".padStart(7)}`,
  ];
  for (const row of rows) {
    if ("skipped" in row.watch) {
      out.push(`  ${row.backend.padEnd(9)} skipped: ${row.watch.skipped}`);
      continue;
    }
    const f = row.watch;
    const early =
      f.beforeResolution > 0 ? `  (${f.beforeResolution} before the write resolved)` : "";
    out.push(
      `  ${row.backend.padEnd(9)} ${f.source.padEnd(8)} ${String(f.changes).padStart(7)} | ${ms(f.readyMs).padStart(8)} | ${ms(f.p50Ms).padStart(7)} ${ms(f.p99Ms).padStart(7)} ${ms(f.maxMs).padStart(7)}${early}`,
    );
  }
  return out.join("\n");
}
