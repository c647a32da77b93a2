/**
 * The main job in one minute, on the embedded SQLite default: an operation poisons its resource,
 * fails half-way, the next operation is refused, an operator repairs and clears it, and the
 * operation runs again.  Run it with `npm run example`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openPoisonStore, PoisonConflictError } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "poison-example-"));
const store = openPoisonStore(`sqlite:${join(dir, "poison.db")}`);
const say = (line: string) => process.stdout.write(`${line}\n`);

try {
  const resource = "table/1024";

  say(`1. procedure-A starts "alter-table" on ${resource}: it writes the poison key first.`);
  await store.tryPutPoison(resource, "procedure-A", {
    operation: "alter-table",
    owner: "node-1:4242",
  });

  say("2. It alters shards 1..3, then shard 4 fails: the table may be inconsistent.");
  await store.markPoisoned(
    resource,
    "procedure-A",
    new Error("shard 4: connection reset during ALTER"),
  );
  say("   The key stays. It never expires by itself.\n");

  say(`3. procedure-B wants to run on ${resource} and is refused:`);
  try {
    await store.tryPutPoison(resource, "procedure-B", { operation: "drop-column" });
  } catch (error) {
    if (!(error instanceof PoisonConflictError)) throw error;
    say(`   PoisonConflictError: held by ${error.holder}`);
  }

  const record = await store.inspectPoison(resource);
  say("\n4. An operator inspects it:");
  say(
    `   key=${record?.key} state=${record?.state} token=${record?.token} operation=${record?.operation}`,
  );
  say(`   error=${record?.error?.name}: ${record?.error?.message}`);

  say("\n5. The operator repairs shard 4 by hand, then clears the key (audited):");
  await store.forceDeletePoison(resource, {
    actor: "alice",
    reason: "re-ran ALTER on shard 4, verified schema",
  });
  const [entry] = (await store.auditLog({ key: resource })).entries;
  say(`   audit: ${entry?.action} by ${entry?.actor}: "${entry?.reason}"`);

  say(`\n6. procedure-B runs now, and deletes its key when done:`);
  await store.tryPutPoison(resource, "procedure-B", { operation: "drop-column" });
  await store.deletePoison(resource, "procedure-B");
  say(`   ${resource} is ${(await store.getPoison(resource)) === null ? "free" : "still held"}.`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
