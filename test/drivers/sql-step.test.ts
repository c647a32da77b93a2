/**
 * The SQL core's bounded step on one connection (src/drivers/sql/common.ts `onConnection`, and
 * SqlClient's use of it): how a connection is handed back or discarded, and that every failure
 * reaches the caller classified. No server: the connection is a plain object, since what is
 * tested is the wrapper's bookkeeping, not a database.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SqlClient, type SqlDialect } from "../../src/drivers/sql/client.js";
import { onConnection } from "../../src/drivers/sql/common.js";

interface Connection {
  id: number;
}

class Classified extends Error {
  constructor(readonly original: unknown) {
    super(`classified: ${(original as Error).message}`);
  }
}
const classify = (error: unknown) => new Classified(error);

/** Records how each connection was handed back. */
function settleLog() {
  const settled: { id: number; error: string | null }[] = [];
  return {
    settled,
    settle: (connection: Connection, error?: Error) =>
      settled.push({ id: connection.id, error: error ? error.message : null }),
  };
}

describe("SQL core: one bounded step on a connection", () => {
  it("hands the connection back without an error and answers the body's value", async () => {
    const { settled, settle } = settleLog();
    const value = await onConnection(
      1_000,
      "test",
      async () => ({ id: 1 }),
      async (c) => `ran on ${c.id}`,
      settle,
      classify,
    );
    assert.equal(value, "ran on 1");
    assert.deepEqual(settled, [{ id: 1, error: null }]);
  });

  it("discards the connection when the body fails, and rejects with the classified error", async () => {
    const { settled, settle } = settleLog();
    const failure = new Error("statement failed");
    const error = await onConnection(
      1_000,
      "test",
      async () => ({ id: 2 }),
      async () => {
        throw failure;
      },
      settle,
      classify,
    ).catch((e: unknown) => e);
    assert.ok(error instanceof Classified);
    assert.equal(error.original, failure);
    assert.deepEqual(settled, [{ id: 2, error: "statement failed" }]);
  });

  it("classifies a failure to get a connection, with nothing to hand back", async () => {
    const { settled, settle } = settleLog();
    const error = await onConnection(
      1_000,
      "test",
      () => Promise.reject(new Error("password authentication failed")),
      async () => "never",
      settle,
      classify,
    ).catch((e: unknown) => e);
    assert.ok(error instanceof Classified);
    assert.match(error.message, /password authentication failed/);
    assert.deepEqual(settled, []);
  });

  it("past its bound: classifies the timeout, discards the connection, ignores the late answer", async () => {
    const { settled, settle } = settleLog();
    let answer: (value: string) => void = () => undefined;
    const error = await onConnection(
      50,
      "test",
      async () => ({ id: 3 }),
      () =>
        new Promise<string>((resolve) => {
          answer = resolve;
        }),
      settle,
      classify,
    ).catch((e: unknown) => e);
    assert.ok(error instanceof Classified);
    assert.match(error.message, /no answer within 50 ms; connection discarded/);
    answer("too late");
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(settled, [
      { id: 3, error: "test: no answer within 50 ms; connection discarded" },
    ]);
  });

  it("a classification that throws still settles the call, with what it threw", async () => {
    const { settle } = settleLog();
    const thrown = new Error("classify broke");
    const error = await onConnection(
      1_000,
      "test",
      async () => ({ id: 4 }),
      async () => {
        throw new Error("statement failed");
      },
      settle,
      () => {
        throw thrown;
      },
    ).catch((e: unknown) => e);
    assert.equal(error, thrown);
  });

  it("SqlClient: a dialect whose checkout throws instead of rejecting fails the call, classified", async () => {
    const dialect: SqlDialect<object, Connection> = {
      backend: "postgres",
      begin: "BEGIN",
      createPool: async () => ({}),
      checkout: () => {
        throw new Error("checkout threw");
      },
      settle: () => undefined,
      execute: async () => undefined,
      classify,
      endPool: async () => undefined,
    };
    const client = new SqlClient(dialect, { pool: {}, timeoutMs: 1_000 });
    const error = await client.withConnection(async () => "never").catch((e: unknown) => e);
    assert.ok(error instanceof Classified);
    assert.match(error.message, /checkout threw/);
  });
});
