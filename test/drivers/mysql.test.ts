import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import mysql from "mysql2/promise";
import { mysqlDriver, openPoisonStore } from "../../src/index.js";
import { AWKWARD_KEYS } from "../conformance/harness.js";
import { backendSkipReason, testDriver } from "../conformance/index.js";
import { conformanceHarness } from "../support/backends.js";
import { closingAlso, networkedChecks } from "../support/networked-checks.js";
import { mysqlUnavailable, mysqlUrl } from "../support/servers.js";
import { countingMysqlPool } from "../support/sql.js";

const url = mysqlUrl;
const unavailable = mysqlUnavailable;

await testDriver(conformanceHarness("mysql"));

networkedChecks({
  name: "mysql",
  skip: await backendSkipReason("mysql", unavailable),
  url,
  defaultPort: 3306,
  openCounting(proxied, counter) {
    const pool = mysql.createPool({ uri: proxied, connectionLimit: 2 });
    const counting = countingMysqlPool(pool, counter);
    const store = openPoisonStore(mysqlDriver({ pool: counting }));
    return closingAlso(store, () => pool.end());
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
  openThrough(proxied, { timeoutMs, clientTimeoutMs }) {
    return openPoisonStore(
      mysqlDriver({
        url: proxied,
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
