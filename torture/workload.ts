/**
 * The contention workload: concurrent clients put, delete and read a few keys with tokens drawn
 * from a small pool per key (so deletes sometimes match and puts sometimes conflict), and every
 * call is recorded with its invocation and completion time for the linearizability checker.
 */
import { setTimeout as sleep, setImmediate as yieldToEventLoop } from "node:timers/promises";
import {
  BackendUnavailableError,
  PoisonConflictError,
  type PoisonStoreClient,
} from "../src/index.js";
import { prng } from "./lin/generate.js";
import type { Invocation, Operation, Outcome } from "./lin/history.js";

export interface WorkloadOptions {
  /** One store per client (they may be the same object). */
  stores: readonly PoisonStoreClient[];
  /** Calls in total, across clients. */
  operations: number;
  keys: number;
  tokensPerKey: number;
  seed: number;
  /** A call taking longer than this is an anomaly (it hung past its timeout). */
  maxCallMs?: number;
  /** Monotonic milliseconds; histories from several processes need one clock for all
   *  (`process.hrtime`, CLOCK_MONOTONIC, is system-wide). Default `performance.now`. */
  clock?: () => number;
  /** Client ids start here (for merging histories of several processes). */
  firstClient?: number;
  /** Called before each call; a fault schedule can hook here. */
  beforeCall?: () => void;
  /** Pause a client this long after a call failed with an unknown outcome, as a real client
   *  backs off, so a server outage does not use up the operations in failures. Default 0. */
  backoffAfterUnknownMs?: number;
  /** The run goes on past `operations` while this returns true (a fault schedule that must
   *  see calls after its last fault). */
  continueWhile?: () => boolean;
}

export interface WorkloadStats {
  operations: number;
  ok: number;
  conflicts: number;
  reads: number;
  unknown: number;
  /** Contract breaches the checker cannot see: an untyped rejection, a conflict error naming
   *  the wrong key or token, a call that outlived its timeout. Must be empty. */
  anomalies: string[];
  /** Why calls failed with BackendUnavailableError, by message, to tell faults apart. */
  unknownCauses: Record<string, number>;
  /** The first few unknown outcomes: `client N kind key at +Ms, took Ms`. */
  unknownSamples: string[];
  slowestCallMs: number;
  elapsedMs: number;
}

export interface WorkloadResult {
  history: Operation[];
  stats: WorkloadStats;
}

export async function runWorkload(options: WorkloadOptions): Promise<WorkloadResult> {
  const random = prng(options.seed);
  const history: Operation[] = [];
  const stats: WorkloadStats = {
    operations: 0,
    ok: 0,
    conflicts: 0,
    reads: 0,
    unknown: 0,
    anomalies: [],
    unknownCauses: {},
    unknownSamples: [],
    slowestCallMs: 0,
    elapsedMs: 0,
  };
  const now = options.clock ?? (() => performance.now());
  const started = now();
  let issued = 0;

  const client = async (id: number, store: PoisonStoreClient) => {
    while (issued < options.operations || options.continueWhile?.()) {
      issued++;
      // Calls on in-process backends (memory, better-sqlite3) settle without ever leaving the
      // microtask queue; without this, a few clients would starve the others (and every timer).
      await yieldToEventLoop();
      const keyIndex = Math.floor(random() * options.keys);
      const key = `key-${keyIndex}`;
      const token = `k${keyIndex}-t${Math.floor(random() * options.tokensPerKey)}`;
      const roll = random();
      const invocation: Invocation =
        roll < 0.4
          ? { kind: "put", token }
          : roll < 0.75
            ? { kind: "delete", token }
            : { kind: "get" };
      options.beforeCall?.();
      const invokedAt = now();
      let outcome: Outcome;
      try {
        if (invocation.kind === "put") {
          await store.tryPutPoison(key, invocation.token);
          outcome = { type: "ok" };
        } else if (invocation.kind === "delete") {
          await store.deletePoison(key, invocation.token);
          outcome = { type: "ok" };
        } else {
          outcome = { type: "read", token: await store.getPoison(key) };
        }
      } catch (error) {
        outcome = classify(error, key, invocation, stats.anomalies);
        if (error instanceof BackendUnavailableError) {
          const cause = error.message.replace(/\d+/g, "N");
          stats.unknownCauses[cause] = (stats.unknownCauses[cause] ?? 0) + 1;
        }
      }
      const completedAt = now();
      const took = completedAt - invokedAt;
      stats.slowestCallMs = Math.max(stats.slowestCallMs, took);
      if (options.maxCallMs !== undefined && took > options.maxCallMs) {
        stats.anomalies.push(
          `client ${id}: ${invocation.kind} on ${key} took ${took.toFixed(0)} ms, past the ${options.maxCallMs} ms bound`,
        );
      }
      stats.operations++;
      if (outcome.type === "ok") stats.ok++;
      else if (outcome.type === "conflict") stats.conflicts++;
      else if (outcome.type === "read") stats.reads++;
      else {
        stats.unknown++;
        if (options.backoffAfterUnknownMs) await sleep(options.backoffAfterUnknownMs);
        if (stats.unknownSamples.length < 5) {
          stats.unknownSamples.push(
            `client ${id} ${invocation.kind} ${key} at +${(invokedAt - started).toFixed(0)} ms, took ${took.toFixed(0)} ms`,
          );
        }
      }
      history.push({ client: id, key, invocation, outcome, invokedAt, completedAt });
    }
  };

  const first = options.firstClient ?? 0;
  await Promise.all(options.stores.map((store, id) => client(first + id, store)));
  stats.elapsedMs = now() - started;
  return { history, stats };
}

