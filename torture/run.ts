/**
 * `npm run torture`: the contention workload with linearizability checking, proxy faults (for
 * backends that declare a proxy target), SIGKILL of SQLite writers, and fuzzed input, per
 * backend; then the guard's model-based test (memory); prints a report table and exits non-zero
 * on any violation.
 *
 *   npm run torture                          # the short CI form, every backend
 *   npm run torture -- --backend memory,sqlite
 *   npm run torture -- --long                # 10x the operations, 4x the kills, 10x the fuzz
 *   npm run torture -- --seed 1234           # reproduce a run (the seed is printed)
 *   npm run torture -- --restarts            # also stop and start the machine's Redis,
 *                                            # PostgreSQL and MariaDB mid-workload
 *   npm run torture -- --no-cluster          # skip the 3-member etcd cluster (runs with etcd)
 *   npm run torture -- --faults-only --restarts   # only the cluster and the restarts
 *
 * POISON_REQUIRE_ALL=1 turns an unavailable backend into a failure, as in the conformance suite.
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { BACKENDS, type TortureBackend } from "./backends.js";
import { etcdClusterUnavailable, runEtcdCluster } from "./faults/etcd-cluster.js";
import { MIN_PROXY_FAULTS, runProxyFaults } from "./faults/proxy.js";
import { RESTARTABLE, runRestart } from "./faults/restart.js";
import { runSqliteKills } from "./faults/sqlite-kill.js";
import { runFuzz } from "./fuzz.js";
import { checkGuardModel } from "./guard-model.js";
import { checkHistory } from "./lin/check.js";
import { runProcesses } from "./processes.js";
import { runWorkload } from "./workload.js";

const { values } = parseArgs({
  options: {
    long: { type: "boolean", default: false },
    backend: { type: "string" },
    seed: { type: "string" },
    restarts: { type: "boolean", default: false },
    "faults-only": { type: "boolean", default: false },
    "no-cluster": { type: "boolean", default: false },
  },
});
const restarts = values.restarts === true;
const cluster = values["no-cluster"] !== true;
const faultsOnly = values["faults-only"] === true;
const long = values.long === true;
const seed = values.seed ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const names = values.backend?.split(",").map((s) => s.trim()) ?? BACKENDS.map((b) => b.name);
const unknownNames = names.filter((name) => !BACKENDS.some((b) => b.name === name));
if (unknownNames.length > 0) {
  console.error(
    `unknown backend(s): ${unknownNames.join(", ")}; known: ${BACKENDS.map((b) => b.name).join(", ")}`,
  );
  process.exit(2);
}

const SIZE = {
  operations: long ? 100_000 : 10_000,
  clients: 16,
  processes: 4,
  keys: 4,
  tokensPerKey: 3,
  kills: long ? 200 : 50,
  fuzzCalls: long ? 1_000_000 : 100_000,
  proxyOperations: long ? 20_000 : 2_000,
  clusterOperations: long ? 20_000 : 3_000,
  leaderKills: long ? 6 : 2,
  restartOperations: long ? 10_000 : 2_000,
  restarts: long ? 3 : 1,
};

interface Row {
  backend: string;
  ops: number;
  conflicts: number;
  unknown: number;
  violations: number;
  processOps: string;
  processViolations: string;
  checkMs: number;
  fuzzCalls: number;
  fuzzFailures: number;
  kills: string;
  lostWrites: string;
  proxy: string;
  seconds: number;
}

/** One row of the second table: a fault on a real server process. */
interface FaultRow {
  fault: string;
  ops: number;
  unknown: number;
  violations: number;
  lostAckedPuts: string;
  /** Leader kills (etcd) or server restarts. */
  killsOrRestarts: number;
  outagesMs: string;
  failedInOutage: string;
  slowestCallMs: string;
  okAfter: number;
  seconds: number;
}

const problems: string[] = [];
const rows: Row[] = [];
const faultRows: FaultRow[] = [];
const available = new Set<string>();
console.log(`torture: ${long ? "long" : "short"} form, seed ${seed}, backends ${names.join(",")}`);

for (const backend of BACKENDS.filter((b) => names.includes(b.name))) {
  const skip = (await backend.unavailable?.()) ?? null;
  if (skip !== null) {
    const message = `${backend.name}: unavailable (${skip})`;
    if (process.env.POISON_REQUIRE_ALL === "1")
      problems.push(`${message}, but POISON_REQUIRE_ALL=1`);
    else console.error(`*** SKIPPED ${message} ***`);
    continue;
  }
  available.add(backend.name);
  if (!faultsOnly) rows.push(await tortureOne(backend));
}

