/**
 * The single-key delete-if-token (src/drivers/postgres.ts, `remove`) answers from its snapshot
 * when it deleted nothing. Forced here: a transaction deletes (and re-puts) the key and stays
 * open, our delete starts and waits on its row lock, then the transaction commits. Our delete
 * must then answer "absent" (ok, nothing removed), never a conflict naming our own token, nor
 * an error, and must not remove the row put meanwhile.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import pg from "pg";
import { openPoisonStore, PoisonConflictError, postgresDriver } from "../../src/index.js";
import { backendSkipReason } from "../conformance/index.js";
import { postgresUnavailable, postgresUrl } from "../support/servers.js";
import { untilBlockedOnLock } from "../support/sql.js";

const skip = await backendSkipReason("postgres", postgresUnavailable);

for (const reput of [false, true]) {
  test(
    `postgres: a delete racing a concurrent ${reput ? "delete and re-put by another token" : "delete"} answers absent`,
    skip ? { skip } : {},
    async () => {
      const id = randomUUID().replaceAll("-", "").slice(0, 12);
      const tables = {
        table: `poison_drace_${id}`,
        auditTable: `poison_drace_audit_${id}`,
        changesTable: `poison_drace_changes_${id}`,
      };
      const store = openPoisonStore(postgresDriver({ url: postgresUrl, ...tables }), {
        namespace: "/race/",
      });
      const holder = new pg.Client({ connectionString: postgresUrl });
      await holder.connect();
      try {
        await store.tryPutPoison("k", "ours");
        await holder.query("BEGIN");
        await holder.query(`DELETE FROM "${tables.table}" WHERE key = $1`, [
          Buffer.from("/race/k"),
        ]);
        if (reput) {
          await holder.query(
            `INSERT INTO "${tables.table}" (key, token, state, created_at, updated_at)
             VALUES ($1, 'other', 'running', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`,
            [Buffer.from("/race/k")],
          );
        }
        const settled = store.deletePoison("k", "ours").then(
          () => null,
          (error: unknown) => error,
        );
        await untilBlockedOnLock(
          holder,
          tables.table,
          settled,
          "the delete never waited on the holder's row lock",
        );
        await holder.query("COMMIT");
        assert.equal(await settled, null, "the delete answered ok (the key was gone)");
        assert.equal(await store.getPoison("k"), reput ? "other" : null);
        // And a plain conflict still names the holder.
        if (reput) {
          const error = await store.deletePoison("k", "ours").catch((e: unknown) => e);
          assert.ok(error instanceof PoisonConflictError);
          assert.equal(error.holder, "other");
        }
      } finally {
        await holder.query("ROLLBACK").catch(() => undefined);
        await holder.query(
          `DROP TABLE IF EXISTS "${tables.table}", "${tables.auditTable}", "${tables.changesTable}"`,
        );
        await holder.end();
        await store.close();
      }
    },
  );
}