/** The outcome a rejection stands for; anything but the contract's errors is an anomaly. */
function classify(
  error: unknown,
  key: string,
  invocation: Invocation,
  anomalies: string[],
): Outcome {
  if (error instanceof PoisonConflictError && invocation.kind !== "get") {
    if (error.key !== key || error.token !== invocation.token) {
      anomalies.push(
        `conflict error names key ${JSON.stringify(error.key)} token ${JSON.stringify(error.token)}, ` +
          `the call was ${invocation.kind} ${JSON.stringify(key)} ${JSON.stringify(invocation.token)}`,
      );
    }
    return { type: "conflict", holder: error.holder };
  }
  if (error instanceof BackendUnavailableError) return { type: "unknown" };
  anomalies.push(`${invocation.kind} on ${key} rejected with ${describe(error)}`);
  // Whatever it was, the call may have taken effect.
  return { type: "unknown" };
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/**
 * How many of `stores` did not answer a read within `withinMs` of now, each retried every
 * 100 ms. After a fault the same store objects must work again without being re-created; a
 * pooled connection cut by the fault may fail one more call, and a client may be waiting out
 * its reconnection back-off (Redis: up to a second), hence the retries.
 */
export async function storesNotAnswering(
  stores: readonly PoisonStoreClient[],
  withinMs: number,
): Promise<number> {
  const deadline = performance.now() + withinMs;
  const answered = await Promise.all(
    stores.map(async (store) => {
      while (performance.now() < deadline) {
        try {
          await store.getPoison("key-0");
          return true;
        } catch {
          await sleep(100);
        }
      }
      return false;
    }),
  );
  return answered.filter((ok) => !ok).length;
}

/**
 * Paces a fault schedule by the workload's calls (a fault at the Nth call, wherever a fast or a
 * slow backend is in time), and keeps the workload going for `callsAfterFaults` calls once the
 * schedule is done, so recovery is seen on the same stores. Spread `hooks` into runWorkload's
 * options; set `finished` once it returned.
 */
export class FaultPacer {
  #issued = 0;
  #issuedAfterFaults = 0;
  #faultsDone = false;
  /** The workload returned: a schedule waiting for calls stops waiting. */
  finished = false;
  readonly #callsAfterFaults: number;

  constructor(callsAfterFaults: number) {
    this.#callsAfterFaults = callsAfterFaults;
  }

  /** Resolves once `calls` calls were issued: true, or false if the workload finished first. */
  async reached(calls: number): Promise<boolean> {
    while (this.#issued < calls && !this.finished) await sleep(20);
    return !this.finished;
  }

  /** The schedule made its last fault (or gave up). */
  faultsDone(): void {
    this.#faultsDone = true;
  }

  readonly hooks: Pick<WorkloadOptions, "beforeCall" | "continueWhile"> = {
    beforeCall: () => {
      this.#issued++;
      if (this.#faultsDone) this.#issuedAfterFaults++;
    },
    continueWhile: () => !this.#faultsDone || this.#issuedAfterFaults < this.#callsAfterFaults,
  };
}
