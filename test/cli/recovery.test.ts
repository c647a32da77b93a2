/**
 * SQLite-only cases that need to reach under the store: a record whose stored value is
 * malformed (cleared with --force), a heartbeat age in the table, and the confirmation prompt on
 * a real pseudo-terminal.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { openPoisonStore, type PoisonStoreClient } from "../../src/index.js";
import { answerOnTty, cliOn, hasScript, runPoisonOnTty, scratchDir } from "./support.js";

const path = `${scratchDir()}/recovery.db`;
const store = { name: "sqlite", url: `sqlite:${path}` };

/** Write a row by hand, the way another tool (or a corrupted write) might have left it. */
function writeRawRow(namespace: string, key: string, columns: Record<string, string | null>) {
  const db = new Database(path);
  try {
    db.prepare(
      `INSERT INTO poison_keys (key, token, state, created_at, updated_at, heartbeat_at, operation, owner, error, data)
       VALUES (@key, @token, @state, @created_at, @updated_at, @heartbeat_at, @operation, @owner, @error, @data)`,
    ).run({
      key: Buffer.from(namespace + key, "utf8"),
      token: "t",
      state: "poisoned",
      created_at: new Date().toISOString(),
      updated_at: new Date().toISOString(),
      heartbeat_at: null,
      operation: null,
      owner: null,
      error: null,
      data: null,
      ...columns,
    });
  } finally {
    db.close();
  }
}

describe("recovery on SQLite, under the store", () => {
  const cli = cliOn(store);
  let lib: PoisonStoreClient;
  before(async () => {
    lib = openPoisonStore(store.url, { namespace: cli.namespace });
    // A put creates the tables (reads never do); its key is cleared at once.
    await lib.tryPutPoison("setup", "setup");
    await lib.deletePoison("setup", "setup");
  });
  after(() => lib.close());

  it("a malformed record (bad JSON, unknown state) is shown, and cleared with --force", () => {
    writeRawRow(cli.namespace, "broken/1", {
      token: "old-procedure",
      state: "exploded",
      created_at: "not a date",
      error: "{not json",
      data: "{{{",
    });
    const list = cli.run(["list"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      /broken\/1\s+poisoned\s+old-procedure/,
      "an unknown state reads as poisoned",
    );
    const show = cli.run(["show", "broken/1"]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /\{not json/);
    assert.match(show.stdout, /\{\{\{/);

    const cleared = cli.run([
      "clear",
      "broken/1",
      "--force",
      "--reason",
      "hand-written row",
      "--yes",
      "--json",
    ]);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.equal(cleared.json<{ record: { token: string } }>().record.token, "old-procedure");
    assert.equal(cli.run(["show", "broken/1"]).code, 4);
    const history = cli
      .run(["history", "broken/1", "--json"])
      .json<{ entries: { action: string; reason: string }[] }>();
    assert.deepEqual(
      history.entries.map((e) => [e.action, e.reason]),
      [["force-delete", "hand-written row"]],
    );
  });

  it("the table shows the heartbeat age", () => {
    const twoMinutesAgo = new Date(Date.now() - 125_000).toISOString();
    writeRawRow(cli.namespace, "beat/1", { state: "in-progress", heartbeat_at: twoMinutesAgo });
    const list = cli.run(["list", "--prefix", "beat/"]);
    assert.match(list.stdout, /beat\/1\s+in-progress\s+t\s+-\s+-\s+\d+s\s+2m0[5-9]s\s+-/);
  });

  describe("the confirmation prompt on a terminal", {
    skip: !hasScript() && "util-linux script is not installed",
  }, () => {
    const ttyArgs = (key: string) => [
      "clear",
      key,
      "--force",
      "--reason",
      "repaired",
      "--store",
      store.url,
      "--namespace",
      cli.namespace,
    ];

    it('shows the record and clears it when the operator types "yes"', async () => {
      await lib.tryPutPoison("tty/yes", "procedure-Y", { operation: "alter-table" });
      const run = runPoisonOnTty(ttyArgs("tty/yes"), { input: "yes\n", env: { NO_COLOR: "1" } });
      assert.equal(run.code, 0, run.stdout);
      assert.match(run.stdout, /About to force-clear "tty\/yes"/);
      assert.match(run.stdout, /token\s+procedure-Y/);
      assert.match(run.stdout, /Type "yes" to confirm/);
      assert.match(run.stdout, /force-cleared "tty\/yes"/);
      assert.equal(await lib.getPoison("tty/yes"), null);
    });

    it("exits 1 and changes nothing when the operator answers anything else", async () => {
      await lib.tryPutPoison("tty/no", "procedure-N");
      const run = runPoisonOnTty(ttyArgs("tty/no"), { input: "no\n" });
      assert.equal(run.code, 1, run.stdout);
      assert.match(run.stdout, /not confirmed; nothing was changed/);
      assert.equal(await lib.getPoison("tty/no"), "procedure-N");
    });

    it("refuses (exit 3) when another token took the key while the operator was reading", async () => {
      await lib.tryPutPoison("tty/swap", "procedure-S");
      const run = await answerOnTty(
        ttyArgs("tty/swap"),
        /Type "yes" to confirm/,
        async () => {
          await lib.forceDeletePoison("tty/swap", { actor: "test", reason: "swap" });
          await lib.tryPutPoison("tty/swap", "procedure-T");
          return "yes\n";
        },
        { env: { NO_COLOR: "1" } },
      );
      assert.equal(run.code, 3, run.stdout);
      assert.match(run.stdout, /held by token "procedure-T"/);
      assert.equal(await lib.getPoison("tty/swap"), "procedure-T", "the new holder's key stays");
    });
  });
});
