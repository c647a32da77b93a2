/**
 * PostgreSQL with named prepared statements turned off (`?prepare=false`, for PgBouncer in
 * transaction mode before 1.21): the whole conformance suite, and what each mode sends.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import pg from "pg";
import { postgresConnection } from "../../src/drivers/postgres/connection.js";
import {
  InvalidArgumentError,
  openPoisonStore,
  type PgPoolLike,
  type PgQueryConfig,
  postgresDriver,
} from "../../src/index.js";
import { backendSkipReason, testDriver } from "../conformance/index.js";
import { postgresUnavailable, postgresUrl } from "../support/servers.js";

const unprepared = `${postgresUrl}${postgresUrl.includes("?") ? "&" : "?"}prepare=false`;

await testDriver({
  name: "postgres",
  durable: true,
  unavailable: postgresUnavailable,
  open: (options) => openPoisonStore(unprepared, options),
});

test("postgres: prepare=… is read by the driver, never passed to pg", () => {
  const off = postgresConnection("postgres://u@h/db?prepare=false&application_name=x", undefined);
  assert.equal(off.prepare, false);
  assert.equal(off.connectionString, "postgres://u@h/db?application_name=x");
  assert.equal(postgresConnection("postgres://u@h/db?prepare=1", undefined).prepare, true);
  assert.equal(postgresConnection("postgres://u@h/db", undefined).prepare, undefined);
  assert.throws(
    () => postgresConnection("postgres://u@h/db?prepare=maybe", undefined),
    InvalidArgumentError,
  );
  assert.throws(
    () => postgresDriver({ url: "postgres://u@h/db", prepare: "no" as unknown as boolean }),
    InvalidArgumentError,
  );
});

const skip = await backendSkipReason("postgres", postgresUnavailable);

/** A pool that records the statement names the driver sends (undefined: unnamed). */
function recordingPool(names: Array<string | undefined>): PgPoolLike & { close(): Promise<void> } {
  const pool = new pg.Pool({ connectionString: postgresUrl, max: 2 });
  pool.on("error", () => undefined);
  return {
    async connect() {
      const client = await pool.connect();
      return {
        query(query: string | PgQueryConfig, values?: unknown[]) {
          if (typeof query !== "string") names.push(query.name);
          return typeof query === "string" ? client.query(query, values) : client.query(query);
        },
        release: (error?: Error | boolean) => client.release(error),
        on: (event: "error", listener: (error: Error) => void) => client.on(event, listener),
        off: (event: "error", listener: (error: Error) => void) => client.off(event, listener),
      };
    },
    end: () => Promise.resolve(),
    close: () => pool.end(),
  };
}

for (const prepare of [true, false]) {
  test(
    `postgres: prepare ${prepare}: every core statement is ${prepare ? "named" : "unnamed"}`,
    skip ? { skip } : {},
    async () => {
      const names: Array<string | undefined> = [];
      const pool = recordingPool(names);
      const store = openPoisonStore(postgresDriver({ pool, prepare }), {
        namespace: `/prepare-${randomUUID()}/`,
      });
      try {
        await store.tryPutPoison("k", "t"); // creates the tables (setup is never prepared)
        names.length = 0;
        await store.getPoison("k");
        await assert.rejects(store.tryPutPoison("k", "other"), { code: "POISON_CONFLICT" });
        await store.inspectPoison("k");
        await store.listPoisons();
        await store.deletePoison("k", "t");
        await store.tryPutPoison("k2", "t");
        await store.deletePoison("k2", "t");
        assert.ok(names.length >= 7, `statements seen: ${names.length}`);
        if (prepare) {
          assert.ok(
            names.every((name) => typeof name === "string" && /^poison_[0-9a-f]{20}$/.test(name)),
            `names: ${JSON.stringify(names)}`,
          );
          // The same text has the same name: prepared once per connection, then reused.
          assert.ok(new Set(names).size < names.length);
        } else {
          assert.ok(
            names.every((name) => name === undefined),
            `names: ${JSON.stringify(names)}`,
          );
        }
      } finally {
        await store.close();
        await pool.close();
      }
    },
  );
}

test(
  "postgres: a prepared SELECT * survives a column added to its table by another process",
  skip ? { skip } : {},
  async () => {
    const suffix = randomUUID().replaceAll("-", "").slice(0, 12);
    const tables = { table: `poison_plan_${suffix}`, auditTable: `poison_plan_audit_${suffix}` };
    const store = openPoisonStore(
      postgresDriver({ url: postgresUrl, maxConnections: 1, ...tables }),
    );
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    try {
      await store.tryPutPoison("k", "t");
      assert.equal((await store.inspectPoison("k"))?.token, "t"); // prepared on the one connection
      await admin.query(`ALTER TABLE "${tables.table}" ADD COLUMN later_layout text`);
      assert.equal((await store.inspectPoison("k"))?.token, "t");
      assert.equal((await store.listPoisons()).records.length, 1);
    } finally {
      await store.close();
      await admin.query(`DROP TABLE IF EXISTS "${tables.table}", "${tables.auditTable}"`);
      await admin.end();
    }
  },
);
