/**
 * `collectMetrics(store, options)` (SPEC §7, Observability): Prometheus metrics of one store,
 * with prom-client (an optional peer dependency, loaded on the first call).
 *
 * | metric | type | what |
 * |---|---|---|
 * | `poison_keys{state}` | gauge | keys `poisoned`, `in-progress` (stale ones included, as `listPoisons` counts them) and `stale` |
 * | `poison_oldest_poisoned_seconds` | gauge | how long the oldest poisoned key has been poisoned; 0 when none |
 * | `poison_store_call_duration_seconds{backend,op,outcome}` | histogram | every public call of the store object (`store.onCall`) |
 * | `poison_guard_runs_total{outcome}` | counter | `guard.run` settlements on this store, by any PoisonGuard of this process |
 * | `poison_force_deletes_total` | counter | forced deletes recorded in the store's audit log since collection started, by any process |
 * | `poison_store_up` | gauge | 1 when the last scan answered, 0 when it failed (the key gauges are then NaN: unknown, never 0) |
 * | `poison_keys_scan_truncated` | gauge | 1 when the last scan stopped at `maxKeys` (the counts are then lower bounds) |
 *
 * The key gauges come from a bounded scan (at most `maxKeys` keys, pages of 1000), made when a
 * scrape finds the last one older than `intervalMs` and shared by concurrent scrapes: a scrape
 * never walks more than `maxKeys` keys, and the store is scanned at most once per interval.
 */
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { PoisonStoreClient } from "../core/contract.js";
import { InvalidArgumentError, MissingDependencyError } from "../core/errors.js";
import { livenessOf } from "../core/liveness.js";
import type { PoisonRecord } from "../core/records.js";
import {
  checkCount,
  checkDuration,
  checkObject,
  checkString,
  MAX_PAGE_SIZE,
} from "../core/validation.js";
import { GUARD_RUN_CHANNEL, GUARD_RUN_OUTCOMES, type GuardRunSettled } from "../guard/events.js";

/** A metrics registry: a prom-client `Registry` (yours, or prom-client's global `register`). */
export interface MetricsRegistry {
  readonly contentType: string;
  metrics(): Promise<string>;
  removeSingleMetric(name: string): void;
}

export interface CollectMetricsOptions {
  /** Where the metrics are registered. Default: a new prom-client `Registry`. */
  registry?: MetricsRegistry;
  /** A scan of keys is reused by scrapes for this long, in ms. Default 15000. */
  intervalMs?: number;
  /** Keys read per scan at most (1..10,000,000). Default 10,000. */
  maxKeys?: number;
  /** Only keys under this prefix count. Default: every key of the store's namespace. */
  prefix?: string;
  /** Bucket bounds of the call-duration histogram, in seconds. */
  buckets?: readonly number[];
  /** Where "now" comes from (ages, staleness). Default `() => new Date()`. */
  now?: () => Date;
  /** Called when a scan fails (the store did not answer); the scrape still succeeds, with
   *  `poison_store_up 0`. */
  onError?: (error: unknown) => void;
}

/** What `collectMetrics` returns. It fits `createPoisonAdmin`'s `metrics` option as is. */
export interface PoisonMetrics {
  readonly registry: MetricsRegistry;
  /** The registry's Content-Type. */
  readonly contentType: string;
  /** The registry's text exposition (scans the store if the last scan is too old). */
  metrics(): Promise<string>;
  /** Scan now, whatever the age of the last scan. */
  refresh(): Promise<void>;
  /** Stop listening to the store and the guards, and remove the metrics from the registry. */
  close(): void;
}

export const DEFAULT_METRICS_INTERVAL_MS = 15_000;
export const DEFAULT_METRICS_MAX_KEYS = 10_000;
const MAX_METRICS_KEYS = 10_000_000;
/** Seconds: from an in-process call (tens of µs) to a timed-out one (the default 5 s). */
export const DEFAULT_CALL_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** Audit entries read per scan to count forced deletes (newest first, back to the last read). */
const AUDIT_PAGE = 100;
const MAX_AUDIT_PAGES = 10;

const NAMES = [
  "poison_keys",
  "poison_oldest_poisoned_seconds",
  "poison_store_call_duration_seconds",
  "poison_guard_runs_total",
  "poison_force_deletes_total",
  "poison_store_up",
  "poison_keys_scan_truncated",
] as const;

type PromClient = typeof import("prom-client");

async function loadPromClient(): Promise<PromClient> {
  try {
    const loaded = (await import("prom-client")) as PromClient & { default?: PromClient };
    return loaded.Registry ? loaded : (loaded.default as PromClient);
  } catch (error) {
    throw new MissingDependencyError("prom-client", "collectMetrics", error);
  }
}

