/** Every command through the built bin, on every store of the matrix (see support.ts). */
import assert from "node:assert/strict";
import { userInfo } from "node:os";
import { after, before, describe, it } from "node:test";
import type { AuditEntry, PoisonRecord } from "../../src/index.js";
import { openPoisonStore, type PoisonStoreClient } from "../../src/index.js";
import { cliOn, cliStores } from "./support.js";

interface ErrorDoc {
  error: {
    code: string;
    exitCode: number;
    message: string;
    fix: string | null;
    holder?: string;
    record?: PoisonRecord | null;
  };
}
interface ListDoc {
  store: string;
  backend: string;
  namespace: string;
  records: PoisonRecord[];
  count: number;
  truncated: boolean;
}
interface HistoryDoc {
  key: string | null;
  entries: AuditEntry[];
  count: number;
  truncated: boolean;
}

for (const store of cliStores()) {
  describe(`poison CLI on ${store.name}`, () => {
    const cli = cliOn(store);
    let lib: PoisonStoreClient;
    before(() => {
      lib = openPoisonStore(store.url, { namespace: cli.namespace });
    });
    after(() => lib.close());

    it("list on an empty store: exit 0, a plain sentence, and an empty JSON document", () => {
      const text = cli.run(["list"]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /no poison keys/);
      const doc = cli.run(["list", "--json"]).json<ListDoc>();
      assert.deepEqual(doc.records, []);
      assert.equal(doc.count, 0);
      assert.equal(doc.truncated, false);
      assert.equal(doc.namespace, cli.namespace);
    });

    it("put quarantines a key, audited with the OS user; same token again changes nothing", () => {
      const put = cli.run([
        "put",
        "maint/1",
        "--token",
        "maint-1",
        "--reason",
        "disk swap",
        "--data",
        '{"ticket":"OPS-1"}',
        "--json",
      ]);
      assert.equal(put.code, 0, put.stderr);
      const doc = put.json<{ put: boolean; actor: string; reason: string; record: PoisonRecord }>();
      assert.equal(doc.put, true);
      assert.equal(doc.actor, userInfo().username);
      assert.equal(doc.reason, "disk swap");
      assert.equal(doc.record.key, "maint/1");
      assert.equal(doc.record.token, "maint-1");
      assert.equal(doc.record.state, "in-progress");
      assert.equal(doc.record.operation, "manual-quarantine");
      assert.deepEqual(doc.record.data, { ticket: "OPS-1" });

      const again = cli.run(["put", "maint/1", "--token", "maint-1"]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /already held by token "maint-1"; nothing changed/);

      const history = cli.run(["history", "maint/1", "--json"]).json<HistoryDoc>();
      assert.equal(history.entries.length, 1, "only the first put is audited");
      assert.equal(history.entries[0]?.action, "put");
      assert.equal(history.entries[0]?.actor, userInfo().username);
      assert.equal(history.entries[0]?.reason, "disk swap");
    });

    it("put on a key held by another token: exit 3, the holder shown, nothing changed", () => {
      const text = cli.run(["put", "maint/1", "--token", "intruder"]);
      assert.equal(text.code, 3);
      assert.match(text.stderr, /held by token "maint-1"/);
      assert.match(text.stderr, /fix:/);
      const json = cli.run(["put", "maint/1", "--token", "intruder", "--json"]);
      assert.equal(json.code, 3);
      const doc = json.json<ErrorDoc>();
      assert.equal(doc.error.code, "POISON_CONFLICT");
      assert.equal(doc.error.exitCode, 3);
      assert.equal(doc.error.holder, "maint-1");
      assert.equal(doc.error.record?.token, "maint-1");
    });

    it("--actor and POISON_ACTOR name the actor in the audit log", () => {
      assert.equal(cli.run(["put", "maint/2", "--token", "t", "--actor", "alice"]).code, 0);
      assert.equal(
        cli.run(["put", "maint/3", "--token", "t"], { env: { POISON_ACTOR: "bob" } }).code,
        0,
      );
      const entries = cli.run(["history", "--json"]).json<HistoryDoc>().entries;
      assert.equal(entries.find((e) => e.key === "maint/2")?.actor, "alice");
      assert.equal(entries.find((e) => e.key === "maint/3")?.actor, "bob");
    });

    it("show: the whole record, the error with its stack, the data, the history", async () => {
      await lib.tryPutPoison("table/1024", "procedure-A", {
        operation: "alter-table",
        owner: "node-1:4242",
        data: { shards: [1, 2, 3, 4], done: [1, 2, 3] },
      });
      const failure = new Error("shard 4: connection reset");
      failure.stack = "Error: shard 4: connection reset\n    at alterShard (alter.ts:88:11)";
      await lib.markPoisoned("table/1024", "procedure-A", failure);

      const text = cli.run(["show", "table/1024"]);
      assert.equal(text.code, 0, text.stderr);
      for (const expected of [
        "procedure-A",
        "poisoned",
        "alter-table",
        "node-1:4242",
        "shard 4: connection reset",
        "at alterShard (alter.ts:88:11)",
        '"done":[1,2,3]',
        "history",
      ])
        assert.ok(text.stdout.includes(expected), `show prints ${expected}:\n${text.stdout}`);

      const doc = cli
        .run(["show", "table/1024", "--json"])
        .json<{ record: PoisonRecord; history: AuditEntry[] }>();
      assert.equal(doc.record.state, "poisoned");
      assert.equal(doc.record.error?.stack, failure.stack);
      assert.deepEqual(doc.record.data, { shards: [1, 2, 3, 4], done: [1, 2, 3] });
      assert.deepEqual(doc.history, []);
    });

    it("show of an absent key: exit 4, and the JSON error names the code", () => {
      const text = cli.run(["show", "no/such/key"]);
      assert.equal(text.code, 4);
      assert.match(text.stderr, /"no\/such\/key" is not present/);
      assert.equal(text.stdout, "");
      const json = cli.run(["show", "no/such/key", "--json"]);
      assert.equal(json.code, 4);
      assert.equal(json.json<ErrorDoc>().error.code, "POISON_NOT_FOUND");
    });

    it("list: the table has every column, sorted by key, with --state, --prefix and --limit", () => {
      const text = cli.run(["list"]);
      assert.equal(text.code, 0, text.stderr);
      const [header, ...rows] = text.stdout.trimEnd().split("\n");
      for (const column of [
        "KEY",
        "STATE",
        "TOKEN",
        "OPERATION",
        "OWNER",
        "AGE",
        "HEARTBEAT",
        "ERROR",
      ])
        assert.match(header ?? "", new RegExp(column));
      const keys = rows.slice(0, -1).map((row) => row.split(/\s+/)[0]);
      assert.deepEqual(keys, ["maint/1", "maint/2", "maint/3", "table/1024"]);
      assert.match(
        text.stdout,
        /table\/1024\s+poisoned\s+procedure-A\s+alter-table\s+node-1:4242\s+\d+s\s+-\s+Error: shard 4: connection reset/,
      );

      const poisoned = cli.run(["list", "--state", "poisoned", "--json"]).json<ListDoc>();
      assert.deepEqual(
        poisoned.records.map((r) => r.key),
        ["table/1024"],
      );
      const inProgress = cli.run(["list", "--state", "in-progress", "--json"]).json<ListDoc>();
      assert.deepEqual(
        inProgress.records.map((r) => r.key),
        ["maint/1", "maint/2", "maint/3"],
      );
      const prefixed = cli
        .run(["list", "--prefix", "maint/", "--limit", "2", "--json"])
        .json<ListDoc>();
      assert.deepEqual(
        prefixed.records.map((r) => r.key),
        ["maint/1", "maint/2"],
      );
      assert.equal(prefixed.truncated, true);
      assert.equal(prefixed.count, 2);
      const limited = cli.run(["list", "--prefix", "maint/", "--limit", "2"]);
      assert.match(limited.stdout, /2 keys \(--limit 2 reached/);
    });

    it("clear --token: a mismatch exits 3 and shows the holder; the holder's token clears, audited", () => {
      const wrong = cli.run(["clear", "maint/1", "--token", "not-mine"]);
      assert.equal(wrong.code, 3);
      assert.match(
        wrong.stderr,
        /held by token "maint-1" \(in-progress, operation manual-quarantine/,
      );
      const wrongJson = cli.run(["clear", "maint/1", "--token", "not-mine", "--json"]);
      assert.equal(wrongJson.json<ErrorDoc>().error.holder, "maint-1");

      const right = cli.run([
        "clear",
        "maint/1",
        "--token",
        "maint-1",
        "--reason",
        "maintenance done",
        "--json",
      ]);
      assert.equal(right.code, 0, right.stderr);
      const doc = right.json<{ cleared: boolean; forced: boolean; record: PoisonRecord }>();
      assert.equal(doc.cleared, true);
      assert.equal(doc.forced, false);
      assert.equal(doc.record.token, "maint-1");
      const [latest] = cli.run(["history", "maint/1", "--json"]).json<HistoryDoc>().entries;
      assert.equal(latest?.action, "delete");
      assert.equal(latest?.reason, "maintenance done");

      const absent = cli.run(["clear", "maint/1", "--token", "maint-1", "--json"]);
      assert.equal(absent.code, 0);
      assert.equal(absent.json<{ cleared: boolean }>().cleared, false);
    });

    it("clear --force: refuses without --reason, without --yes off a terminal, and on an unexpected holder", () => {
      const noReason = cli.run(["clear", "table/1024", "--force", "--yes"]);
      assert.equal(noReason.code, 2);
      assert.match(noReason.stderr, /--force needs --reason/);
      const noYes = cli.run(["clear", "table/1024", "--force", "--reason", "r"], {
        input: "yes\n",
      });
      assert.equal(noYes.code, 2);
      assert.match(noYes.stderr, /stdin is not a terminal/);
      const unexpected = cli.run([
        "clear",
        "table/1024",
        "--force",
        "--reason",
        "r",
        "--yes",
        "--expect-token",
        "procedure-Z",
      ]);
      assert.equal(unexpected.code, 3);
      assert.match(unexpected.stderr, /held by token "procedure-A"/);
      assert.equal(cli.run(["show", "table/1024"]).code, 0, "the key is still there");
    });

    it("clear --force --yes removes the key whoever holds it; history names actor, reason and the record", () => {
      const cleared = cli.run([
        "clear",
        "table/1024",
        "--force",
        "--reason",
        "re-ran ALTER on shard 4",
        "--actor",
        "carol",
        "--yes",
        "--expect-token",
        "procedure-A",
        "--json",
      ]);
      assert.equal(cleared.code, 0, cleared.stderr);
      const doc = cleared.json<{
        cleared: boolean;
        forced: boolean;
        actor: string;
        record: PoisonRecord;
      }>();
      assert.deepEqual(
        [doc.cleared, doc.forced, doc.actor, doc.record.token],
        [true, true, "carol", "procedure-A"],
      );
      assert.equal(cli.run(["show", "table/1024"]).code, 4);

      const history = cli.run(["history", "table/1024"]);
      assert.equal(history.code, 0);
      assert.match(history.stdout, /force-delete\s+carol\s+procedure-A\s+re-ran ALTER on shard 4/);
      const [entry] = cli.run(["history", "table/1024", "--json"]).json<HistoryDoc>().entries;
      assert.equal(entry?.action, "force-delete");
      assert.equal(entry?.record?.state, "poisoned");
      assert.equal(entry?.record?.error?.message, "shard 4: connection reset");

      const again = cli.run(["clear", "table/1024", "--force", "--reason", "r", "--yes"]);
      assert.equal(again.code, 0);
      assert.match(again.stdout, /not present; nothing to clear/);
    });

    it("history: newest first, --limit, KEY filter, JSON", () => {
      const all = cli.run(["history", "--json"]).json<HistoryDoc>();
      assert.ok(all.entries.length >= 5);
      const times = all.entries.map((e) => e.at);
      assert.deepEqual(times, [...times].sort().reverse(), "newest first");
      const ids = all.entries.map((e) => e.id);
      assert.equal(new Set(ids).size, ids.length);
      const two = cli.run(["history", "--limit", "2", "--json"]).json<HistoryDoc>();
      assert.deepEqual(
        two.entries.map((e) => e.id),
        ids.slice(0, 2),
      );
      assert.equal(two.truncated, true);
      const text = cli.run(["history", "--limit", "2"]);
      assert.match(text.stdout, /^AT\s+AGO\s+ACTION\s+KEY\s+ACTOR\s+TOKEN\s+REASON/);
      assert.match(text.stdout, /2 entries \(--limit 2 reached/);
      const none = cli.run(["history", "never/touched"]);
      assert.equal(none.code, 0);
      assert.match(none.stdout, /no audit entries for "never\/touched"/);
    });

    it("list pages through the store: 1203 keys in order, filtered by state across pages", async () => {
      const keys = Array.from({ length: 1203 }, (_, i) => `bulk/${String(i).padStart(5, "0")}`);
      for (let i = 0; i < keys.length; i += 40)
        await lib.tryPutPoisons(keys.slice(i, i + 40), "bulk-token");
      await lib.markPoisoned("bulk/01100", "bulk-token", new Error("late failure"));
      const doc = cli.run(["list", "--prefix", "bulk/", "--json"]).json<ListDoc>();
      assert.equal(doc.count, 1203);
      assert.deepEqual(
        doc.records.map((r) => r.key),
        keys,
      );
      const poisoned = cli
        .run(["list", "--prefix", "bulk/", "--state", "poisoned", "--json"])
        .json<ListDoc>();
      assert.deepEqual(
        poisoned.records.map((r) => r.key),
        ["bulk/01100"],
      );
      const text = cli.run(["list", "--prefix", "bulk/"]);
      assert.equal(text.stdout.trimEnd().split("\n").length, 1 + 1203 + 1, "header, rows, count");
    });
  });
}
