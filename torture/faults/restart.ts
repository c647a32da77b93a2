/**
 * Server restart mid-workload, for the machine's own PostgreSQL, MariaDB and Redis: the real
 * server process is stopped and started again with the machine's commands while 16 clients run
 * the contention workload on stores that stay open. Checks: during the outage calls fail fast
 * (BackendUnavailableError within timeoutMs + a slack; anything else is an anomaly), some calls
 * fail during it and some succeed after it on the same stores, every store answers afterwards,
 * and the history is linearizable. Beside the workload, one more store is driven by a tight
 * retry loop with no pause at all (a documented pattern: retry with the same token): its failed
 * calls must never starve the client's own reconnection, so it must succeed again soon after
 * the server is back (issue 11).
 *
 * Redis here keeps nothing on disk (`--save "" --appendonly no`), so a restart empties it: its
 * history is checked as two epochs, before the new server started and after, each from absent
 * keys (what Redis without persistence promises; see docs/RELIABILITY.md).
 *
 * These servers are shared with the rest of the machine: the server is started again in a
 * `finally`, and the run waits until it answers before returning.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import type { PoisonStoreClient } from "../../src/index.js";
import type { TortureBackend } from "../backends.js";
import { type CheckResult, checkHistory } from "../lin/check.js";
import type { Operation } from "../lin/history.js";
import { FaultPacer, runWorkload, storesNotAnswering, type WorkloadStats } from "../workload.js";

const run = promisify(execFile);
const TIMEOUT_MS = 1000;
/** Timers fire late on a loaded machine; a call must still settle near its bound. */
const SLACK_MS = 750;
/** How long the server stays down before it is started again. */
const DOWN_MS = 1500;
const ANSWER_WITHIN_MS = 60_000;
const MIN_CALLS_AFTER_FAULTS = 500;
/** The same stores must answer again this soon once the server does. */
const RECOVER_WITHIN_MS = 5000;

interface ServerControl {
  stop(): Promise<void>;
  start(): Promise<void>;
  /** The server forgets everything on a restart. */
  wipesData: boolean;
}

const sh = async (command: string) => {
  await run("sh", ["-c", command], { timeout: 60_000 });
};

/** The machine's commands for each server (see the machine notes: "Known to work"). */
const SERVERS: Record<string, ServerControl> = {
  redis: {
    stop: () => sh("redis-cli -h 127.0.0.1 -p 6379 shutdown nosave || true"),
    start: () =>
      sh(
        'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log',
      ),
    wipesData: true,
  },
  postgres: {
    stop: () =>
      sh("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main stop -m fast"),
    start: () => sh("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"),
    wipesData: false,
  },
  mysql: {
    // Waits until the server has exited (its pid file is gone); then the machine's command, with
    // the server's pid file named: without it, start-stop-daemon finds the secured twin on 3307
    // (also /usr/sbin/mariadbd, scripts/services-tls.sh), says "already running" and starts
    // nothing (CI, stop 19).
    stop: () =>
      sh(
        "mariadb-admin -h 127.0.0.1 -u root shutdown; for i in $(seq 300); do [ -e /run/mysqld/mysqld.pid ] || exit 0; sleep 0.1; done; exit 1",
      ),
    start: () =>
      sh(
        "start-stop-daemon --start --oknodo --background --pidfile /run/mysqld/mysqld.pid --exec /usr/sbin/mariadbd",
      ),
    wipesData: false,
  },
};

export const RESTARTABLE = Object.keys(SERVERS);

export interface RestartReport {
  stats: WorkloadStats;
  check: CheckResult;
  restarts: number;
  /** Milliseconds from the stop command until the server answered again. */
  outagesMs: number[];
  /** Calls invoked while the server was down that failed (must be > 0) and their slowest. */
  failedDuringOutage: number;
  slowestFailureMs: number;
  /** Calls invoked after the server answered again that succeeded (must be > 0). */
  succeededAfter: number;
  problems: string[];
  elapsedMs: number;
}