// Faults on real server processes: the etcd cluster the suite starts, and (opt-in, since they
// stop the machine's shared servers) restarts of Redis, PostgreSQL and MariaDB.
if (cluster && names.includes("etcd")) {
  const skip = await etcdClusterUnavailable();
  if (skip !== null) {
    const message = `etcd-cluster: unavailable (${skip})`;
    if (process.env.POISON_REQUIRE_ALL === "1")
      problems.push(`${message}, but POISON_REQUIRE_ALL=1`);
    else console.error(`*** SKIPPED ${message} ***`);
  } else {
    faultRows.push(await clusterFaults());
  }
}
if (restarts) {
  for (const backend of BACKENDS.filter((b) => RESTARTABLE.includes(b.name))) {
    if (available.has(backend.name)) faultRows.push(await restartFaults(backend));
  }
}

// 5. The guard's model-based test: concurrent runs interleaved by fast-check's scheduler
// (memory backend only: the scheduler needs in-process, deterministic store steps).
if (names.includes("memory")) {
  const numRuns = long ? 20_000 : 2_000;
  try {
    const model = await checkGuardModel({ numRuns, seed });
    console.log(
      `[guard model] ${model.properties} schedules, ${model.runs} runs, ${model.bodies} bodies, ${model.retries} retries, ${model.markConsistent} markConsistent, ${model.poisoned} poisoned, ${model.refused} refused, ${model.steps} store steps, ${model.faults} lost writes, ${model.losses} keys of live runs cleared (${model.lost} runs lost): no violation (${(model.elapsedMs / 1000).toFixed(1)} s)`,
    );
  } catch (error) {
    problems.push(`guard model: ${error instanceof Error ? error.message : String(error)}`);
  }
}

printTable(rows);
printTable(faultRows);
if (problems.length > 0) {
  console.error(`\n${problems.length} problem(s):`);
  for (const problem of problems) console.error(`- ${problem}`);
  console.error(
    `\nreproduce with: npm run torture -- --seed ${seed} --backend ${names.join(",")}${long ? " --long" : ""}`,
  );
  process.exit(1);
}
console.log("\nno violations");

