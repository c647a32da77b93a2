/**
 * The writer process of the SQLite kill test: puts keys one after another (and deletes some of
 * its earlier ones) on the file given, printing each acknowledged step to stdout with
 * `fs.writeSync` on fd 1, so a printed line is in the kernel's pipe, in the parent's hands,
 * before the next call starts. (`process.stdout.write` may queue in the process when the pipe is
 * full: a SIGKILL then loses the tail of the acknowledgements, and the parent reports writes it
 * never heard of; seen once in CI, 1265 keys "never written".) The parent SIGKILLs this process
 * at a random moment.
 *
 * Before each call it prints `try VERB KEY…`, after it `VERB KEY`: a `try` line without its
 * acknowledgement names the call in flight when the kill came (either outcome is allowed).
 *
 * Usage: node --import tsx torture/faults/sqlite-writer.ts PATH RUN
 */
import { writeSync } from "node:fs";
import { openPoisonStore } from "../../src/index.js";

/** Every byte in the pipe before returning; waits out a full pipe (EAGAIN) instead of queuing. */
function say(text: string): void {
  let bytes = Buffer.from(text, "utf8");
  while (bytes.length > 0) {
    try {
      bytes = bytes.subarray(writeSync(1, bytes));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

const [path, run] = process.argv.slice(2);
if (!path || !run) throw new Error("usage: sqlite-writer.ts PATH RUN");

const store = openPoisonStore(`sqlite:${path}`, { namespace: "/kill/" });
const token = `writer-${run}`;
say("ready\n");
for (let n = 0; ; n++) {
  const key = `run-${run}/key-${n}`;
  if (n % 7 === 3) {
    // An all-or-none batch: both keys or neither.
    say(`try put ${key} ${key}/batch\n`);
    await store.tryPutPoisons([key, `${key}/batch`], token, { operation: "kill-test" });
    say(`put ${key}\nput ${key}/batch\n`);
  } else {
    say(`try put ${key}\n`);
    await store.tryPutPoison(key, token, { operation: "kill-test", data: { n } });
    say(`put ${key}\n`);
  }
  if (n % 5 === 4) {
    const victim = `run-${run}/key-${n - 2}`;
    say(`try delete ${victim}\n`);
    await store.deletePoison(victim, token);
    say(`delete ${victim}\n`);
  }
}
