/**
 * SQLite-only cases that need to reach under the store: a record whose stored value is
 * malformed (cleared with --force), a heartbeat age in the table, and the confirmation prompt on
 * a real pseudo-terminal.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { openPoisonStore, type PoisonStoreClient } from "../../src/index.js";
import {
  answerOnTty,
  cliOn,
  hasScript,
  runPoisonOnTty,
  runSuggested,
  scratchDir,
} from "./support.js";

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

  it("a malformed record (bad JSON, unknown state) is shown, and cleared with --force", async () => {
    writeRawRow(cli.namespace, "broken/1", {
      token: "old-procedure",
      state: "exploded",
      created_at: "not a date",
      error: "{not json",
      data: "{{{",
    });
    const list = await cli.run(["list"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      /broken\/1\s+poisoned\s+old-procedure/,
      "an unknown state reads as poisoned",
    );
    const show = await cli.run(["show", "broken/1"]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /\{not json/);
    assert.match(show.stdout, /\{\{\{/);

    const cleared = await cli.run([
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
    assert.equal((await cli.run(["show", "broken/1"])).code, 4);
    const history = (await cli.run(["history", "broken/1", "--json"])).json<{
      entries: { action: string; reason: string }[];
    }>();
    assert.deepEqual(
      history.entries.map((e) => [e.action, e.reason]),
      [["force-delete", "hand-written row"]],
    );
  });

  it("a key with control characters is printed safely everywhere, and its hints paste as is", async () => {
    const key = "evil\u001b[2J\rkey";
    await lib.tryPutPoison(key, "tok\u0007en");
    for (const args of [["list"], ["show", key], ["history"], ["check", "--state", "any"]]) {
      const run = await cli.run(args);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for them is the point
      assert.doesNotMatch(run.stdout + run.stderr, /[\u0000-\u0009\u000b-\u001f]/, args.join(" "));
    }
    const show = await cli.run(["show", key]);
    assert.ok(
      show.stdout.includes("poison clear $'evil\\u001b[2J\\rkey' --token $'tok\\u0007en'"),
      show.stdout,
    );
    const cleared = await runSuggested(show.stdout, "clear", /as the holder: +(poison clear .*)$/m);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.equal(await lib.getPoison(key), null, "the printed command cleared that very key");
  });

  it("the table shows the heartbeat age", async () => {
    const twoMinutesAgo = new Date(Date.now() - 125_000).toISOString();
    writeRawRow(cli.namespace, "beat/1", { state: "in-progress", heartbeat_at: twoMinutesAgo });
    const list = await cli.run(["list", "--prefix", "beat/"]);
    assert.match(list.stdout, /beat\/1\s+in-progress\s+t\s+-\s+-\s+\d+s\s+2m0[5-9]s\s+stale\s+-/);
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

    it('shows the record and its liveness, and clears it when the operator types "yes"', async () => {
      await lib.tryPutPoison("tty/yes", "procedure-Y", { operation: "alter-table" });
      const run = runPoisonOnTty(ttyArgs("tty/yes"), { input: "yes\n", env: { NO_COLOR: "1" } });
      assert.equal(run.code, 0, run.stdout);
      assert.match(run.stdout, /About to force-clear "tty\/yes" \(store sqlite:/);
      assert.match(run.stdout, /token\s+procedure-Y/);
      assert.match(run.stdout, /holder\s+stale: no heartbeat recorded/);
      assert.match(run.stdout, /Clear it\? Only "yes" confirms:/);
      assert.match(run.stdout, /force-cleared "tty\/yes"/);
      assert.equal(await lib.getPoison("tty/yes"), null);
    });

    for (const answer of ["y", "Y", "YES", "no", "yes please"]) {
      it(`exits 1 and changes nothing when the operator answers ${JSON.stringify(answer)}`, async () => {
        await lib.tryPutPoison("tty/no", "procedure-N");
        const run = runPoisonOnTty(ttyArgs("tty/no"), { input: `${answer}\n` });
        assert.equal(run.code, 1, run.stdout);
        assert.match(run.stdout, /not confirmed .*only "yes" confirms\); nothing was changed/);
        assert.equal(await lib.getPoison("tty/no"), "procedure-N");
      });
    }

    it('Ctrl-C at the prompt prints "aborted" and exits 130, changing nothing', async () => {
      await lib.tryPutPoison("tty/int", "procedure-I");
      const run = await answerOnTty(
        ttyArgs("tty/int"),
        /Only "yes" confirms/,
        async () => "\u0003",
        {
          env: { NO_COLOR: "1" },
        },
      );
      assert.equal(run.code, 130, run.stdout);
      assert.match(run.stdout, /poison: error: aborted; nothing was changed/);
      assert.equal(await lib.getPoison("tty/int"), "procedure-I");
    });

    it("shows a live holder as live, and warns, when --even-if-alive is given", async () => {
      await lib.tryPutPoison("tty/live", "run-L", {
        owner: "node-3:1",
        heartbeatIntervalMs: 60_000,
      });
      const refused = runPoisonOnTty(ttyArgs("tty/live"), {
        input: "yes\n",
        env: { NO_COLOR: "1" },
      });
      assert.equal(refused.code, 6, refused.stdout);
      assert.doesNotMatch(refused.stdout, /Only "yes" confirms/, "no prompt for a refusal");
      const run = runPoisonOnTty([...ttyArgs("tty/live"), "--even-if-alive"], {
        input: "yes\n",
        env: { NO_COLOR: "1" },
      });
      assert.equal(run.code, 0, run.stdout);
      assert.match(run.stdout, /holder\s+live: last heartbeat \S+ ago, every 60s/);
      assert.match(
        run.stdout,
        /its holder is live \(--even-if-alive\): its run loses the key and aborts/,
      );
      assert.equal(await lib.getPoison("tty/live"), null);
    });

    it("asks before a poisoned key is cleared with its holder's token (a recovery)", async () => {
      await lib.tryPutPoison("tty/rec", "procedure-R");
      await lib.markPoisoned("tty/rec", "procedure-R", new Error("failed"));
      const args = [
        "clear",
        "tty/rec",
        "--token",
        "procedure-R",
        "--reason",
        "repaired",
        "--store",
        store.url,
        "--namespace",
        cli.namespace,
      ];
      const run = runPoisonOnTty(args, { input: "yes\n", env: { NO_COLOR: "1" } });
      assert.equal(run.code, 0, run.stdout);
      assert.match(
        run.stdout,
        /About to clear poisoned key "tty\/rec" with its holder's token \(a recovery\)/,
      );
      assert.match(run.stdout, /audit entry: delete by .*: "repaired"/);
      assert.equal(await lib.getPoison("tty/rec"), null);
    });

    it("refuses (exit 3) when another token took the key while the operator was reading", async () => {
      await lib.tryPutPoison("tty/swap", "procedure-S");
      const run = await answerOnTty(
        ttyArgs("tty/swap"),
        /Only "yes" confirms/,
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