async function tortureOne(backend: TortureBackend): Promise<Row> {
  const started = performance.now();
  const say = (what: string) => console.log(`[${backend.name}] ${what}`);
  const flag = (what: string) => problems.push(`${backend.name}: ${what}`);
  try {
    // 1. Contention workload, checked for linearizability.
    const namespace = `/torture/${randomUUID()}/`;
    const stores = Array.from({ length: SIZE.clients }, () => backend.open({ namespace }));
    const { history, stats } = await runWorkload({
      stores,
      operations: SIZE.operations,
      keys: SIZE.keys,
      tokensPerKey: SIZE.tokensPerKey,
      seed,
    });
    await Promise.all(stores.map((store) => store.close()));
    const check = checkHistory(history, { budgetMs: 120_000 });
    say(
      `workload: ${stats.operations} ops in ${(stats.elapsedMs / 1000).toFixed(1)} s, checked in ${(check.elapsedMs / 1000).toFixed(1)} s: ${check.ok ? "linearizable" : "NOT LINEARIZABLE"}`,
    );
    for (const v of check.violations)
      flag(`history of ${v.key} is not linearizable:\n${v.explanation}`);
    for (const u of check.undecided) flag(`history of ${u.key}: the checker ran out of time`);
    for (const a of stats.anomalies) flag(a);
    // Not a violation: a loaded machine can push a call past its timeout, and the checker
    // treats its outcome as unknown. Shown so a surprising cause gets looked at.
    if (stats.unknown > 0) {
      say(`${stats.unknown} unknown outcomes, causes: ${JSON.stringify(stats.unknownCauses)}`);
      say(`first unknown outcomes: ${stats.unknownSamples.join("; ")}`);
    }

    // 1b. The same from several processes, for backends other processes can open.
    let processOps = "n/a";
    let processViolations = "n/a";
    if (backend.url) {
      const multi = await runProcesses({
        url: backend.url(),
        processes: SIZE.processes,
        clientsPerProcess: SIZE.clients / SIZE.processes,
        operations: SIZE.operations,
        seed,
      });
      const multiCheck = checkHistory(multi.history, { budgetMs: 120_000 });
      processOps = String(multi.stats.operations);
      processViolations = String(
        multiCheck.violations.length + multiCheck.undecided.length + multi.stats.anomalies.length,
      );
      say(
        `${SIZE.processes} processes: ${multi.stats.operations} ops (${multi.stats.conflicts} conflicts, ${multi.stats.unknown} unknown) in ${(multi.stats.elapsedMs / 1000).toFixed(1)} s, checked in ${(multiCheck.elapsedMs / 1000).toFixed(1)} s: ${multiCheck.ok ? "linearizable" : "NOT LINEARIZABLE"}`,
      );
      if (multi.stats.unknown > 0) {
        say(`  unknown outcomes: ${JSON.stringify(multi.stats.unknownCauses)}`);
      }
      for (const v of multiCheck.violations) {
        flag(
          `${SIZE.processes} processes, history of ${v.key} is not linearizable:\n${v.explanation}`,
        );
      }
      for (const u of multiCheck.undecided)
        flag(`${SIZE.processes} processes, ${u.key}: the checker ran out of time`);
      for (const a of multi.stats.anomalies) flag(`${SIZE.processes} processes: ${a}`);
    }

    // 2. Proxy faults, for backends that declare a server to proxy.
    let proxy = "n/a";
    if (backend.proxy) {
      const faults = await runProxyFaults(backend, {
        operations: SIZE.proxyOperations,
        clients: SIZE.clients,
        seed,
      });
      proxy = `${faults.stats.operations} ops, ${faults.faults} faults, ${faults.stats.unknown} unknown, ${faults.check.violations.length} violations`;
      say(`proxy faults: ${proxy}, slowest call ${faults.stats.slowestCallMs.toFixed(0)} ms`);
      for (const v of faults.check.violations)
        flag(`under proxy faults, ${v.key}:\n${v.explanation}`);
      for (const u of faults.check.undecided)
        flag(`under proxy faults, ${u.key}: the checker ran out of time`);
      for (const a of faults.stats.anomalies) flag(`under proxy faults: ${a}`);
      if (!faults.recovered) flag("a store did not answer after the proxy faults stopped");
      if (faults.faults < MIN_PROXY_FAULTS)
        flag(`the proxy workload injected only ${faults.faults} faults`);
    }

    // 3. SIGKILL of writer processes (SQLite: the embedded, durable backend).
    let kills = "n/a";
    let lostWrites = "n/a";
    if (backend.name === "sqlite") {
      const report = await runSqliteKills({ kills: SIZE.kills, seed, maxRunMs: 400 });
      kills = String(report.kills);
      lostWrites = String(report.lostWrites);
      say(
        `SIGKILL: ${report.kills} kills, ${report.acknowledgedChecked} acknowledged writes checked, ${report.lostWrites} lost, ${report.inFlightApplied} in-flight applied, ${report.integrityFailures} integrity failures (${(report.elapsedMs / 1000).toFixed(1)} s)`,
      );
      for (const problem of report.problems) flag(`SIGKILL: ${problem}`);
    }

    // 4. Fuzzed input.
    const fuzz = await runFuzz(backend, Math.ceil(SIZE.fuzzCalls * backend.fuzzScale), seed);
    say(
      `fuzz: ${fuzz.calls} calls (${fuzz.accepted} accepted, ${fuzz.rejectedInvalid} invalid, ${fuzz.rejectedOther} other typed rejections) in ${(fuzz.elapsedMs / 1000).toFixed(1)} s`,
    );
    for (const failure of fuzz.failures) flag(`fuzz: ${failure}`);

    return {
      backend: backend.name,
      ops: stats.operations,
      conflicts: stats.conflicts,
      unknown: stats.unknown,
      violations: check.violations.length + check.undecided.length + stats.anomalies.length,
      processOps,
      processViolations,
      checkMs: Math.round(check.elapsedMs),
      fuzzCalls: fuzz.calls,
      fuzzFailures: fuzz.failures.length,
      kills,
      lostWrites,
      proxy,
      seconds: Math.round((performance.now() - started) / 1000),
    };
  } finally {
    await backend.teardown?.();
  }
}