/** What one scan found. */
interface Scan {
  up: boolean;
  poisoned: number;
  inProgress: number;
  stale: number;
  /** When the oldest poisoned key became poisoned (ms since the epoch), or null. */
  oldestPoisonedAt: number | null;
  truncated: boolean;
}

/**
 * Register the store's metrics. Rejects with MissingDependencyError without prom-client, and
 * with prom-client's own error when the registry already holds metrics of these names (one
 * collector per store and registry).
 */
export async function collectMetrics(
  store: PoisonStoreClient,
  options: CollectMetricsOptions = {},
): Promise<PoisonMetrics> {
  if (typeof store !== "object" || store === null || typeof store.onCall !== "function")
    throw new InvalidArgumentError("store", "must be a store from openPoisonStore()");
  const checked = checkObject("options", options, true) ?? {};
  const intervalMs = checkDuration(
    "options.intervalMs",
    checked.intervalMs,
    DEFAULT_METRICS_INTERVAL_MS,
    { allowZero: true },
  );
  const maxKeys = checkCount(
    "options.maxKeys",
    checked.maxKeys,
    DEFAULT_METRICS_MAX_KEYS,
    MAX_METRICS_KEYS,
  );
  const prefix =
    checked.prefix === undefined ? "" : checkString("options.prefix", checked.prefix, 1024, true);
  const buckets = checked.buckets ?? DEFAULT_CALL_BUCKETS;
  if (!Array.isArray(buckets) || buckets.some((b) => typeof b !== "number" || !(b > 0)))
    throw new InvalidArgumentError("options.buckets", "must be an array of positive numbers");
  const now = typeof checked.now === "function" ? (checked.now as () => Date) : () => new Date();
  const onError =
    typeof checked.onError === "function" ? (checked.onError as (error: unknown) => void) : null;

  const client = await loadPromClient();
  const registry = (options.registry ?? new client.Registry()) as InstanceType<
    PromClient["Registry"]
  >;
  const registers = [registry];

  let scan: Scan | null = null;
  let scannedAt = Number.NEGATIVE_INFINITY;
  let scanning: Promise<void> | null = null;
  /** The newest audit entry id counted (null: none yet); undefined until the first read. */
  let auditMark: string | null | undefined;

  const refresh = (): Promise<void> => {
    scanning ??= (async () => {
      try {
        scan = await scanKeys(store, prefix, maxKeys, now);
      } catch (error) {
        try {
          onError?.(error);
        } catch {
          // A logger must not break the scrape.
        }
        scan = {
          up: false,
          poisoned: 0,
          inProgress: 0,
          stale: 0,
          oldestPoisonedAt: null,
          truncated: false,
        };
      }
      try {
        const counted = await countForceDeletes(store, auditMark);
        auditMark = counted.mark;
        if (counted.forceDeletes > 0) forceDeletes.inc(counted.forceDeletes);
      } catch {
        // The audit log did not answer: counted at the next scan, from the same mark.
      }
      scannedAt = performance.now();
    })().finally(() => {
      scanning = null;
    });
    return scanning;
  };
  const fresh = (): Promise<void> =>
    performance.now() - scannedAt < intervalMs && scan !== null ? Promise.resolve() : refresh();

  new client.Gauge({
    name: "poison_keys",
    help: "Poison keys by state: poisoned, in-progress (stale ones included), stale (in-progress, holder not live). From a bounded scan, see poison_keys_scan_truncated.",
    labelNames: ["state"] as const,
    registers,
    async collect() {
      await fresh();
      const s = scan as Scan;
      const value = (n: number) => (s.up ? n : Number.NaN);
      this.set({ state: "poisoned" }, value(s.poisoned));
      this.set({ state: "in-progress" }, value(s.inProgress));
      this.set({ state: "stale" }, value(s.stale));
    },
  });
  new client.Gauge({
    name: "poison_oldest_poisoned_seconds",
    help: "Seconds since the oldest poisoned key became poisoned (its recorded error's time); 0 when none is poisoned.",
    registers,
    async collect() {
      await fresh();
      const s = scan as Scan;
      if (!s.up) this.set(Number.NaN);
      else if (s.oldestPoisonedAt === null) this.set(0);
      else this.set(Math.max(0, (now().getTime() - s.oldestPoisonedAt) / 1000));
    },
  });
  /** A 0/1 gauge of one fact of the last scan. */
  const flag = (name: string, help: string, of: (scan: Scan) => boolean) =>
    new client.Gauge({
      name,
      help,
      registers,
      async collect() {
        await fresh();
        this.set(of(scan as Scan) ? 1 : 0);
      },
    });
  flag(
    "poison_store_up",
    "1 when the last scan of the store answered, 0 when it failed (the key gauges are then NaN).",
    (s) => s.up,
  );
  flag(
    "poison_keys_scan_truncated",
    "1 when the last scan stopped at its bound (maxKeys): poison_keys are then lower bounds.",
    (s) => s.truncated,
  );
  const calls = new client.Histogram({
    name: "poison_store_call_duration_seconds",
    help: "Duration of the store's public calls, by backend, method and outcome (ok, or the error code).",
    labelNames: ["backend", "op", "outcome"] as const,
    buckets: [...buckets],
    registers,
  });
  const guardRuns = new client.Counter({
    name: "poison_guard_runs_total",
    help: "Guarded runs on this store, by how they ended: succeeded, poisoned, refused, lost, cleanup-failed, failed.",
    labelNames: ["outcome"] as const,
    registers,
  });
  for (const outcome of GUARD_RUN_OUTCOMES) guardRuns.inc({ outcome }, 0);
  const forceDeletes = new client.Counter({
    name: "poison_force_deletes_total",
    help: "Forced deletes recorded in the store's audit log since collection started, by any process (counted at each scan).",
    registers,
    async collect() {
      await fresh();
    },
  });

  const stopCalls = store.onCall((call) => {
    calls.observe(
      { backend: call.backend, op: call.op, outcome: call.outcome },
      call.durationMs / 1000,
    );
  });
  const onGuardRun = (message: unknown) => {
    const settled = message as GuardRunSettled;
    if (settled.store === store) guardRuns.inc({ outcome: settled.outcome });
  };
  subscribe(GUARD_RUN_CHANNEL, onGuardRun);

  let closed = false;
  return {
    registry,
    get contentType() {
      return registry.contentType;
    },
    metrics: () => registry.metrics(),
    refresh,
    close() {
      if (closed) return;
      closed = true;
      stopCalls();
      unsubscribe(GUARD_RUN_CHANNEL, onGuardRun);
      for (const name of NAMES) registry.removeSingleMetric(name);
    },
  };
}

