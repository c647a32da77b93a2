import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer } from "node:net";
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

/*
 * A store over the caller's pool has no URL of its own. Its writes must not open a NOTIFY
 * connection from libpq's defaults (PGHOST, PGPORT…), which may name another server: here
 * those defaults point at a listener of ours that counts who connects.
 */
test(
  "postgres: a store over the caller's pool opens no connection of its own when it writes",
  raceSkip ? { skip: raceSkip } : {},
  async () => {
    let connections = 0;
    const stranger = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => stranger.listen(0, "127.0.0.1", resolve));
    const address = stranger.address();
    assert.ok(address && typeof address === "object");
    const saved = { PGHOST: process.env.PGHOST, PGPORT: process.env.PGPORT };
    process.env.PGHOST = "127.0.0.1";
    process.env.PGPORT = String(address.port);
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    const store = openPoisonStore(postgresDriver({ pool }), { namespace: "/caller-pool/" });
    try {
      const key = randomUUID();
      await store.tryPutPoison(key, "t");
      await store.deletePoison(key, "t");
      await store.tryPutPoisons([`${key}/a`, `${key}/b`], "t");
      await store.deletePoisons([`${key}/a`, `${key}/b`], "t");
      // The NOTIFY went out in the background after each answer: give it time to try.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(connections, 0, "the store connected to libpq's default server");
    } finally {
      await store.close();
      await pool.end();
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      stranger.close();
    }
  },
);
