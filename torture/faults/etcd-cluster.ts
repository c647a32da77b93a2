/**
 * A 3-member etcd cluster on loopback ports, started by the suite, with the leader SIGKILLed
 * mid-workload and restarted. The stores use the driver's multi-endpoint URL, so a refused or
 * reset connection moves to the next member. Checks: the history (with a final read of every
 * key once the cluster is whole again) is linearizable, no acknowledged put is lost, every
 * failure is a BackendUnavailableError, and no call outlives its timeout by more than a slack.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { openPoisonStore, type PoisonStoreClient } from "../../src/index.js";
import { reachable } from "../backends.js";
import { type CheckResult, checkHistory } from "../lin/check.js";
import type { Operation } from "../lin/history.js";
import { FaultPacer, runWorkload, type WorkloadStats } from "../workload.js";
import { lostAcknowledgedPuts } from "./lost-puts.js";

const CLIENT_PORTS = [23791, 23792, 23793];
const PEER_PORTS = [23801, 23802, 23803];
const TIMEOUT_MS = 2000;
/** Timers fire late on a loaded machine; a call must still settle near its bound. */
const SLACK_MS = 1000;
const START_WAIT_MS = 20_000;
const MIN_CALLS_AFTER_FAULTS = 500;

export interface EtcdClusterReport {
  stats: WorkloadStats;
  check: CheckResult;
  leaderKills: number;
  /** Milliseconds from each SIGKILL until the killed member answered /health again. */
  outagesMs: number[];
  /** Acknowledged puts that must still be present: contention keys + the durable writer's. */
  acknowledgedPutsChecked: number;
  lostAcknowledgedPuts: string[];
  /** Calls that succeeded after the last restart had completed (the workload went on). */
  succeededAfterLastRestart: number;
  problems: string[];
  elapsedMs: number;
}

interface Member {
  name: string;
  client: string;
  args: string[];
  process: ChildProcess | null;
}

export async function etcdClusterUnavailable(): Promise<string | null> {
  const { execFileSync } = await import("node:child_process");
  try {
    execFileSync("etcd", ["--version"], { stdio: "ignore", timeout: 5000 });
  } catch {
    return "no etcd binary on PATH (Debian package etcd-server)";
  }
  for (const port of [...CLIENT_PORTS, ...PEER_PORTS]) {
    if ((await reachable("127.0.0.1", port)) === null) return `port ${port} is already in use`;
  }
  return null;
}

