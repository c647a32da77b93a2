/**
 * SPEC §5 resume, for real: a process on SQLite is SIGKILLed mid-body; its keys stay in-progress
 * (with its heartbeats), other tokens are refused, and a second process with the same token
 * resumes the operation and cleans up.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { fileURLToPath } from "node:url";
import { openPoisonStore } from "../../src/index.js";

const child = fileURLToPath(new URL("./fixtures/guarded-child.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "poison-guard-kill-"));
const path = join(dir, "resume.db");
after(() => rmSync(dir, { recursive: true, force: true }));

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", child, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Collect the child's output until it exits (killed after `ms` as a safety net). */
function finish(
  proc: ChildProcess,
  ms = 20_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  proc.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  proc.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill("SIGKILL"), ms);
    proc.on("exit", (code, signal) => {
      clearTimeout(timer);
      // Let the pipes drain.
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
  });
}

function waitForLine(proc: ChildProcess, line: string, ms = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`no "${line}" within ${ms} ms: ${seen}`)), ms);
    proc.stdout?.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.split("\n").includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.on("exit", () => reject(new Error(`exited before "${line}": ${seen}`)));
  });
}

it("a process killed mid-body leaves in-progress keys; a second process with the same token resumes and cleans up", async () => {
  const keys = ["table/1024/shard-1", "table/1024/shard-2", "table/1024/shard-3"];
  const token = "procedure-7f3a";
  const store = openPoisonStore(`sqlite:${path}`);
  try {
    const victim = start(["hang", path, token, ...keys]);
    const victimDone = finish(victim);
    await waitForLine(victim, "in-body");
    // Wait for a heartbeat so the test also shows what an operator sees of a dead owner.
    const deadline = Date.now() + 10_000;
    while (!(await store.inspectPoison(keys[2] as string))?.heartbeatAt) {
      assert.ok(Date.now() < deadline, "no heartbeat from the child");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    victim.kill("SIGKILL");
    const killed = await victimDone;
    assert.equal(killed.signal, "SIGKILL");

    for (const key of keys) {
      const record = await store.inspectPoison(key);
      assert.equal(record?.token, token);
      assert.equal(record?.state, "in-progress");
      assert.equal(record?.operation, "alter-table");
      assert.match(record?.owner ?? "", new RegExp(`:${victim.pid}$`));
      assert.ok(record?.heartbeatAt);
    }
    const frozen = (await store.inspectPoison(keys[0] as string))?.heartbeatAt;

    const intruder = await finish(start(["run", path, "procedure-other", keys[1] as string]));
    assert.equal(intruder.code, 3, intruder.stderr);
    assert.equal(intruder.stdout.trim(), "refused RESOURCE_POISONED");
    assert.equal((await store.inspectPoison(keys[0] as string))?.heartbeatAt, frozen, "dead owner");

    const resumer = await finish(start(["run", path, token, ...keys]));
    assert.equal(resumer.code, 0, resumer.stderr);
    assert.deepEqual(JSON.parse(resumer.stdout.trim()), { resumed: true, attempt: 1 });
    for (const key of keys) assert.equal(await store.getPoison(key), null);
  } finally {
    await store.close();
  }
});