async function clusterFaults(): Promise<FaultRow> {
  const say = (what: string) => console.log(`[etcd-cluster] ${what}`);
  const flag = (what: string) => problems.push(`etcd-cluster: ${what}`);
  const report = await runEtcdCluster({
    operations: SIZE.clusterOperations,
    clients: SIZE.clients,
    kills: SIZE.leaderKills,
    seed,
  });
  const { stats, check } = report;
  say(
    `${stats.operations} ops (${stats.conflicts} conflicts, ${stats.unknown} unknown), ${report.leaderKills} leader kills (down ${report.outagesMs.map((ms) => ms.toFixed(0)).join(", ")} ms), ${report.succeededAfterLastRestart} succeeded after the last restart, ${report.acknowledgedPutsChecked} acknowledged puts checked, ${report.lostAcknowledgedPuts.length} lost, slowest call ${stats.slowestCallMs.toFixed(0)} ms: ${check.ok ? "linearizable" : "NOT LINEARIZABLE"} (${(report.elapsedMs / 1000).toFixed(1)} s)`,
  );
  if (stats.unknown > 0) say(`unknown outcomes: ${JSON.stringify(stats.unknownCauses)}`);
  for (const v of check.violations)
    flag(`history of ${v.key} is not linearizable:\n${v.explanation}`);
  for (const u of check.undecided) flag(`history of ${u.key}: the checker ran out of time`);
  for (const a of stats.anomalies) flag(a);
  for (const lost of report.lostAcknowledgedPuts) flag(`lost acknowledged put: ${lost}`);
  for (const problem of report.problems) flag(problem);
  return {
    fault: "etcd-cluster: leader SIGKILL",
    ops: stats.operations,
    unknown: stats.unknown,
    violations: check.violations.length + check.undecided.length + stats.anomalies.length,
    lostAckedPuts: `${report.lostAcknowledgedPuts.length}/${report.acknowledgedPutsChecked}`,
    killsOrRestarts: report.leaderKills,
    outagesMs: report.outagesMs.map((ms) => ms.toFixed(0)).join(","),
    failedInOutage: "n/a",
    slowestCallMs: stats.slowestCallMs.toFixed(0),
    okAfter: report.succeededAfterLastRestart,
    seconds: Math.round(report.elapsedMs / 1000),
  };
}

async function restartFaults(backend: TortureBackend): Promise<FaultRow> {
  const say = (what: string) => console.log(`[${backend.name}-restart] ${what}`);
  const flag = (what: string) => problems.push(`${backend.name} restart: ${what}`);
  const report = await runRestart(backend, {
    operations: SIZE.restartOperations,
    clients: SIZE.clients,
    restarts: SIZE.restarts,
    seed,
  });
  const { stats, check } = report;
  say(
    `${stats.operations} ops (${stats.conflicts} conflicts, ${stats.unknown} unknown), ${report.restarts} restarts (down ${report.outagesMs.map((ms) => ms.toFixed(0)).join(", ")} ms), ${report.failedDuringOutage} calls failed during the outage (slowest ${report.slowestFailureMs.toFixed(0)} ms), ${report.succeededAfter} succeeded after: ${check.ok ? "linearizable" : "NOT LINEARIZABLE"} (${(report.elapsedMs / 1000).toFixed(1)} s)`,
  );
  if (stats.unknown > 0) say(`unknown outcomes: ${JSON.stringify(stats.unknownCauses)}`);
  for (const v of check.violations)
    flag(`history of ${v.key} is not linearizable:\n${v.explanation}`);
  for (const u of check.undecided) flag(`history of ${u.key}: the checker ran out of time`);
  for (const a of stats.anomalies) flag(a);
  for (const problem of report.problems) flag(problem);
  return {
    fault: `${backend.name}: server restart`,
    ops: stats.operations,
    unknown: stats.unknown,
    violations: check.violations.length + check.undecided.length + stats.anomalies.length,
    lostAckedPuts: "n/a",
    killsOrRestarts: report.restarts,
    outagesMs: report.outagesMs.map((ms) => ms.toFixed(0)).join(","),
    failedInOutage: String(report.failedDuringOutage),
    slowestCallMs: stats.slowestCallMs.toFixed(0),
    okAfter: report.succeededAfter,
    seconds: Math.round(report.elapsedMs / 1000),
  };
}

function printTable<T extends object>(table: T[]) {
  if (table.length === 0) return;
  const headers = Object.keys(table[0] as T) as (keyof T)[];
  const cells = table.map((row) => headers.map((h) => String(row[h])));
  const widths = headers.map((h, i) =>
    Math.max(String(h).length, ...cells.map((c) => (c[i] as string).length)),
  );
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i] as number)).join("  ");
  console.log(`\n${line(headers.map(String))}`);
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const row of cells) console.log(line(row));
}
