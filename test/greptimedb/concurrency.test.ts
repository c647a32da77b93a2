/**
 * Our clears (and, on PostgreSQL, our puts) against GreptimeDB's own poison transactions, run
 * concurrently on the real PostgreSQL and MariaDB (test/greptimedb/greptime-sim.ts replays its
 * statements): first each interleaving that matters, forced step by step, then a randomized
 * workload checked for lost writes. "Lost": a token that was put and then disappeared without a
 * remover that answers for it (its holder's own delete, our clear whose audit entry names it, our
 * token-checked delete).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { encodePoisonValue, poisonStorageKey } from "../../src/greptimedb/layout.js";
import { openPoisonStore, PoisonConflictError, type PoisonStoreClient } from "../../src/index.js";
import { backendSkipReason, rejectsWith } from "../conformance/index.js";
import { mysqlUnavailable, postgresUnavailable } from "../support/servers.js";
import {
  deletePoison,
  type GreptimeBackend,
  mysqlGreptime,
  postgresGreptime,
  simStats,
  tryPutPoison,
} from "./greptime-sim.js";
import {
  type MetadataPlace,
  mysqlConnection,
  mysqlPlace,
  pgClient,
  postgresPlace,
} from "./places.js";

const actor = { actor: "ops", reason: "runbook: repaired and verified" };
const token = () => randomUUID();
const value = (t: string) => Buffer.from(encodePoisonValue(t));

/** The table's identifier inside a place's URL, for the simulator (same table as the store). */
function tableOf(place: MetadataPlace): string {
  const url = new URL(place.url);
  const table = url.searchParams.get("table") ?? "greptime_metakv";
  if (place.backend === "postgres") {
    const schema = url.searchParams.get("schema");
    return schema ? `"${schema}"."${table}"` : `"${table}"`;
  }
  const database = url.searchParams.get("schema") ?? url.pathname.slice(1);
  return `\`${database}\`.\`${table}\``;
}

