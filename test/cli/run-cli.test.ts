/**
 * `runCli` in-process, for what the bin cannot provoke cheaply: a backend that fails after the
 * first page of a streamed --json document.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runCli } from "../../src/cli/cli.js";
import type { CliIo } from "../../src/cli/io.js";
import {
  createPoisonStore,
  memoryDriver,
  type PoisonDriver,
  type PoisonStoreClient,
} from "../../src/index.js";

function capture(): { text: () => string; write(chunk: string): boolean } {
  let text = "";
  return {
    text: () => text,
    write(chunk: string) {
      text += chunk;
      return true;
    },
  };
}

/** `runCli` on a store the test builds; what it printed, and its exit code. */
async function runOn(
  openStore: () => PoisonStoreClient,
  argv: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const io: CliIo = { stdout, stderr, stdin: process.stdin, env: {}, openStore };
  const code = await runCli([...argv, "--store", "memory:"], io);
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** A memory driver whose list and audit reads fail from the second call on. */
function failingAfterFirstPage(): PoisonDriver {
  const inner = memoryDriver();
  let lists = 0;
  let audits = 0;
  return {
    ...inner,
    async list(query) {
      if (++lists > 1) throw new Error("connection reset by peer");
      return inner.list(query);
    },
    async audit(query) {
      if (++audits > 1) throw new Error("connection reset by peer");
      return inner.audit(query);
    },
  };
}

describe("runCli in-process", () => {
  for (const command of ["list", "history"] as const) {
    it(`${command} --json: a failure after the first page still leaves one JSON document`, async () => {
      const driver = failingAfterFirstPage();
      const seed = createPoisonStore(driver);
      const keys = Array.from({ length: 600 }, (_, i) => `k/${String(i).padStart(4, "0")}`);
      await seed.tryPutPoisons(keys, "t", { audit: { actor: "test", reason: "seed" } });
      const { code, stdout, stderr } = await runOn(
        () => createPoisonStore(driver),
        [command, "--json", "--limit", "1000"],
      );
      assert.equal(code, 5);
      const doc = JSON.parse(stdout) as {
        count: number;
        truncated: boolean;
        error: { code: string; exitCode: number };
      };
      assert.ok(doc.count > 0, "the first page was printed");
      assert.equal(doc.truncated, true);
      assert.equal(doc.error.code, "BACKEND_UNAVAILABLE");
      assert.equal(doc.error.exitCode, 5);
      assert.match(stderr, /^poison: error: memory backend unavailable: connection reset by peer/);
    });
  }
});

describe("runCli: a store whose close() fails", () => {
  const hangingClose = (): PoisonDriver => ({
    ...memoryDriver(),
    close: () => new Promise<void>(() => undefined),
  });
  const run = (argv: string[]) =>
    runOn(() => createPoisonStore(hangingClose(), { timeoutMs: 200 }), argv);

  it("a command that succeeded still exits 0, with a warning about the close", async () => {
    const { code, stderr } = await run(["put", "k", "--token", "t", "--reason", "maintenance"]);
    assert.equal(code, 0);
    assert.match(stderr, /^poison: warning: closing the store failed: .*close did not finish/m);
  });

  it("a command that failed reports its own error, not the close's", async () => {
    const { code, stderr } = await run(["show", "absent-key"]);
    assert.equal(code, 4);
    assert.doesNotMatch(stderr, /closing the store failed/);
  });
});
