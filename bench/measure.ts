/**
 * Measuring one operation on two sides (ours and the baseline) fairly on a noisy, shared machine:
 * a warm-up, then short slices that alternate between the sides (ABBA…), so that a burst of
 * noise from another process hits both alike. Throughput is operations over the time spent in
 * the side's slices; latencies go into a log-bucket histogram (1 % resolution, no sorting).
 */
import { performance } from "node:perf_hooks";

/** One timed operation; `seq` is unique per side, for fresh keys. */
export type Operation = (seq: number) => Promise<void>;

export interface SideFigures {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

const BUCKET_BASE = 1.01;
const LOG_BASE = Math.log(BUCKET_BASE);
const MIN_MS = 1e-5;
/** 10 ns .. ~10^5 ms. */
const BUCKETS = Math.ceil(Math.log(1e5 / MIN_MS) / LOG_BASE) + 1;

export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  count = 0;

  record(ms: number): void {
    const index =
      ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(ms / MIN_MS) / LOG_BASE));
    this.#counts[index] = (this.#counts[index] ?? 0) + 1;
    this.count++;
  }

  /** The latency under which a fraction `q` of the samples fall (bucket midpoint). */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = q * this.count;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i] ?? 0;
      if (seen >= rank) return MIN_MS * BUCKET_BASE ** (i + 0.5);
    }
    return MIN_MS * BUCKET_BASE ** BUCKETS;
  }
}

class Side {
  readonly histogram = new Histogram();
  ops = 0;
  elapsedMs = 0;
  seq = 0;
  constructor(readonly operation: Operation) {}

  /** Run `concurrency` workers back to back until `durationMs` has passed. */
  async slice(concurrency: number, durationMs: number, record: boolean): Promise<void> {
    const start = performance.now();
    const deadline = start + durationMs;
    let ops = 0;
    const worker = async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await this.operation(this.seq++);
        if (record) this.histogram.record(performance.now() - t0);
        ops++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    if (record) {
      this.ops += ops;
      this.elapsedMs += performance.now() - start;
    }
    // Let timers and I/O callbacks that a microtask-only loop starved run before the next slice.
    await new Promise((resolve) => setImmediate(resolve));
  }

  figures(): SideFigures {
    return {
      opsPerSec: this.ops / (this.elapsedMs / 1000),
      p50Ms: this.histogram.quantile(0.5),
      p99Ms: this.histogram.quantile(0.99),
    };
  }
}

export interface CompareOptions {
  concurrency: number;
  /** Measured time per side, in ms, split into `slices` slices. */
  durationMs: number;
  slices: number;
  /** Warm-up per side before measuring, in ms. */
  warmupMs: number;
}

/** Measure both sides, interleaved. `baselineOnly` measures the baseline alone (ours missing). */
export async function compare(
  ours: Operation | null,
  baseline: Operation,
  options: CompareOptions,
): Promise<{ ours: SideFigures | null; baseline: SideFigures }> {
  const a = ours ? new Side(ours) : null;
  const b = new Side(baseline);
  const sliceMs = options.durationMs / options.slices;
  await a?.slice(options.concurrency, options.warmupMs, false);
  await b.slice(options.concurrency, options.warmupMs, false);
  for (let i = 0; i < options.slices; i++) {
    // ABBA ordering: neither side always runs first, or right after a GC of the other.
    const order = i % 2 === 0 ? [a, b] : [b, a];
    for (const side of order) await side?.slice(options.concurrency, sliceMs, true);
  }
  return { ours: a ? a.figures() : null, baseline: b.figures() };
}
