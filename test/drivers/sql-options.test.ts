import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  InvalidArgumentError,
  mysqlDriver,
  openPoisonStore,
  postgresDriver,
} from "../../src/index.js";

describe("SQL driver options (no server needed)", () => {
  it("URL schemes open the right backend without connecting", async () => {
    for (const [url, backend] of [
      ["postgres://u@127.0.0.1:1/db", "postgres"],
      ["postgresql://u@127.0.0.1:1/db", "postgres"],
      ["mysql://u@127.0.0.1:1/db", "mysql"],
      ["mariadb://u@127.0.0.1:1/db", "mysql"],
    ] as const) {
      const store = openPoisonStore(url);
      assert.equal(store.backend, backend);
      await store.close();
    }
  });

  it("table names must be plain identifiers; url and pool exclude each other", () => {
    for (const factory of [postgresDriver, mysqlDriver]) {
      for (const table of ["", "a-b", "a;drop", 'a"b', "a`b", "1abc", "a.b.c", "x".repeat(64)]) {
        assert.throws(() => factory({ url: "x://h/d", table }), InvalidArgumentError, table);
        assert.throws(
          () => factory({ url: "x://h/d", auditTable: table }),
          InvalidArgumentError,
          table,
        );
      }
      assert.doesNotThrow(() => factory({ url: "x://h/d", table: "ops.poison_keys_2" }));
      assert.throws(() => factory({}), InvalidArgumentError);
      assert.throws(
        () => factory({ url: "x://h/d", pool: { end: async () => {} } as never }),
        InvalidArgumentError,
      );
      assert.throws(() => factory({ url: "x://h/d", queryTimeoutMs: 0 }), InvalidArgumentError);
    }
  });

  it("an unreachable server rejects with BackendUnavailableError in time", async () => {
    // Port 1 on loopback refuses at once; the call must reject, never resolve.
    for (const url of ["postgres://u@127.0.0.1:1/db", "mysql://u@127.0.0.1:1/db"]) {
      const store = openPoisonStore(url, { timeoutMs: 2000 });
      await assert.rejects(store.getPoison("k"), { code: "BACKEND_UNAVAILABLE" });
      await store.close();
    }
  });
});
