import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { DeadlineQueue } from "../../src/core/deadlines.js";

const run = promisify(execFile);
const deadlinesModule = fileURLToPath(new URL("../../src/core/deadlines.ts", import.meta.url));

/** Runs `body` in a fresh Node process with `DeadlineQueue` in scope; returns its output and
 *  how long the process lived. */
async function inChild(body: string): Promise<{ stdout: string; ms: number }> {
  const source = `import { DeadlineQueue } from ${JSON.stringify(deadlinesModule)};\n${body}`;
  const started = performance.now();
  const { stdout } = await run(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", source],
    { timeout: 20_000 },
  );
  return { stdout, ms: performance.now() - started };
}

describe("core: the shared deadline queue", () => {
  it("expires a call that has not settled at its bound, not before", async () => {
    const queue = new DeadlineQueue(120);
    const started = performance.now();
    const elapsed = await new Promise<number>((resolve) => {
      queue.add(() => resolve(performance.now() - started));
    });
    assert.ok(elapsed >= 119 && elapsed < 600, `expired after ${Math.round(elapsed)} ms`);
  });

  it("never expires a settled call; expires each pending one once, oldest first, each at its own bound", async () => {
    const queue = new DeadlineQueue(100);
    const expired: string[] = [];
    const at: Record<string, number> = {};
    const started = performance.now();
    const mark = (name: string) => () => {
      expired.push(name);
      at[name] = performance.now() - started;
    };
    const first = queue.add(mark("first"));
    const settled = queue.add(mark("settled"));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const later = queue.add(mark("later"));
    queue.settle(settled);
    queue.settle(settled); // idempotent
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.deepEqual(expired, ["first", "later"]);
    assert.ok((at.first ?? 0) >= 99 && (at.first ?? 0) < 140, `first at ${at.first} ms`);
    // "later" started 50 ms after "first": the timer armed for "first" must not expire it early.
    assert.ok((at.later ?? 0) >= 149, `later at ${at.later} ms`);
    queue.settle(first); // after expiry: no effect
    queue.settle(later);
  });

  it("settling the head and the tail, in any order, leaves the others to expire", async () => {
    const queue = new DeadlineQueue(60);
    const expired: number[] = [];
    const deadlines = [0, 1, 2, 3, 4].map((i) => queue.add(() => expired.push(i)));
    queue.settle(deadlines[0] as never);
    queue.settle(deadlines[4] as never);
    queue.settle(deadlines[2] as never);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(expired, [1, 3]);
  });

  it("a pending call holds the process open until it expires, as a per-call timer did", async () => {
    const { stdout, ms } = await inChild(
      `new DeadlineQueue(300).add(() => console.log("expired"));`,
    );
    assert.equal(stdout.trim(), "expired");
    assert.ok(ms >= 300, `the process lived ${Math.round(ms)} ms`);
  });

  it("once every call has settled, the queue does not keep the process alive", async () => {
    const { stdout, ms } = await inChild(
      `const queue = new DeadlineQueue(10_000);
       const a = queue.add(() => console.log("a expired"));
       const b = queue.add(() => console.log("b expired"));
       queue.settle(a);
       await new Promise((resolve) => setTimeout(resolve, 10));
       queue.settle(b);
       console.log("settled");`,
    );
    assert.equal(stdout.trim(), "settled");
    assert.ok(
      ms < 8_000,
      `the process lived ${Math.round(ms)} ms: the settled calls' timer held it`,
    );
  });
});
