/**
 * The contention workload through a fault proxy (test/support/fault-proxy.ts) that delays,
 * black-holes and resets connections mid-request, for every backend that declares a `proxy`
 * (the networked ones). Checks: no call outlives its timeout by more than a small slack, every
 * failure is a BackendUnavailableError (the workload records anything else as an anomaly), the
 * history with its unknown outcomes is linearizable, and the same stores answer once the faults
 * stop (no re-creation).
 */
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { startFaultProxy } from "../../test/support/fault-proxy.js";
import type { TortureBackend } from "../backends.js";
import { type CheckResult, checkHistory } from "../lin/check.js";
import { prng } from "../lin/generate.js";
import { runWorkload, storesNotAnswering, type WorkloadStats } from "../workload.js";

export interface ProxyFaultReport {
  stats: WorkloadStats;
  check: CheckResult;
  /** Fault switches made (delay, black hole, resets, refusals). */
  faults: number;
  /** Whether every store answered after the faults stopped. */
  recovered: boolean;
}

const TIMEOUT_MS = 1000;
/** A fast backend (Redis) can finish its operations within a few fault periods; the run goes
 *  on until it has met at least this many faults, so the check never passes on luck. */
export const MIN_PROXY_FAULTS = 12;
const RECOVERY_MS = 5000;
/** Timers fire late on a loaded machine; a call must still settle near its bound. */
const SLACK_MS = 750;

export async function runProxyFaults(
  backend: TortureBackend,
  options: { operations: number; clients: number; seed: number },
): Promise<ProxyFaultReport> {
  const proxySpec = backend.proxy;
  if (!proxySpec) throw new Error(`${backend.name} declares no proxy target`);
  const proxy = await startFaultProxy(proxySpec.target);
  const random = prng(options.seed);
  const namespace = `/torture-proxy/${randomUUID()}/`;
  const stores = Array.from({ length: options.clients }, () =>
    proxySpec.open(proxy.port, { namespace, timeoutMs: TIMEOUT_MS }),
  );
  let faults = 0;
  // Every 50 ms, pick the next fault; most of the time traffic passes. The first pick is a
  // delay, so even a backend that would finish the whole workload within one tick meets faults.
  let tick = 0;
  const inject = () => {
    const roll = tick++ === 0 ? 0 : random();
    proxy.delayMs = 0;
    proxy.mode = "pass";
    if (roll < 0.15) {
      proxy.delayMs = tick === 1 ? 200 : Math.floor(random() * 400);
      faults++;
    } else if (roll < 0.25) {
      proxy.mode = "blackhole";
      faults++;
    } else if (roll < 0.35) {
      proxy.resetAll();
      faults++;
    } else if (roll < 0.4) {
      proxy.mode = "reset";
      faults++;
    } else if (roll < 0.45) {
      // New connections die on their first bytes; open ones go on.
      proxy.mode = "hangup";
      faults++;
    }
  };
  inject();
  const schedule = setInterval(inject, 50);
  try {
    const { history, stats } = await runWorkload({
      stores,
      operations: options.operations,
      keys: 4,
      tokensPerKey: 3,
      seed: options.seed,
      maxCallMs: TIMEOUT_MS + SLACK_MS,
      // A client that fails fast (Redis refuses at once while reconnecting) pauses one fault
      // period, so the operations are spread over many faults instead of spent in one.
      backoffAfterUnknownMs: 50,
      continueWhile: () => faults < MIN_PROXY_FAULTS,
    });
    clearInterval(schedule);
    proxy.mode = "pass";
    proxy.delayMs = 0;
    const recovered = (await storesNotAnswering(stores, RECOVERY_MS)) === 0;
    // Proxy timing is not reproducible from the seed; TORTURE_DUMP=FILE keeps the history.
    if (process.env.TORTURE_DUMP) writeFileSync(process.env.TORTURE_DUMP, JSON.stringify(history));
    const check = checkHistory(history, { budgetMs: 60_000 });
    return { stats, check, faults, recovered };
  } finally {
    clearInterval(schedule);
    await Promise.allSettled(stores.map((store) => store.close()));
    await proxy.close();
  }
}
