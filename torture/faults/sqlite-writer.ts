/**
 * The writer process of the SQLite kill test: puts keys one after another (and deletes some of
 * its earlier ones) on the file given, printing each acknowledged step to stdout. Writes to a
 * pipe are synchronous on Linux, so a printed line is in the parent's hands before the next call
 * starts. The parent SIGKILLs this process at a random moment.
 *
 * Before each call it prints `try VERB KEY…`, after it `VERB KEY`: a `try` line without its
 * acknowledgement names the call in flight when the kill came (either outcome is allowed).
 *
 * Usage: node --import tsx torture/faults/sqlite-writer.ts PATH RUN
 */
import { openPoisonStore } from "../../src/index.js";

const [path, run] = process.argv.slice(2);
if (!path || !run) throw new Error("usage: sqlite-writer.ts PATH RUN");

const store = openPoisonStore(`sqlite:${path}`, { namespace: "/kill/" });
const token = `writer-${run}`;
process.stdout.write("ready\n");
for (let n = 0; ; n++) {
  const key = `run-${run}/key-${n}`;
  if (n % 7 === 3) {
    // An all-or-none batch: both keys or neither.
    process.stdout.write(`try put ${key} ${key}/batch\n`);
    await store.tryPutPoisons([key, `${key}/batch`], token, { operation: "kill-test" });
    process.stdout.write(`put ${key}\nput ${key}/batch\n`);
  } else {
    process.stdout.write(`try put ${key}\n`);
    await store.tryPutPoison(key, token, { operation: "kill-test", data: { n } });
    process.stdout.write(`put ${key}\n`);
  }
  if (n % 5 === 4) {
    const victim = `run-${run}/key-${n - 2}`;
    process.stdout.write(`try delete ${victim}\n`);
    await store.deletePoison(victim, token);
    process.stdout.write(`delete ${victim}\n`);
  }
}
