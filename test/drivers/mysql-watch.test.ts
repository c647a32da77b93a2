/**
 * The MySQL/MariaDB native change feed (src/drivers/mysql/watch.ts) beyond the conformance
 * suite: many concurrent writers (every change once per key, in order), ids that become visible
 * out of order (a transaction committed after later ones; one rolled back), resuming from a
 * position and `resync` after the log was trimmed past it, bounded trimming, and the idle cost
 * and delay of the feed. The restart of a private server is in mysql-watch-restart.test.ts.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import mysql from "mysql2/promise";
import type { DriverWatchEvent } from "../../src/core/watch.js";
import {
  type ChangeEvent,
  mysqlDriver,
  openPoisonStore,
  PoisonConflictError,
  type PoisonStoreClient,
} from "../../src/index.js";
import { backendSkipReason } from "../conformance/index.js";
import { mysqlUnavailable, mysqlUrl } from "../support/servers.js";
import { countingMysqlPool, dropMysqlTables } from "../support/sql.js";

const skip = await backendSkipReason("mysql", mysqlUnavailable);
const FAST_MS = 50;
/** The store's default namespace, for rows written by hand. */
const NAMESPACE = "/__procedure_poison/";

/** A table of its own per test (a small change log), dropped at the end. */
const tables: string[] = [];
const freshTable = () => {
  const table = `poison_watch_${randomUUID().slice(0, 8)}`;
  tables.push(table);
  return { table, auditTable: `${table}_audit` };
};

after(async () => {
  if (skip !== null) return;
  for (const table of tables) await dropMysqlTables(mysqlUrl, table);
});

/** Reads a store's watch in the background. */
class Collector {
  readonly events: ChangeEvent[] = [];
  readonly arrivals: number[] = [];
  readonly controller = new AbortController();
  readonly done: Promise<void>;
  readonly ready: Promise<boolean>;
  failure: unknown = null;

  constructor(store: PoisonStoreClient, prefix: string) {
    const stream = store.watch({ prefix, signal: this.controller.signal });
    assert.equal(stream.source, "native");
    this.ready = stream.ready;
    this.done = (async () => {
      try {
        for await (const event of stream) {
          this.events.push(event);
          this.arrivals.push(performance.now());
        }
      } catch (error) {
        this.failure = error;
      }
    })();
  }

  of(key: string): string[] {
    return this.events.filter((e) => e.key === key).map((e) => e.type);
  }

  async until(condition: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.done;
    assert.equal(this.failure, null);
  }
}

const open = (tables: { table: string; auditTable: string }, extra = {}) =>
  openPoisonStore(mysqlDriver({ url: mysqlUrl, watchIntervalMs: FAST_MS, ...tables, ...extra }));

describe("mysql change log options", () => {
  it("changeLog: false or ?change-log=off: no native feed (the runtime polls)", () => {
    assert.equal(mysqlDriver({ url: mysqlUrl, changeLog: false }).watch, undefined);
    assert.equal(mysqlDriver({ url: `${mysqlUrl}?change-log=off` }).watch, undefined);
    assert.equal(typeof mysqlDriver({ url: `${mysqlUrl}?change-log=on` }).watch, "function");
    assert.equal(typeof mysqlDriver({ url: mysqlUrl }).watch, "function");
    assert.throws(() => mysqlDriver({ url: `${mysqlUrl}?change-log=maybe` }), {
      code: "INVALID_ARGUMENT",
    });
    assert.throws(() => mysqlDriver({ url: mysqlUrl, changeLogRetention: 0 }), {
      code: "INVALID_ARGUMENT",
    });
  });
});

