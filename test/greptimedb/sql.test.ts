/**
 * The greptimedb layout on GreptimeDB's SQL table: what the conformance suite cannot show on
 * MySQL (where the layout never puts, so the keys here are written as GreptimeDB writes them),
 * and what only a table of another system can do to us (missing, of another shape, an older
 * `v BLOB`). Runs on PostgreSQL and MariaDB.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import { encodePoisonValue, poisonStorageKey } from "../../src/greptimedb/layout.js";
import {
  BackendConfigurationError,
  greptimeClusterState,
  HolderAliveError,
  InvalidArgumentError,
  openPoisonStore,
  PoisonConflictError,
  PoisonNotFoundError,
  type PoisonStoreClient,
  ReadOnlyStoreError,
} from "../../src/index.js";
import { backendSkipReason, rejectsWith } from "../conformance/index.js";
import {
  mysqlUnavailable,
  mysqlUrl,
  postgresUnavailable,
  postgresUrl,
} from "../support/servers.js";
import {
  type MetadataPlace,
  mysqlConnection,
  mysqlPlace,
  pgClient,
  postgresPlace,
} from "./places.js";

const actor = { actor: "ops", reason: "verified" };
const ids = Array.from({ length: 8 }, () => randomUUID());

function backendTests(
  name: "postgres" | "mysql",
  skip: string | null,
  makePlace: (settings: { storeKeyPrefix: string; blob?: boolean }) => Promise<MetadataPlace>,
) {
  describe(`greptimedb layout on ${name}'s table`, {
    skip: skip ?? false,
    concurrency: false,
  }, () => {
    const places: MetadataPlace[] = [];
    const stores: PoisonStoreClient[] = [];
    const place = async (settings: { storeKeyPrefix: string; blob?: boolean }) => {
      const made = await makePlace(settings);
      places.push(made);
      return made;
    };
    const open = (url: string, options: Record<string, unknown> = {}) => {
      const store = openPoisonStore(url, options);
      stores.push(store);
      return store;
    };
    after(async () => {
      await Promise.all(stores.map((store) => store.close()));
      for (const made of places) await made.remove();
    });

    /** Keys `table/1`…`table/n`, held by GreptimeDB procedures, as its try_put_poison writes them. */
    const greptimeKeys = async (made: MetadataPlace, n: number) => {
      await made.write(
        Array.from({ length: n }, (_, i) => ({
          key: poisonStorageKey(made.storeKeyPrefix, `table/${i + 1}`),
          value: Buffer.from(encodePoisonValue(ids[i] as string)),
        })),
      );
    };

    it("a missing table reads empty, and a write names the setting to fix", async () => {
      const url =
        name === "postgres"
          ? `${postgresUrl}?layout=greptimedb&table=no_such_table_${ids[0]?.slice(0, 8)}`
          : `${mysqlUrl}?layout=greptimedb&table=no_such_table_${ids[0]?.slice(0, 8)}`;
      const reader = open(url);
      assert.equal(await reader.exists(), false);
      assert.deepEqual(await reader.listPoisons(), { records: [], cursor: null });
      assert.equal(await reader.inspectPoison("table/1"), null);
      assert.deepEqual(await reader.auditLog(), { entries: [], cursor: null });
      assert.equal((await greptimeClusterState(reader)).metadataFound, false);
      // Read-only first: the refusal that applies whatever the table.
      await rejectsWith(reader.tryPutPoison("table/1", "t"), ReadOnlyStoreError);
      const writer = open(url, { allowWrite: true });
      assert.equal(await writer.forceDeletePoison("table/1", actor), null, "absent");
      if (name === "postgres") {
        const error = await rejectsWith(
          writer.tryPutPoison("table/1", "t"),
          BackendConfigurationError,
          {
            setting: "table",
          },
        );
        assert.match(error.message, /never creates it/);
      }
    });

    it("a table of another shape is not taken for GreptimeDB's", async () => {
      const table = `not_greptime_${ids[1]?.slice(0, 8)}`;
      if (name === "postgres") {
        const client = await pgClient();
        await client.query(`CREATE TABLE "${table}" (k text PRIMARY KEY, v text)`);
        await client.end();
      } else {
        const c = await mysqlConnection();
        await c.query(`CREATE TABLE \`${table}\` (k VARCHAR(100) PRIMARY KEY, v TEXT)`);
        await c.end();
      }
      try {
        const store = open(
          `${name === "postgres" ? postgresUrl : mysqlUrl}?layout=greptimedb&table=${table}`,
        );
        const error = await rejectsWith(store.listPoisons(), BackendConfigurationError, {
          setting: "table",
        });
        assert.match(error.message, /is not GreptimeDB's metadata table/);
      } finally {
        if (name === "postgres") {
          const client = await pgClient();
          await client.query(`DROP TABLE "${table}"`);
          await client.end();
        } else {
          const c = await mysqlConnection();
          await c.query(`DROP TABLE \`${table}\``);
          await c.end();
        }
      }
    });

    it("token-checked deletes, batches, expected tokens and live holders on GreptimeDB's keys", async () => {
      const made = await place({ storeKeyPrefix: "gt" });
      await greptimeKeys(made, 5);
      const store = open(made.url, { allowWrite: true });
      // Token-checked delete: GreptimeDB's delete_poison, by its procedure id.
      await rejectsWith(store.deletePoison("table/1", "not-the-holder"), PoisonConflictError, {
        holder: ids[0],
      });
      await store.deletePoison("table/1", ids[0] as string);
      assert.equal(await store.getPoison("table/1"), null);
      // A batch clear is all or none: one key held by another than expected refuses it whole.
      await rejectsWith(
        store.forceDeletePoisons(["table/2", "table/3"], { ...actor, expectedToken: ids[1] }),
        PoisonConflictError,
        { key: "table/3", holder: ids[2] },
      );
      assert.equal(await store.getPoison("table/2"), ids[1]);
      const removed = await store.forceDeletePoisons(["table/2", "table/3", "table/99"], actor);
      assert.deepEqual(
        removed.map((r) => [r.key, r.token]),
        [
          ["table/2", ids[1]],
          ["table/3", ids[2]],
        ],
      );
      // A holder with a fresh heartbeat (our record, via touch) is refused unless overridden.
      await store.touchPoisons(["table/4"], ids[3] as string, { heartbeatIntervalMs: 60_000 });
      await rejectsWith(store.forceDeletePoison("table/4", actor), HolderAliveError, {
        key: "table/4",
      });
      assert.equal(
        (await store.forceDeletePoison("table/4", { ...actor, evenIfAlive: true }))?.token,
        ids[3],
      );
      const audit = await store.auditLog();
      assert.deepEqual(
        audit.entries.map((e) => [e.key, e.action, e.evenIfAlive ?? false]),
        [
          ["table/4", "force-delete", true],
          ["table/3", "force-delete", false],
          ["table/2", "force-delete", false],
        ],
      );
      // Marks are token-checked and all or none.
      await rejectsWith(
        store.markPoisons(["table/5", "table/1"], ids[4] as string, new Error("x")),
        PoisonNotFoundError,
        {
          key: "table/1",
        },
      );
      await rejectsWith(
        store.markPoisoned("table/5", "other", new Error("x")),
        PoisonConflictError,
      );
      assert.equal((await store.inspectPoison("table/5"))?.error, undefined);
    });

    it("listing pages, filters and the audit log page through GreptimeDB's keys", async () => {
      const made = await place({ storeKeyPrefix: "" });
      await greptimeKeys(made, 7);
      const store = open(made.url, { allowWrite: true });
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await store.listPoisons({ limit: 3, ...(cursor ? { cursor } : {}) });
        seen.push(...page.records.map((r) => r.key));
        cursor = page.cursor;
      } while (cursor);
      assert.deepEqual(
        seen,
        Array.from({ length: 7 }, (_, i) => `table/${i + 1}`),
      );
      const byToken = await store.listPoisons({ token: ids[5] as string });
      assert.deepEqual(
        byToken.records.map((r) => r.key),
        ["table/6"],
      );
      const poisoned = await store.listPoisons({ state: "poisoned" });
      assert.equal(poisoned.records.length, 7);
      for (let i = 1; i <= 7; i++) {
        await store.forceDeletePoison(`table/${i}`, { ...actor, reason: `clear ${i}` });
      }
      const reasons: string[] = [];
      let auditCursor: string | null = null;
      do {
        const page = await store.auditLog({
          limit: 2,
          ...(auditCursor ? { cursor: auditCursor } : {}),
        });
        reasons.push(...page.entries.map((e) => e.reason));
        auditCursor = page.cursor;
      } while (auditCursor);
      assert.deepEqual(
        reasons,
        Array.from({ length: 7 }, (_, i) => `clear ${7 - i}`),
      );
      assert.deepEqual(
        (await store.auditLog({ key: "table/3" })).entries.map((e) => e.reason),
        ["clear 3"],
      );
      assert.deepEqual((await store.auditLog({ key: "table/8" })).entries, []);
    });

    if (name === "mysql") {
      it("never puts a poison key, even with allowWrite", async () => {
        const made = await place({ storeKeyPrefix: "" });
        const store = open(made.url, { allowWrite: true });
        const error = await rejectsWith(
          store.tryPutPoisons(["table/1", "table/2"], "t"),
          ReadOnlyStoreError,
          {
            operation: "put",
            byAllowWrite: false,
          },
        );
        assert.match(error.message, /REPEATABLE READ/);
        assert.deepEqual(await made.dump(), new Map());
      });

      it("an older table's v BLOB holds the largest record and audit entry the layout writes", async () => {
        // No put on MySQL, so our values are records of marks and the audit entries holding them:
        // an error is clipped to 4 KiB of message and 16 KiB of stack, far below BLOB's 64 KiB.
        // A server in a non-strict sql_mode would truncate silently: read every byte back.
        const made = await place({ storeKeyPrefix: "", blob: true });
        await greptimeKeys(made, 1);
        const store = open(made.url, { allowWrite: true });
        const huge = new Error("m".repeat(10_000));
        huge.stack = "s".repeat(40_000);
        const marked = await store.markPoisoned("table/1", ids[0] as string, huge);
        assert.ok((marked.error?.stack?.length ?? 0) > 16_000);
        assert.deepEqual(await store.inspectPoison("table/1"), marked);
        await store.forceDeletePoison("table/1", actor);
        const [entry] = (await store.auditLog()).entries;
        assert.deepEqual(entry?.record, marked);
      });
    } else {
      it("puts write GreptimeDB's exact bytes and our record beside them", async () => {
        const made = await place({ storeKeyPrefix: "gt" });
        const store = open(made.url, { allowWrite: true });
        await store.tryPutPoisons(["table/1", "table/2"], "maint-1", { operation: "maintenance" });
        const dump = await made.dump();
        assert.equal(
          dump.get("gt/__procedure_poison/table/1"),
          Buffer.from('{"token":"maint-1"}').toString("hex"),
        );
        assert.deepEqual([...dump.keys()].sort(), [
          "gt/__poison_store/record/gt/__procedure_poison/table/1",
          "gt/__poison_store/record/gt/__procedure_poison/table/2",
          "gt/__procedure_poison/table/1",
          "gt/__procedure_poison/table/2",
        ]);
        await rejectsWith(
          store.tryPutPoisons(["table/3", "table/2"], "other"),
          PoisonConflictError,
          {
            key: "table/2",
          },
        );
        assert.equal(await store.getPoison("table/3"), null, "all or none");
        await store.deletePoisons(["table/1", "table/2"], "maint-1");
        assert.deepEqual(await made.dump(), new Map());
      });
    }

    it("options are refused before connecting", () => {
      assert.throws(
        () =>
          openPoisonStore(
            `${name === "postgres" ? postgresUrl : mysqlUrl}?layout=greptimedb&table=`,
          ),
        InvalidArgumentError,
      );
    });
  });
}

backendTests("postgres", await backendSkipReason("postgres", postgresUnavailable), (settings) =>
  postgresPlace({ ...settings, schema: true }),
);
backendTests("mysql", await backendSkipReason("mysql", mysqlUnavailable), (settings) =>
  mysqlPlace({ ...settings, schema: false }),
);