/** Resolves once some session waits for a row lock on `table` (our statement is blocked). */
async function waitForLockWait(place: MetadataPlace, table: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    let waiting = 0;
    if (place.backend === "postgres") {
      const client = await pgClient();
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND query LIKE $1`,
        [`%${table}%`],
      );
      await client.end();
      waiting = rows[0]?.n ?? 0;
    } else {
      const c = await mysqlConnection();
      const [rows] = await c.query(
        "SELECT count(*) AS n FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE ?",
        [`%${table.split(".")[0]}%`], // the run's database, as the query names it
      );
      await c.end();
      waiting = Number((rows as { n: number | string }[])[0]?.n ?? 0);
    }
    if (waiting > 0) return;
    // InnoDB refreshes information_schema.innodb_trx only when it was not read for 100 ms.
    await sleep(place.backend === "mysql" ? 150 : 10);
  }
  throw new Error(`our statement never waited for the lock on ${table}`);
}

interface Bench {
  place: MetadataPlace;
  table: string;
  greptime: GreptimeBackend;
  store: PoisonStoreClient;
  /** The stored key of a user key. */
  stored(key: string): string;
  raw(key: string): Promise<Buffer | null>;
  put(key: string, t: string): Promise<void>;
}

function bench(
  name: string,
  skip: string | null,
  make: () => Promise<MetadataPlace>,
  greptimeOf: (place: MetadataPlace, table: string) => GreptimeBackend,
  tests: (get: () => Bench) => void,
) {
  describe(name, { skip: skip ?? false, concurrency: false }, () => {
    let current: Bench | null = null;
    before(async () => {
      const place = await make();
      const table = tableOf(place);
      const stored = (key: string) => poisonStorageKey(place.storeKeyPrefix, key);
      current = {
        place,
        table,
        greptime: greptimeOf(place, table),
        store: openPoisonStore(place.url, { allowWrite: true }),
        stored,
        async raw(key) {
          const dump = await place.dump();
          const hex = dump.get(stored(key));
          return hex === undefined ? null : Buffer.from(hex, "hex");
        },
        put: (key, t) => place.write([{ key: stored(key), value: value(t) }]),
      };
    });
    after(async () => {
      await current?.store.close();
      await current?.place.remove();
    });
    tests(() => current as Bench);
  });
}

/**
 * Runs GreptimeDB's session steps by hand, as far as its compare of `key` (after writing
 * `holder`'s key, when given, as GreptimeDB writes it): the session, to do whatever the test
 * does next, and what the compare read.
 */
async function sessionAfterCompare(b: Bench, key: string, holder?: string) {
  if (holder !== undefined) await b.put(key, holder);
  const s = await b.greptime.session();
  await s.begin();
  const compared = await s.compare(Buffer.from(b.stored(key)));
  return { s, compared };
}

/** `key` is gone, and the audit log shows one clear of it: of `holder`'s record. */
async function assertClearedOnce(b: Bench, key: string, holder: string): Promise<void> {
  assert.equal(await b.raw(key), null);
  assert.deepEqual(
    (await b.store.auditLog({ key })).entries.map((e) => e.record?.token),
    [holder],
  );
}

// ---- forced interleavings ---------------------------------------------------------------------

bench(
  "PostgreSQL: GreptimeDB's SERIALIZABLE transactions against our clears and puts",
  await backendSkipReason("postgres", postgresUnavailable),
  () => postgresPlace({ storeKeyPrefix: "gt", schema: true }),
  (_place, table) => postgresGreptime(() => pgClient(), table),
  (get) => {
    it("its delete_poison compared, we cleared: its DELETE fails with 40001, its retry finds the key absent", async () => {
      const b = get();
      const [key, t1] = ["table/1", token()];
      const { s, compared } = await sessionAfterCompare(b, key, t1);
      assert.deepEqual(compared, value(t1));
      assert.equal(
        (await b.store.forceDeletePoison(key, { ...actor, expectedToken: t1 }))?.token,
        t1,
      );
      await assert.rejects(s.delete(Buffer.from(b.stored(key))), { code: "40001" });
      await s.rollback();
      await s.close();
      assert.equal(await deletePoison(b.greptime, b.stored(key), t1), "absent");
      await assertClearedOnce(b, key, t1);
    });

    it("its delete_poison holds the row: our clear waits, then finds the key absent and writes nothing", async () => {
      const b = get();
      const [key, t1] = ["table/2", token()];
      const { s } = await sessionAfterCompare(b, key, t1);
      assert.equal(await s.delete(Buffer.from(b.stored(key))), 1);
      const clear = b.store.forceDeletePoison(key, { ...actor, expectedToken: t1 });
      await waitForLockWait(b.place, b.table);
      await s.commit();
      await s.close();
      assert.equal(await clear, null);
      assert.deepEqual((await b.store.auditLog({ key })).entries, []);
    });

    it("its try_put_poison saw the key absent, our put committed: its upsert fails with 40001, its retry answers conflict", async () => {
      const b = get();
      const [key, t2] = ["table/3", token()];
      const { s, compared } = await sessionAfterCompare(b, key);
      assert.equal(compared, null);
      await b.store.tryPutPoison(key, "maint-3");
      await assert.rejects(s.put(Buffer.from(b.stored(key)), value(t2)), { code: "40001" });
      await s.rollback();
      await s.close();
      assert.equal(await tryPutPoison(b.greptime, b.stored(key), t2), "conflict");
      assert.deepEqual(await b.raw(key), value("maint-3"));
      await b.store.deletePoison(key, "maint-3");
    });

    it("its upsert holds the new row: our put waits and names it as the holder", async () => {
      const b = get();
      const [key, t2] = ["table/4", token()];
      const { s } = await sessionAfterCompare(b, key);
      await s.put(Buffer.from(b.stored(key)), value(t2));
      // Awaited from the start: the refusal may arrive while the session is still closing.
      const refused = rejectsWith(b.store.tryPutPoison(key, "maint-4"), PoisonConflictError, {
        holder: t2,
      });
      await waitForLockWait(b.place, b.table);
      await s.commit();
      await s.close();
      await refused;
      assert.deepEqual(await b.raw(key), value(t2));
    });

    it("a holder's stale delete_poison after our clear and a new put: 40001, the new holder's key stays", async () => {
      const b = get();
      const [key, t1, t2] = ["table/5", token(), token()];
      const { s } = await sessionAfterCompare(b, key, t1);
      await b.store.forceDeletePoison(key, { ...actor, expectedToken: t1 });
      assert.equal(await tryPutPoison(b.greptime, b.stored(key), t2), "put");
      await assert.rejects(s.delete(Buffer.from(b.stored(key))), { code: "40001" });
      await s.rollback();
      await s.close();
      assert.equal(await deletePoison(b.greptime, b.stored(key), t1), "conflict");
      assert.deepEqual(await b.raw(key), value(t2));
    });

    it("randomized: GreptimeDB's procedures, our clears of any holder and our puts lose no write", async () => {
      await workload(get(), { clearLive: true, ourPuts: true });
    });
  },
);

let mysqlIsolation: "SERIALIZABLE" | "REPEATABLE READ" | "random" = "random";
bench(
  "MariaDB: GreptimeDB's transactions at SERIALIZABLE and REPEATABLE READ against our clears",
  await backendSkipReason("mysql", mysqlUnavailable),
  () => mysqlPlace({ storeKeyPrefix: "gt", schema: true }),
  (_place, table) =>
    mysqlGreptime(
      () => mysqlConnection(),
      table,
      () =>
        mysqlIsolation === "random"
          ? Math.random() < 0.5
            ? "SERIALIZABLE"
            : "REPEATABLE READ"
          : mysqlIsolation,
    ),
  (get) => {
    it("REPEATABLE READ: its delete_poison compared, we cleared: its DELETE removes nothing", async () => {
      const b = get();
      mysqlIsolation = "REPEATABLE READ";
      const [key, t1] = ["table/1", token()];
      const { s, compared } = await sessionAfterCompare(b, key, t1);
      assert.deepEqual(compared, value(t1));
      assert.equal(
        (await b.store.forceDeletePoison(key, { ...actor, expectedToken: t1 }))?.token,
        t1,
      );
      assert.equal(await s.delete(Buffer.from(b.stored(key))), 0);
      await s.commit();
      await s.close();
      await assertClearedOnce(b, key, t1);
    });

    it("SERIALIZABLE: its compare holds a shared lock; its delete and our clear remove the key once", async () => {
      const b = get();
      mysqlIsolation = "SERIALIZABLE";
      const [key, t1] = ["table/2", token()];
      const { s } = await sessionAfterCompare(b, key, t1);
      const clear = b.store.forceDeletePoison(key, { ...actor, expectedToken: t1 });
      await waitForLockWait(b.place, b.table);
      // Its DELETE now needs the lock our clear waits for: InnoDB lets one of the two go first
      // (or rolls one back as a deadlock victim, which then retries).
      let theirs: "deleted" | "victim" = "victim";
      try {
        if ((await s.delete(Buffer.from(b.stored(key)))) === 1) theirs = "deleted";
        await s.commit();
      } catch (error) {
        assert.equal((error as { errno?: number }).errno, 1213);
        await s.rollback();
      }
      await s.close();
      const ours = await clear;
      if (theirs === "victim") {
        assert.equal(await deletePoison(b.greptime, b.stored(key), t1), "absent");
        assert.equal(ours?.token, t1);
      } else {
        assert.equal(ours, null, "removed once");
      }
      assert.equal(await b.raw(key), null);
      assert.equal((await b.store.auditLog({ key })).entries.length, ours ? 1 : 0);
    });

    it("REPEATABLE READ: its try_put_poison compared before our clear answers the conflict it saw; after it, it puts", async () => {
      const b = get();
      mysqlIsolation = "REPEATABLE READ";
      const [key, t1, t2] = ["table/3", token(), token()];
      const { s, compared } = await sessionAfterCompare(b, key, t1);
      assert.deepEqual(compared, value(t1));
      await b.store.forceDeletePoison(key, { ...actor, expectedToken: t1 });
      assert.deepEqual(await s.get(Buffer.from(b.stored(key))), value(t1), "its snapshot");
      await s.commit();
      await s.close();
      assert.equal(await tryPutPoison(b.greptime, b.stored(key), t2), "put");
      assert.deepEqual(await b.raw(key), value(t2));
    });

    it("(why the layout never puts on MySQL) at REPEATABLE READ its upsert overwrites a key committed after its compare", async () => {
      const b = get();
      mysqlIsolation = "REPEATABLE READ";
      const [key, t2] = ["table/4", token()];
      const { s, compared } = await sessionAfterCompare(b, key);
      assert.equal(compared, null);
      await b.put(key, "another-client"); // what a put of ours would be: committed
      await s.put(Buffer.from(b.stored(key)), value(t2));
      await s.commit();
      await s.close();
      assert.deepEqual(await b.raw(key), value(t2), "the other client's key is gone");
    });

    it("(why the runbook says wait for a live holder) at REPEATABLE READ a holder's stale delete_poison removes the next holder's key", async () => {
      const b = get();
      mysqlIsolation = "REPEATABLE READ";
      const [key, t1, t2] = ["table/5", token(), token()];
      const { s } = await sessionAfterCompare(b, key, t1);
      await b.store.forceDeletePoison(key, { ...actor, expectedToken: t1 });
      assert.equal(await tryPutPoison(b.greptime, b.stored(key), t2), "put");
      assert.equal(await s.delete(Buffer.from(b.stored(key))), 1, "t2's row");
      await s.commit();
      await s.close();
      assert.equal(await b.raw(key), null);
    });

    it("randomized, isolation at random: GreptimeDB's procedures and our clears of ended holders lose no write", async () => {
      mysqlIsolation = "random";
      await workload(get(), { clearLive: false, ourPuts: false });
    });
  },
);

// ---- the randomized workload ------------------------------------------------------------------

const KEYS = ["table/100", "table/101", "table/102"];
const DURATION_MS = 4000;

/**
 * One GreptimeDB lane per key (its procedures on one table run one at a time: GreptimeDB locks
 * the table for the procedure): each procedure puts the key, then either deletes it (it
 * succeeded) or abandons it (it ended poisoned). Two clearers clear what they see, expecting the
 * token they read: every holder (`clearLive`), or only abandoned ones (the runbook's rule, which
 * is the only safe one on MySQL at REPEATABLE READ, see above). With `ourPuts`, a lane of ours
 * puts and deletes maintenance tokens on the same keys.
 */
async function workload(b: Bench, options: { clearLive: boolean; ourPuts: boolean }) {
  const put = new Map<string, string>(); // token → key
  const removedBy = new Map<string, string[]>();
  const remove = (t: string, by: string) => removedBy.set(t, [...(removedBy.get(t) ?? []), by]);
  const abandoned = new Set<string>();
  const stats = {
    greptimePuts: 0,
    greptimeConflicts: 0,
    failed: 0,
    gone: 0,
    clears: 0,
    refused: 0,
    ourPuts: 0,
  };
  const deadline = Date.now() + DURATION_MS;
  const retriesBefore = simStats.retries;
  const pause = (ms: number) => sleep(Math.random() * ms);

  const greptimeLane = async (key: string) => {
    while (Date.now() < deadline) {
      const t = token();
      const result = await tryPutPoison(b.greptime, b.stored(key), t);
      if (result === "failed") stats.failed++;
      if (result !== "put") {
        if (result === "conflict") stats.greptimeConflicts++;
        await pause(5);
        continue;
      }
      stats.greptimePuts++;
      put.set(t, key);
      await pause(3);
      if (Math.random() < 0.4) {
        abandoned.add(t);
        continue;
      }
      for (let attempt = 0; attempt < 5; attempt++) {
        const deleted = await deletePoison(b.greptime, b.stored(key), t);
        if (deleted === "deleted") remove(t, "its own delete_poison");
        if (deleted === "gone") stats.gone++;
        if (deleted !== "failed") break;
        stats.failed++;
      }
    }
  };

  const clearer = async () => {
    while (Date.now() < deadline) {
      const key = KEYS[Math.floor(Math.random() * KEYS.length)] as string;
      const holder = await b.store.getPoison(key);
      if (holder && (options.clearLive || abandoned.has(holder))) {
        try {
          const removed = await b.store.forceDeletePoison(key, { ...actor, expectedToken: holder });
          if (removed) stats.clears++;
        } catch (error) {
          if (!(error instanceof PoisonConflictError)) throw error;
          stats.refused++;
        }
      }
      await pause(3);
    }
  };

  const ourLane = async () => {
    while (Date.now() < deadline) {
      const key = KEYS[Math.floor(Math.random() * KEYS.length)] as string;
      const t = `maint-${token()}`;
      try {
        await b.store.tryPutPoison(key, t);
      } catch (error) {
        if (!(error instanceof PoisonConflictError)) throw error;
        await pause(5);
        continue;
      }
      stats.ourPuts++;
      put.set(t, key);
      await pause(5);
      try {
        const { removed } = await b.store.deletePoisons([key], t);
        if (removed.includes(key)) remove(t, "our deletePoison");
      } catch (error) {
        if (!(error instanceof PoisonConflictError)) throw error;
      }
    }
  };

  await Promise.all([
    ...KEYS.map(greptimeLane),
    clearer(),
    clearer(),
    ...(options.ourPuts ? [ourLane()] : []),
  ]);

  // Every clear, from the audit log: it removed exactly the token it expected.
  let cursor: string | null = null;
  do {
    const page = await b.store.auditLog({ limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const entry of page.entries) {
      if (!KEYS.includes(entry.key)) continue; // the forced interleavings' keys
      assert.equal(entry.action, "force-delete");
      assert.equal(entry.record?.token, entry.token, "a clear removes only the token it compared");
      remove(entry.record?.token as string, `our clear ${entry.id}`);
    }
    cursor = page.cursor;
  } while (cursor);

  const dump = await b.place.dump();
  for (const [t, key] of put) {
    const present = dump.get(b.stored(key)) === value(t).toString("hex");
    const removers = removedBy.get(t) ?? [];
    assert.equal(
      removers.length + (present ? 1 : 0),
      1,
      `token ${t} on ${key}: ${present ? "present, " : ""}removed by [${removers.join(", ")}]`,
    );
  }
  for (const t of removedBy.keys()) assert.ok(put.has(t), `removed a token never put: ${t}`);
  process.stderr.write(
    `${b.place.backend} workload: ${JSON.stringify({ ...stats, greptimeRetries: simStats.retries - retriesBefore })}\n`,
  );
  assert.ok(
    stats.greptimePuts > 20 && stats.clears > 5,
    `too little happened: ${JSON.stringify(stats)}`,
  );
}
