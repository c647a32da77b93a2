import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import mysql from "mysql2/promise";
import { type MysqlPoolLike, mysqlDriver, openPoisonStore } from "../../src/index.js";
import { AWKWARD_KEYS } from "../conformance/harness.js";
import { backendSkipReason, testDriver } from "../conformance/index.js";
import { conformanceHarness } from "../support/backends.js";
import { networkedChecks } from "../support/networked-checks.js";
import { mysqlUnavailable, mysqlUrl } from "../support/servers.js";

const url = mysqlUrl;
const target = new URL(url);
const unavailable = mysqlUnavailable;

await testDriver(conformanceHarness("mysql"));

const viaPort = (port: number) => {
  const proxied = new URL(url);
  proxied.hostname = "127.0.0.1";
  proxied.port = String(port);
  return proxied.toString();
};

networkedChecks({
  name: "mysql",
  skip: await backendSkipReason("mysql", unavailable),
  target: { host: target.hostname, port: Number(target.port || 3306) },
  openCounting(port, counter) {
    const pool = mysql.createPool({ uri: viaPort(port), connectionLimit: 2 });
    const counting: MysqlPoolLike = {
      async getConnection() {
        const connection = await pool.getConnection();
        return {
          query(sql: string, values?: unknown[]) {
            counter.statements++;
            return connection.query(sql, values) as Promise<[unknown, unknown]>;
          },
          release: () => connection.release(),
          destroy: () => connection.destroy(),
        };
      },
      end: () => pool.end(),
    };
    const store = openPoisonStore(mysqlDriver({ pool: counting }));
    const close = store.close.bind(store);
    return Object.assign(store, {
      close: async () => {
        await close();
        await pool.end();
      },
    });
  },
  openWithTables: (tables) => openPoisonStore(mysqlDriver({ url, ...tables })),
  async dropTables({ table, auditTable }) {
    const connection = await mysql.createConnection({ uri: url });
    try {
      await connection.query(`DROP TABLE IF EXISTS \`${table}\`, \`${auditTable}\``);
      for (const version of ["v1", "v2", "v3"]) {
        await connection.query(`DROP PROCEDURE IF EXISTS \`${table}_put_${version}\``);
        await connection.query(`DROP PROCEDURE IF EXISTS \`${table}_remove_${version}\``);
      }
    } finally {
      await connection.end();
    }
  },
  openThrough(port, { timeoutMs, clientTimeoutMs }) {
    return openPoisonStore(
      mysqlDriver({
        url: viaPort(port),
        connectTimeoutMs: clientTimeoutMs,
        queryTimeoutMs: clientTimeoutMs,
      }),
      { timeoutMs },
    );
  },
});

describe("mysql: values never depend on the server's escaping rules", async () => {
  const skip = await backendSkipReason("mysql", unavailable);
  it("NO_BACKSLASH_ESCAPES and a latin1 connection store awkward keys verbatim", {
    skip: skip ?? false,
  }, async () => {
    const pool = mysql.createPool({ uri: url, connectionLimit: 2, charset: "latin1_swedish_ci" });
    pool.pool.on("connection", (connection) => {
      connection.query("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')");
    });
    const store = openPoisonStore(mysqlDriver({ pool }), {
      namespace: `/poison-test/${randomUUID()}/`,
    });
    try {
      for (const key of AWKWARD_KEYS) {
        const token = `tok ${key}`;
        await store.tryPutPoison(key, token, { operation: key, data: { key } });
        assert.equal(await store.getPoison(key), token);
        assert.deepEqual((await store.inspectPoison(key))?.data, { key });
      }
      const listed = (await store.listPoisons({ limit: 100 })).records.map((r) => r.key);
      assert.deepEqual(
        listed,
        [...AWKWARD_KEYS].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
      );
      for (const key of AWKWARD_KEYS) await store.deletePoison(key, `tok ${key}`);
      assert.deepEqual((await store.listPoisons()).records, []);
    } finally {
      await store.close();
      await pool.end();
    }
  });
});
