import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import pg from "pg";
import {
  openPoisonStore,
  type PgPoolLike,
  type PgQueryConfig,
  PoisonConflictError,
  postgresDriver,
} from "../../src/index.js";
import { backendSkipReason, testDriver } from "../conformance/index.js";
import { conformanceHarness } from "../support/backends.js";
import { closingAlso, networkedChecks } from "../support/networked-checks.js";
import { postgresUnavailable, postgresUrl } from "../support/servers.js";
import { untilBlockedOnLock } from "../support/sql.js";

const url = postgresUrl;
const unavailable = postgresUnavailable;

await testDriver(conformanceHarness("postgres"));

networkedChecks({
  name: "postgres",
  skip: await backendSkipReason("postgres", unavailable),
  url,
  defaultPort: 5432,
  openCounting(proxied, counter) {
    const pool = new pg.Pool({ connectionString: proxied, max: 2 });
    pool.on("error", () => undefined);
    const counting: PgPoolLike = {
      async connect() {
        const client = await pool.connect();
        return {
          query(query: string | PgQueryConfig, values?: unknown[]) {
            // Not counted: the NOTIFY that wakes watches after a logged write. It is sent in the
            // background once the call is answered (coalesced: one in flight per driver), so
            // it is no round trip of the call; the timing check below still bounds the call.
            const text = typeof query === "string" ? query : query.text;
            if (!text.startsWith("SELECT pg_notify(")) counter.statements++;
            return typeof query === "string" ? client.query(query, values) : client.query(query);
          },
          release: (error?: Error | boolean) => client.release(error),
          on: (event: "error", listener: (error: Error) => void) => client.on(event, listener),
          off: (event: "error", listener: (error: Error) => void) => client.off(event, listener),
        };
      },
      end: () => pool.end(),
    };
    const store = openPoisonStore(postgresDriver({ pool: counting }));
    return closingAlso(store, () => pool.end());
  },
  openWithTables: (tables) => openPoisonStore(postgresDriver({ url, ...tables })),
  async dropTables({ table, auditTable }) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`DROP TABLE IF EXISTS "${table}", "${auditTable}"`);
    } finally {
      await client.end();
    }
  },
  openThrough(proxied, { timeoutMs, clientTimeoutMs }) {
    return openPoisonStore(
      postgresDriver({
        url: proxied,
        connectTimeoutMs: clientTimeoutMs,
        queryTimeoutMs: clientTimeoutMs,
      }),
      { timeoutMs },
    );
  },
});

/*
 * The single-key put answers a conflict from its snapshot. When the holder's row is committed
 * after that snapshot, neither arm of the statement sees it: the driver must ask again, not
 * report "absent" nor fail. Forced here: a transaction inserts the key and stays open, our
 * (audited) put starts and waits on the unique index, then the transaction commits.
 */
const raceSkip = await backendSkipReason("postgres", unavailable);
test(
  "postgres: a put racing a row committed after its snapshot asks again and names the holder",
  raceSkip ? { skip: raceSkip } : {},
  async () => {
    const suffix = randomUUID().replaceAll("-", "").slice(0, 12);
    const tables = { table: `poison_race_${suffix}`, auditTable: `poison_race_audit_${suffix}` };
    const store = openPoisonStore(postgresDriver({ url, ...tables }), { namespace: "/race/" });
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await store.tryPutPoison("probe", "probe"); // creates the tables (reads never do)
      await store.deletePoison("probe", "probe");
      await holder.query("BEGIN");
      await holder.query(
        `INSERT INTO "${tables.table}" (key, token, state, created_at, updated_at)
         VALUES ($1, 'holder', 'running', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`,
        [Buffer.from("/race/k", "utf8")],
      );
      const put = store.tryPutPoison("k", "ours", { audit: { actor: "test", reason: "race" } });
      const settled = put.then(
        () => null,
        (error: unknown) => error,
      );
      // Commit only once our statement has its snapshot and waits on the holder's insert.
      await untilBlockedOnLock(
        holder,
        tables.table,
        settled,
        "the put never waited on the holder's insert",
      );
      await holder.query("COMMIT");
      const error = await settled;
      assert.ok(error instanceof PoisonConflictError, `expected a conflict, got ${error}`);
      assert.equal(error.holder, "holder");
      assert.equal(await store.getPoison("k"), "holder");
      assert.deepEqual((await store.auditLog()).entries, [], "a put that wrote nothing is audited");
    } finally {
      await holder.query("ROLLBACK").catch(() => undefined);
      await holder.query(`DROP TABLE IF EXISTS "${tables.table}", "${tables.auditTable}"`);
      await holder.end();
      await store.close();
    }
  },
);