describe("mysql native change feed", { skip: skip ?? false }, () => {
  it("many concurrent writers: every change seen exactly once per key, in order", async () => {
    const names = freshTable();
    const store = open(names);
    const prefix = `${randomUUID()}/`;
    try {
      // Create the tables before watching (a watch creates nothing).
      await store.tryPutPoison(`${prefix}hot`, "hot-holder");
      const log = new Collector(store, prefix);
      assert.equal(await log.ready, true);
      const writers = 16;
      const rounds = 6;
      const expected = new Map<string, string[]>();
      const failedBatchKeys: string[] = [];
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          for (let round = 0; round < rounds; round++) {
            const key = `${prefix}w${w}/k${round % 3}`;
            const token = `t-${w}-${round}`;
            await store.tryPutPoison(key, token);
            await store.touchPoisons([key], token);
            await store.markPoisoned(key, token, new Error(`round ${round}`));
            if (round % 2 === 0) {
              await store.deletePoison(key, token);
              expected.set(key, [
                ...(expected.get(key) ?? []),
                "put",
                "touched",
                "poisoned",
                "deleted",
              ]);
            } else {
              await store.forceDeletePoison(key, { actor: "test", reason: "round" });
              expected.set(key, [
                ...(expected.get(key) ?? []),
                "put",
                "touched",
                "poisoned",
                "force-deleted",
              ]);
            }
            // A batch that conflicts on the hot key rolls back: its log ids are burned (gaps).
            const doomed = `${prefix}w${w}/doomed${round}`;
            failedBatchKeys.push(doomed);
            await assert.rejects(
              store.tryPutPoisons([doomed, `${prefix}hot`], token),
              PoisonConflictError,
            );
          }
        }),
      );
      const total = [...expected.values()].reduce((n, list) => n + list.length, 0);
      await log.until(
        () => log.events.filter((e) => e.key !== `${prefix}hot`).length >= total,
        30_000,
        `all ${total} changes`,
      );
      // Let a late duplicate show up if there were one.
      await new Promise((resolve) => setTimeout(resolve, 4 * FAST_MS));
      for (const [key, types] of expected) {
        assert.deepEqual(log.of(key), types, `changes of ${key}`);
      }
      for (const doomed of failedBatchKeys) assert.deepEqual(log.of(doomed), []);
      assert.ok(!log.events.some((e) => e.type === "resync"));
      await log.stop();
    } finally {
      await store.close();
    }
  });

  it("a transaction that commits after later ones is delivered; a rolled-back one costs no event", async () => {
    const names = freshTable();
    const store = open(names);
    const prefix = `${randomUUID()}/`;
    const raw = await mysql.createConnection({ uri: mysqlUrl });
    try {
      await store.tryPutPoison(`${prefix}setup`, "t");
      const log = new Collector(store, prefix);
      assert.equal(await log.ready, true);
      const now = new Date().toISOString();
      const insert = `INSERT INTO \`${names.table}\` (\`key\`, token, state, created_at, updated_at) VALUES (?, ?, 'in-progress', ?, ?)`;
      // 1. A transaction takes a log id and holds it, uncommitted.
      await raw.query("START TRANSACTION");
      await raw.query(insert, [
        Buffer.from(`${NAMESPACE}${prefix}late`),
        Buffer.from("late"),
        now,
        now,
      ]);
      // 2. Later ids commit and are seen.
      await store.tryPutPoison(`${prefix}early`, "early");
      await log.until(() => log.of(`${prefix}early`).length === 1, 5000, "the early put");
      // 3. Long past the probe age, the late one commits: it is still delivered, once.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      await raw.query("COMMIT");
      await log.until(() => log.of(`${prefix}late`).length === 1, 5000, "the late put");
      // 4. A rolled-back id: the changes after it arrive as before.
      await raw.query("START TRANSACTION");
      await raw.query(insert, [
        Buffer.from(`${NAMESPACE}${prefix}never`),
        Buffer.from("never"),
        now,
        now,
      ]);
      await raw.query("ROLLBACK");
      await store.tryPutPoison(`${prefix}after`, "after");
      await log.until(
        () => log.of(`${prefix}after`).length === 1,
        5000,
        "the put after a rollback",
      );
      await new Promise((resolve) => setTimeout(resolve, 1500)); // the dead id is probed
      await store.deletePoison(`${prefix}after`, "after");
      await log.until(
        () => log.of(`${prefix}after`).length === 2,
        5000,
        "the delete after the probe",
      );
      assert.deepEqual(log.of(`${prefix}late`), ["put"]);
      assert.deepEqual(log.of(`${prefix}never`), []);
      assert.deepEqual(log.of(`${prefix}early`), ["put"]);
      await log.stop();
    } finally {
      await raw.end();
      await store.close();
    }
  });

  it("resumes from a position; answers resync when the log was trimmed past it", async () => {
    const names = freshTable();
    const driver = mysqlDriver({ url: mysqlUrl, watchIntervalMs: FAST_MS, ...names });
    const prefix = ""; // a table of its own: every storage key
    const store = openPoisonStore(mysqlDriver({ url: mysqlUrl, ...names }));
    const read = async (from: string | null, count: number): Promise<DriverWatchEvent[]> => {
      const controller = new AbortController();
      const seen: DriverWatchEvent[] = [];
      const feed = driver.watch;
      assert.ok(feed);
      for await (const event of feed({ prefix, from, signal: controller.signal })) {
        seen.push(event);
        if (seen.length >= count) controller.abort();
      }
      return seen;
    };
    try {
      await store.tryPutPoison("setup", "t");
      assert.equal(await driver.init({ create: false }), true);
      const [start] = await read(null, 1);
      assert.equal(start?.type, "ready");
      await store.tryPutPoison("a", "t");
      await store.tryPutPoison("b", "t");
      const resumed = await read(start?.position ?? null, 3);
      assert.deepEqual(
        resumed.map((e) => e.type),
        ["ready", "put", "put"],
      );
      assert.equal(resumed[0]?.position, start?.position);
      // Trimmed past the position (as the trimmer does: the newest entry stays).
      const connection = await mysql.createConnection({ uri: mysqlUrl });
      try {
        const log = `\`${names.table}_changes\``;
        const [[top]] = (await connection.query(`SELECT MAX(id) AS high FROM ${log}`)) as [
          { high: number }[],
          unknown,
        ];
        await connection.query(`DELETE FROM ${log} WHERE id < ?`, [top?.high]);
      } finally {
        await connection.end();
      }
      const [again] = await read(start?.position ?? null, 1);
      assert.equal(again?.type, "resync");
      // From the position of the last change seen: nothing was trimmed above it.
      const [fromLast] = await read(resumed[2]?.position ?? null, 1);
      assert.equal(fromLast?.type, "ready");
    } finally {
      await store.close();
      await driver.close();
    }
  });

  it("trims the log to about its retention, in the background of writes", async () => {
    const names = freshTable();
    const store = open(names, { changeLogRetention: 50 });
    const prefix = `${randomUUID()}/`;
    try {
      for (let batch = 0; batch < 12; batch++) {
        const keys = Array.from({ length: 100 }, (_, i) => `${prefix}${batch}/${i}`);
        await store.tryPutPoisons(keys, "t");
      }
      const connection = await mysql.createConnection({ uri: mysqlUrl });
      try {
        const log = `\`${names.table}_changes\``;
        const deadline = Date.now() + 10_000;
        for (;;) {
          const [[row]] = (await connection.query(`SELECT COUNT(*) AS n FROM ${log}`)) as [
            { n: number }[],
            unknown,
          ];
          // 1000 writes trigger one trim to the newest 50; 200 more were written after it.
          if (Number(row?.n) <= 250) break;
          assert.ok(Date.now() < deadline, `the log still holds ${row?.n} entries`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } finally {
        await connection.end();
      }
    } finally {
      await store.close();
    }
  });

  it("costs one indexed read per interval when idle; measures the delay from write to event", async (t) => {
    const names = freshTable();
    const pool = mysql.createPool({ uri: mysqlUrl, connectionLimit: 4 });
    const counter = { statements: 0 };
    const counting = countingMysqlPool(pool, counter);
    // The default interval (500 ms), as a user gets it.
    const store = openPoisonStore(mysqlDriver({ pool: counting, ...names }));
    const prefix = `${randomUUID()}/`;
    try {
      await store.tryPutPoison(`${prefix}setup`, "t");
      const log = new Collector(store, prefix);
      assert.equal(await log.ready, true);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const before = counter.statements;
      const idleMs = 10_000;
      await new Promise((resolve) => setTimeout(resolve, idleMs));
      const perMinute = ((counter.statements - before) * 60_000) / idleMs;
      const delays: number[] = [];
      for (let i = 0; i < 20; i++) {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 700));
        const key = `${prefix}d${i}`;
        await store.tryPutPoison(key, "t");
        const written = performance.now();
        await log.until(() => log.of(key).length === 1, 5000, `the put of ${key}`);
        const index = log.events.findIndex((e) => e.key === key);
        delays.push((log.arrivals[index] ?? written) - written);
      }
      delays.sort((a, b) => a - b);
      const p50 = delays[Math.floor(delays.length / 2)] ?? 0;
      const max = delays.at(-1) ?? 0;
      t.diagnostic(
        `idle: ${perMinute.toFixed(0)} statements per minute; delay p50 ${p50.toFixed(0)} ms, max ${max.toFixed(0)} ms (of 20)`,
      );
      assert.ok(perMinute <= 130, `idle cost ${perMinute} statements per minute`);
      assert.ok(max < 2000, `delay max ${max} ms`);
      await log.stop();
    } finally {
      await store.close();
      await pool.end();
    }
  });
});