export async function runEtcdCluster(options: {
  operations: number;
  clients: number;
  kills: number;
  seed: number;
}): Promise<EtcdClusterReport> {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), "poison-etcd-cluster-"));
  const token = `poison-torture-${randomUUID()}`;
  const initialCluster = CLIENT_PORTS.map((_, i) => `m${i}=http://127.0.0.1:${PEER_PORTS[i]}`).join(
    ",",
  );
  const members: Member[] = CLIENT_PORTS.map((port, i) => ({
    name: `m${i}`,
    client: `http://127.0.0.1:${port}`,
    process: null,
    args: [
      "--name",
      `m${i}`,
      "--data-dir",
      join(dir, `m${i}`),
      "--listen-client-urls",
      `http://127.0.0.1:${port}`,
      "--advertise-client-urls",
      `http://127.0.0.1:${port}`,
      "--listen-peer-urls",
      `http://127.0.0.1:${PEER_PORTS[i]}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${PEER_PORTS[i]}`,
      "--initial-cluster",
      initialCluster,
      "--initial-cluster-token",
      token,
      "--initial-cluster-state",
      "new",
    ],
  }));
  const start = (member: Member) => {
    const log = openSync(join(dir, `${member.name}.log`), "a");
    member.process = spawn("etcd", member.args, { stdio: ["ignore", log, log] });
    member.process.on("error", () => undefined);
  };
  const problems: string[] = [];
  const stores: PoisonStoreClient[] = [];
  try {
    for (const member of members) start(member);
    await waitHealthy(members, START_WAIT_MS);

    const url = `etcd://${CLIENT_PORTS.map((p) => `127.0.0.1:${p}`).join(",")}`;
    const namespace = `/torture-cluster/${randomUUID()}/`;
    for (let i = 0; i < options.clients; i++)
      stores.push(openPoisonStore(url, { namespace, timeoutMs: TIMEOUT_MS }));

    const pacer = new FaultPacer(MIN_CALLS_AFTER_FAULTS);
    const outagesMs: number[] = [];
    let lastRestartAt = Number.POSITIVE_INFINITY;
    // The fault schedule: at evenly spaced points of the workload, SIGKILL the leader, let the
    // survivors go on alone for a while, restart it, wait until it answers.
    const faults = (async () => {
      try {
        for (let kill = 0; kill < options.kills; kill++) {
          const at = ((kill + 1) / (options.kills + 1)) * options.operations * 0.8;
          if (!(await pacer.reached(at))) break;
          const leader = await findLeader(members);
          if (!leader?.process) {
            problems.push(`kill ${kill + 1}: no leader found`);
            continue;
          }
          const killedAt = performance.now();
          leader.process.kill("SIGKILL");
          await new Promise((resolve) => leader.process?.once("exit", resolve));
          await sleep(1500);
          start(leader);
          await waitHealthy([leader], START_WAIT_MS);
          outagesMs.push(performance.now() - killedAt);
          lastRestartAt = performance.now();
        }
      } catch (error) {
        problems.push(
          `fault schedule failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      } finally {
        pacer.faultsDone();
      }
    })();
    // A durable writer beside the contention clients: unique keys, never deleted, so every
    // acknowledged one must be there at the end, whatever happened to the leader meanwhile.
    const durableStore = openPoisonStore(url, { namespace, timeoutMs: TIMEOUT_MS });
    stores.push(durableStore);
    const durableAcked: string[] = [];
    const durable = (async () => {
      for (let n = 0; !pacer.finished; n++) {
        const key = `durable-${n}`;
        try {
          await durableStore.tryPutPoison(key, `d${n}`);
          durableAcked.push(key);
        } catch {
          // Unknown outcome: not acknowledged, so not checked.
        }
      }
    })();

    const workloadStores = stores.slice(0, options.clients);
    let result: Awaited<ReturnType<typeof runWorkload>>;
    try {
      result = await runWorkload({
        stores: workloadStores,
        operations: options.operations,
        keys: 4,
        tokensPerKey: 3,
        seed: options.seed,
        maxCallMs: TIMEOUT_MS + SLACK_MS,
        // At least a few hundred calls after the last fault, on the same stores.
        ...pacer.hooks,
      });
    } finally {
      pacer.finished = true;
      await faults;
      await durable;
    }
    const { history, stats } = result;
    const succeededAfterLastRestart = history.filter(
      (op) => op.invokedAt > lastRestartAt && op.outcome.type !== "unknown",
    ).length;
    await waitHealthy(members, START_WAIT_MS);

    // Final reads, once the cluster is whole: they join the history, so a lost write shows up as
    // a violation too, and give the final state for the lost-put check.
    const finalStore = stores[0] as PoisonStoreClient;
    const finalState = new Map<string, string | null>();
    const withFinal: Operation[] = [...history];
    for (const key of new Set(history.map((op) => op.key))) {
      const invokedAt = performance.now();
      const token = await finalStore.getPoison(key);
      finalState.set(key, token);
      withFinal.push({
        client: -1,
        key,
        invocation: { kind: "get" },
        outcome: { type: "read", token },
        invokedAt,
        completedAt: performance.now(),
      });
    }
    const lost = lostAcknowledgedPuts(history, finalState);
    const present = new Set<string>();
    let cursor: string | null = null;
    do {
      const page = await finalStore.listPoisons({ prefix: "durable-", limit: 1000, cursor });
      for (const record of page.records) present.add(record.key);
      cursor = page.cursor;
    } while (cursor !== null);
    for (const key of durableAcked)
      if (!present.has(key)) lost.lost.push(`${key}: acknowledged put missing`);

    if (options.kills > 0 && outagesMs.length < options.kills)
      problems.push(`only ${outagesMs.length} of ${options.kills} leader kills happened`);
    if (outagesMs.length > 0 && succeededAfterLastRestart === 0)
      problems.push("no call succeeded after the last restart");

    return {
      stats,
      check: checkHistory(withFinal, { budgetMs: 120_000 }),
      leaderKills: outagesMs.length,
      outagesMs,
      acknowledgedPutsChecked: lost.checked + durableAcked.length,
      lostAcknowledgedPuts: lost.lost,
      succeededAfterLastRestart,
      problems,
      elapsedMs: performance.now() - started,
    };
  } finally {
    await Promise.allSettled(stores.map((store) => store.close()));
    for (const member of members) {
      if (
        member.process &&
        member.process.exitCode === null &&
        member.process.signalCode === null
      ) {
        const exited = new Promise((resolve) => member.process?.once("exit", resolve));
        member.process.kill("SIGKILL");
        await Promise.race([exited, sleep(5000)]);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

async function status(member: Member): Promise<{ id: string; leader: string } | null> {
  try {
    const response = await fetch(`${member.client}/v3/maintenance/status`, {
      method: "POST",
      body: "{}",
      signal: AbortSignal.timeout(1000),
    });
    const body = (await response.json()) as { header?: { member_id?: string }; leader?: string };
    if (!body.header?.member_id || !body.leader) return null;
    return { id: body.header.member_id, leader: body.leader };
  } catch {
    return null;
  }
}

/** The member every answering member names as leader (retried while an election runs). */
async function findLeader(members: Member[]): Promise<Member | null> {
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    const answers = await Promise.all(members.map(status));
    const leaderId = answers.find((a) => a !== null && a.leader !== "0")?.leader;
    const index = answers.findIndex((a) => a?.id === leaderId);
    if (leaderId && index >= 0) return members[index] as Member;
    await sleep(100);
  }
  return null;
}

async function waitHealthy(members: Member[], withinMs: number): Promise<void> {
  const deadline = performance.now() + withinMs;
  for (const member of members) {
    for (;;) {
      try {
        const response = await fetch(`${member.client}/health`, {
          signal: AbortSignal.timeout(1000),
        });
        if ((await response.text()).includes('"health":"true"')) break;
      } catch {
        // Not up yet.
      }
      if (performance.now() > deadline)
        throw new Error(`etcd member ${member.name} not healthy within ${withinMs} ms`);
      await sleep(100);
    }
  }
}