/** One bounded pass over the keys under `prefix`. */
async function scanKeys(
  store: PoisonStoreClient,
  prefix: string,
  maxKeys: number,
  now: () => Date,
): Promise<Scan> {
  const scan: Scan = {
    up: true,
    poisoned: 0,
    inProgress: 0,
    stale: 0,
    oldestPoisonedAt: null,
    truncated: false,
  };
  const at = now();
  let read = 0;
  let cursor: string | null = null;
  do {
    const limit = Math.min(MAX_PAGE_SIZE, maxKeys - read);
    if (limit <= 0) {
      scan.truncated = true;
      break;
    }
    const page = await store.listPoisons({ prefix, limit, cursor });
    for (const record of page.records) {
      read++;
      if (record.state === "poisoned") {
        scan.poisoned++;
        const since = poisonedSince(record);
        if (since !== null && (scan.oldestPoisonedAt === null || since < scan.oldestPoisonedAt))
          scan.oldestPoisonedAt = since;
      } else {
        scan.inProgress++;
        if (livenessOf(record, at).stale) scan.stale++;
      }
    }
    cursor = page.cursor;
  } while (cursor !== null);
  return scan;
}

/** When `record` became poisoned: its recorded error's time, else its last update. */
export function poisonedSince(record: PoisonRecord): number | null {
  for (const text of [record.error?.at, record.updatedAt, record.createdAt]) {
    const ms = text === undefined ? Number.NaN : Date.parse(text);
    if (!Number.isNaN(ms)) return ms;
  }
  return null;
}

/**
 * Forced deletes in the audit log newer than `mark` (newest first, bounded). The first call
 * (`mark` undefined) only finds where the log stands: counting starts then.
 */
async function countForceDeletes(
  store: PoisonStoreClient,
  mark: string | null | undefined,
): Promise<{ forceDeletes: number; mark: string | null }> {
  if (mark === undefined) {
    const { entries } = await store.auditLog({ limit: 1 });
    return { forceDeletes: 0, mark: entries[0]?.id ?? null };
  }
  let forceDeletes = 0;
  let newest: string | null = null;
  let cursor: string | null = null;
  for (let page = 0; page < MAX_AUDIT_PAGES; page++) {
    const result = await store.auditLog({ limit: AUDIT_PAGE, cursor });
    for (const entry of result.entries) {
      if (entry.id === mark) return { forceDeletes, mark: newest ?? mark };
      newest ??= entry.id;
      if (entry.action === "force-delete") forceDeletes++;
    }
    cursor = result.cursor;
    if (cursor === null) break;
  }
  return { forceDeletes, mark: newest ?? mark };
}