export async function runRestart(
  backend: TortureBackend,
  options: { operations: number; clients: number; restarts: number; seed: number },
): Promise<RestartReport> {
  const started = performance.now();
  const server = SERVERS[backend.name];
  if (!server) throw new Error(`no restart commands for ${backend.name}`);
  const problems: string[] = [];
  const namespace = `/torture-restart/${randomUUID()}/`;
  const stores: PoisonStoreClient[] = Array.from({ length: options.clients }, () =>
    backend.open({ namespace, timeoutMs: TIMEOUT_MS }),
  );
  const windows: { stopAt: number; stoppedAt: number; startAt: number; upAt: number }[] = [];
  const pacer = new FaultPacer(MIN_CALLS_AFTER_FAULTS);
  let down = false;
  // The tight loop: no pause between attempts, whatever they answer.
  const tight = backend.open({ namespace, timeoutMs: TIMEOUT_MS });
  const tightState = { stop: false, calls: 0, okAfterLastRestart: 0 };
  const tightLoop = (async () => {
    const key = `tight/${randomUUID()}`;
    while (!tightState.stop) {
      tightState.calls++;
      try {
        await tight.tryPutPoison(key, "tight");
        await tight.deletePoison(key, "tight");
        if (windows.length === options.restarts && !down) tightState.okAfterLastRestart++;
      } catch {
        // Retried at once.
      }
    }
  })();
  try {
    const faults = (async () => {
      try {
        for (let n = 0; n < options.restarts; n++) {
          const at = ((n + 1) / (options.restarts + 1)) * options.operations * 0.5;
          if (!(await pacer.reached(at))) break;
          const stopAt = performance.now();
          down = true;
          await server.stop();
          const stoppedAt = performance.now();
          await sleep(DOWN_MS);
          const startAt = performance.now();
          await server.start();
          await waitAnswering(backend);
          down = false;
          windows.push({ stopAt, stoppedAt, startAt, upAt: performance.now() });
        }
      } catch (error) {
        problems.push(
          `fault schedule failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      } finally {
        pacer.faultsDone();
      }
    })();
    let result: Awaited<ReturnType<typeof runWorkload>>;
    try {
      result = await runWorkload({
        stores,
        operations: options.operations,
        keys: 4,
        tokensPerKey: 3,
        seed: options.seed,
        maxCallMs: TIMEOUT_MS + SLACK_MS,
        backoffAfterUnknownMs: 500,
        // At least a few hundred calls after the last fault, on the same stores.
        ...pacer.hooks,
      });
    } finally {
      pacer.finished = true;
      await faults;
    }
    const { history, stats } = result;

    // Every store answers again, within a few seconds, without being re-created.
    const unanswered = await storesNotAnswering(stores, RECOVER_WITHIN_MS);
    const tightDeadline = performance.now() + RECOVER_WITHIN_MS;
    while (tightState.okAfterLastRestart === 0 && performance.now() < tightDeadline)
      await sleep(50);
    tightState.stop = true;
    await tightLoop;
    if (windows.length > 0 && tightState.okAfterLastRestart === 0) {
      problems.push(
        `a tight retry loop (${tightState.calls} calls) never succeeded within ${RECOVER_WITHIN_MS} ms of the server's return: failed calls starved the client's reconnection`,
      );
    }
    if (unanswered > 0) {
      problems.push(
        `${unanswered} store(s) did not answer within ${RECOVER_WITHIN_MS} ms after the workload`,
      );
    }

    const during = history.filter((op) =>
      windows.some((w) => op.invokedAt >= w.stoppedAt && op.invokedAt < w.startAt),
    );
    const failedDuringOutage = during.filter((op) => op.outcome.type === "unknown");
    const last = windows.at(-1);
    const succeededAfter = last
      ? history.filter((op) => op.invokedAt > last.upAt && op.outcome.type !== "unknown").length
      : 0;
    if (windows.length < options.restarts)
      problems.push(`only ${windows.length} of ${options.restarts} restarts happened`);
    if (windows.length > 0 && failedDuringOutage.length === 0)
      problems.push("no call failed while the server was down");
    if (windows.length > 0 && succeededAfter === 0)
      problems.push("no call succeeded after the server was back");
    const succeededWhileDown = during.filter((op) => op.outcome.type !== "unknown");
    if (succeededWhileDown.length > 0) {
      problems.push(
        `${succeededWhileDown.length} call(s) invoked while the server was down succeeded`,
      );
    }

    const check = server.wipesData
      ? checkEpochs(history, windows, stats)
      : checkHistory(history, { budgetMs: 120_000 });
    return {
      stats,
      check,
      restarts: windows.length,
      outagesMs: windows.map((w) => w.upAt - w.stopAt),
      failedDuringOutage: failedDuringOutage.length,
      slowestFailureMs: Math.max(
        0,
        ...failedDuringOutage.map((op) => op.completedAt - op.invokedAt),
      ),
      succeededAfter,
      problems,
      elapsedMs: performance.now() - started,
    };
  } finally {
    tightState.stop = true;
    await tightLoop;
    await tight.close().catch(() => undefined);
    // Never leave the shared server down.
    if (down || (await backend.unavailable?.()) !== null) {
      await server.start().catch(() => undefined);
    }
    await waitAnswering(backend).catch((error: unknown) => {
      problems.push(String(error));
    });
    await Promise.allSettled(stores.map((store) => store.close()));
  }
}

async function waitAnswering(backend: TortureBackend): Promise<void> {
  const deadline = performance.now() + ANSWER_WITHIN_MS;
  for (;;) {
    const why = (await backend.unavailable?.()) ?? null;
    if (why === null) return;
    if (performance.now() > deadline)
      throw new Error(`${backend.name} did not answer within ${ANSWER_WITHIN_MS} ms: ${why}`);
    await sleep(100);
  }
}

/**
 * A server that forgets everything when it starts: the history is cut at each start. An
 * operation with a known outcome belongs to the epoch it completed in (it cannot straddle a whole
 * outage: its timeout is shorter than the time the server stays down); an unknown one may have
 * taken effect before the wipe or after it, so it joins both epochs.
 */
function checkEpochs(
  history: readonly Operation[],
  windows: readonly { startAt: number }[],
  stats: WorkloadStats,
): CheckResult {
  const cuts = windows.map((w) => w.startAt);
  const epochOf = (t: number) => cuts.filter((cut) => cut <= t).length;
  const epochs: Operation[][] = Array.from({ length: cuts.length + 1 }, () => []);
  for (const op of history) {
    if (op.outcome.type === "unknown") {
      // From the epoch it was invoked in up to the one after (a call times out long before the
      // next restart).
      const first = epochOf(op.invokedAt);
      for (let e = first; e <= Math.min(first + 1, cuts.length); e++) epochs[e]?.push(op);
    } else {
      if (epochOf(op.invokedAt) !== epochOf(op.completedAt)) {
        stats.anomalies.push(
          `${op.key} ${op.invocation.kind} straddled a restart and completed: ${op.completedAt - op.invokedAt} ms`,
        );
      }
      epochs[epochOf(op.completedAt)]?.push(op);
    }
  }
  const results = epochs.map((ops) => checkHistory(ops, { budgetMs: 60_000 }));
  return {
    ok: results.every((r) => r.ok),
    operations: results.reduce((sum, r) => sum + r.operations, 0),
    keys: results.flatMap((r) => r.keys),
    violations: results.flatMap((r) => r.violations),
    undecided: results.flatMap((r) => r.undecided),
    elapsedMs: results.reduce((sum, r) => sum + r.elapsedMs, 0),
  };
}
