/**
 * The contention workload from several processes at once on one backend URL (a SQLite file, a
 * server): what one process cannot show for a synchronous driver, whose calls never interleave
 * inside a process. Histories share CLOCK_MONOTONIC (process.hrtime), so they merge into one.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import type { Operation } from "./lin/history.js";
import type { WorkloadResult, WorkloadStats } from "./workload.js";

const child = new URL("./workload-child.ts", import.meta.url).pathname;
const root = new URL("..", import.meta.url).pathname;

export interface ProcessesOptions {
  url: string;
  processes: number;
  clientsPerProcess: number;
  operations: number;
  seed: number;
}

export async function runProcesses(options: ProcessesOptions): Promise<WorkloadResult> {
  const namespace = `/torture-processes/${randomUUID()}/`;
  const share = Math.ceil(options.operations / options.processes);
  const children = Array.from({ length: options.processes }, (_, i) =>
    spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        child,
        options.url,
        namespace,
        String(share),
        String(options.clientsPerProcess),
        String(options.seed + i),
        String(i * options.clientsPerProcess),
      ],
      // tsx resolves from the working directory: the repository root.
      { stdio: ["pipe", "pipe", "pipe"], cwd: root },
    ),
  );
  try {
    const outputs = children.map(collect);
    await Promise.all(outputs.map((output) => output.ready));
    for (const proc of children) proc.stdin?.end("go\n");
    const results = await Promise.all(outputs.map((output) => output.done));
    const history: Operation[] = results.flatMap((r) => r.history);
    const stats = results.map((r) => r.stats).reduce(merge);
    return { history, stats };
  } finally {
    for (const proc of children) if (proc.exitCode === null) proc.kill("SIGKILL");
  }
}

function collect(proc: ChildProcess): { ready: Promise<void>; done: Promise<WorkloadResult> } {
  let out = "";
  let err = "";
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  proc.stdout?.setEncoding("utf8");
  proc.stdout?.on("data", (chunk: string) => {
    out += chunk;
    if (out.startsWith("ready\n")) markReady();
  });
  proc.stderr?.setEncoding("utf8");
  proc.stderr?.on("data", (chunk: string) => {
    err += chunk;
  });
  const done = new Promise<WorkloadResult>((resolve, reject) => {
    proc.on("error", reject);
    proc.on("close", (code) => {
      const last = out.trimEnd().split("\n").at(-1);
      if (code !== 0 || !last || last === "ready") {
        reject(new Error(`workload process failed (code ${code}): ${err.slice(0, 2000)}`));
        markReady();
        return;
      }
      resolve(JSON.parse(last) as WorkloadResult);
    });
  });
  return { ready, done };
}

function merge(a: WorkloadStats, b: WorkloadStats): WorkloadStats {
  const unknownCauses = { ...a.unknownCauses };
  for (const [cause, count] of Object.entries(b.unknownCauses)) {
    unknownCauses[cause] = (unknownCauses[cause] ?? 0) + count;
  }
  return {
    operations: a.operations + b.operations,
    ok: a.ok + b.ok,
    conflicts: a.conflicts + b.conflicts,
    reads: a.reads + b.reads,
    unknown: a.unknown + b.unknown,
    anomalies: [...a.anomalies, ...b.anomalies],
    unknownCauses,
    unknownSamples: [...a.unknownSamples, ...b.unknownSamples].slice(0, 5),
    slowestCallMs: Math.max(a.slowestCallMs, b.slowestCallMs),
    elapsedMs: Math.max(a.elapsedMs, b.elapsedMs),
  };
}
