/** Every command through the built bin, on every store of the matrix (see support.ts). */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { userInfo } from "node:os";
import { after, before, describe, it } from "node:test";
import type { AuditEntry, PoisonRecord } from "../../src/index.js";
import { openPoisonStore, type PoisonStoreClient } from "../../src/index.js";
import { cliOn, cliStores, runSuggested } from "./support.js";

interface ErrorDoc {
  error: {
    code: string;
    exitCode: number;
    message: string;
    fix: string | null;
    store: string | null;
    namespace: string | null;
    holder?: string;
    record?: PoisonRecord | null;
    path?: string;
  };
}
interface ListDoc {
  store: string;
  backend: string;
  namespace: string;
  context: string | null;
  records: PoisonRecord[];
  count: number;
  truncated: boolean;
  cursor: string | null;
}
interface HistoryDoc {
  key: string | null;
  entries: AuditEntry[];
  count: number;
  truncated: boolean;
}
interface CheckDoc {
  matches: PoisonRecord[];
  count: number;
  matched: boolean;
  state: string;
}

describe("poison CLI on every backend, concurrently", { concurrency: true }, () => {
  for (const store of cliStores()) {
    describe(`poison CLI on ${store.name}`, { concurrency: 1 }, () => {
      const cli = cliOn(store);
      let lib: PoisonStoreClient;
      before(() => {
        lib = openPoisonStore(store.url, { namespace: cli.namespace });
      });
      after(() => lib.close());

      it("reading never creates: a missing sqlite: file is exit 5 naming it; elsewhere, an empty answer naming the store", async () => {
        if (store.name === "sqlite") {
          const file = store.url.slice("sqlite:".length);
          for (const command of [
            ["list"],
            ["show", "k"],
            ["history"],
            ["check"],
            ["clear", "k", "--token", "t"],
          ]) {
            const run = await cli.run(command);
            assert.equal(run.code, 5, `${command.join(" ")}: ${run.stderr}`);
            assert.ok(run.stderr.includes(`the SQLite file ${file} does not exist`), run.stderr);
            const json = (await cli.run([...command, "--json"])).json<ErrorDoc>();
            assert.equal(json.error.code, "STORE_NOT_FOUND");
            assert.equal(json.error.path, file);
            assert.equal(json.error.namespace, cli.namespace);
          }
          assert.equal(existsSync(file), false, "no read created the file");
          return;
        }
        const text = await cli.run(["list"]);
        assert.equal(text.code, 0, text.stderr);
        assert.ok(
          text.stdout.includes(`no poison keys in ${store.url} (namespace ${cli.namespace})`),
          text.stdout,
        );
        const doc = (await cli.run(["list", "--json"])).json<ListDoc>();
        assert.deepEqual(doc.records, []);
        assert.deepEqual([doc.count, doc.truncated, doc.cursor], [0, false, null]);
        assert.deepEqual([doc.store, doc.namespace, doc.context], [store.url, cli.namespace, null]);
        const check = await cli.run(["check", "--state", "any"]);
        assert.equal(check.code, 0, check.stderr);
        assert.match(check.stdout, /^ok: no poison keys match/);
      });

      it("put quarantines a key, audited with the OS user; same token again changes nothing", async () => {
        const put = await cli.run([
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
        const doc = put.json<{
          put: boolean;
          actor: string;
          reason: string;
          record: PoisonRecord;
        }>();
        assert.equal(doc.put, true);
        assert.equal(doc.actor, userInfo().username);
        assert.equal(doc.reason, "disk swap");
        assert.equal(doc.record.key, "maint/1");
        assert.equal(doc.record.token, "maint-1");
        assert.equal(doc.record.state, "in-progress");
        assert.equal(doc.record.operation, "manual-quarantine");
        assert.deepEqual(doc.record.data, { ticket: "OPS-1" });

        const again = await cli.run(["put", "maint/1", "--token", "maint-1"]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /already held by token "maint-1"; nothing changed/);

        const history = (await cli.run(["history", "maint/1", "--json"])).json<HistoryDoc>();
        assert.equal(history.entries.length, 1, "only the first put is audited");
        assert.equal(history.entries[0]?.action, "put");
        assert.equal(history.entries[0]?.actor, userInfo().username);
        assert.equal(history.entries[0]?.reason, "disk swap");
      });

      it("put on a key held by another token: exit 3, the holder shown, and a suggestion that runs as printed", async () => {
        const text = await cli.run(["put", "maint/1", "--token", "intruder"]);
        assert.equal(text.code, 3);
        assert.match(text.stderr, /held by token "maint-1"/);
        const show = await runSuggested(text.stderr, "show");
        assert.equal(show.code, 0, `the suggested show runs: ${show.stderr}`);
        assert.match(show.stdout, /key\s+maint\/1/);
        const json = await cli.run(["put", "maint/1", "--token", "intruder", "--json"]);
        assert.equal(json.code, 3);
        const doc = json.json<ErrorDoc>();
        assert.equal(doc.error.code, "POISON_CONFLICT");
        assert.equal(doc.error.exitCode, 3);
        assert.equal(doc.error.holder, "maint-1");
        assert.equal(doc.error.record?.token, "maint-1");
        assert.deepEqual([doc.error.store, doc.error.namespace], [store.url, cli.namespace]);
      });

      it("--actor and POISON_ACTOR name the actor in the audit log", async () => {
        assert.equal(
          (await cli.run(["put", "maint/2", "--token", "t", "--actor", "alice"])).code,
          0,
        );
        assert.equal(
          (await cli.run(["put", "maint/3", "--token", "t"], { env: { POISON_ACTOR: "bob" } }))
            .code,
          0,
        );
        const entries = (await cli.run(["history", "--json"])).json<HistoryDoc>().entries;
        assert.equal(entries.find((e) => e.key === "maint/2")?.actor, "alice");
        assert.equal(entries.find((e) => e.key === "maint/3")?.actor, "bob");
      });

      it("show: the whole record, the error with its stack, the data, the history, runnable hints", async () => {
        await lib.tryPutPoison("table/1024", "procedure-A", {
          operation: "alter-table",
          owner: "node-1:4242",
          data: { shards: [1, 2, 3, 4], done: [1, 2, 3] },
        });
        const failure = new Error("shard 4: connection reset");
        failure.stack = "Error: shard 4: connection reset\n    at alterShard (alter.ts:88:11)";
        await lib.markPoisoned("table/1024", "procedure-A", failure);

        const text = await cli.run(["show", "table/1024"]);
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
          `poison clear table/1024 --token procedure-A --reason 'what you repaired' --store ${store.url} --namespace ${cli.namespace}`,
        ])
          assert.ok(text.stdout.includes(expected), `show prints ${expected}:\n${text.stdout}`);

        const doc = (await cli.run(["show", "table/1024", "--json"])).json<{
          record: PoisonRecord;
          history: AuditEntry[];
          liveness: { live: boolean };
        }>();
        assert.equal(doc.record.state, "poisoned");
        assert.equal(doc.record.error?.stack, failure.stack);
        assert.deepEqual(doc.record.data, { shards: [1, 2, 3, 4], done: [1, 2, 3] });
        assert.deepEqual(doc.history, []);
        assert.equal(doc.liveness.live, false);
      });

      it("show of an absent key: exit 4 naming the store and namespace searched", async () => {
        const text = await cli.run(["show", "no/such/key"]);
        assert.equal(text.code, 4);
        assert.ok(
          text.stderr.includes(
            `"no/such/key" is not present in ${store.url} (namespace ${cli.namespace})`,
          ),
          text.stderr,
        );
        assert.equal(text.stdout, "");
        const list = await runSuggested(text.stderr, "list");
        assert.equal(list.code, 0, list.stderr);
        assert.match(list.stdout, /table\/1024/, "the suggested list reaches the same store");
        const json = await cli.run(["show", "no/such/key", "--json"]);
        assert.equal(json.code, 4);
        const doc = json.json<ErrorDoc>();
        assert.equal(doc.error.code, "POISON_NOT_FOUND");
        assert.deepEqual([doc.error.store, doc.error.namespace], [store.url, cli.namespace]);
      });

      it("list: every column, sorted by key; --state, --token, --operation, --prefix", async () => {
        const text = await cli.run(["list"]);
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
          "HOLDER",
          "ERROR",
        ])
          assert.match(header ?? "", new RegExp(column));
        const keys = rows.slice(0, -1).map((row) => row.split(/\s+/)[0]);
        assert.deepEqual(keys, ["maint/1", "maint/2", "maint/3", "table/1024"]);
        assert.match(
          text.stdout,
          /table\/1024\s+poisoned\s+procedure-A\s+alter-table\s+node-1:4242\s+\d+s\s+-\s+-\s+Error: shard 4: connection reset/,
        );
        const keysOf = async (args: string[]) =>
          (await cli.run(["list", ...args, "--json"])).json<ListDoc>().records.map((r) => r.key);
        assert.deepEqual(await keysOf(["--state", "poisoned"]), ["table/1024"]);
        assert.deepEqual(await keysOf(["--state", "in-progress"]), [
          "maint/1",
          "maint/2",
          "maint/3",
        ]);
        assert.deepEqual(
          await keysOf(["--state", "stale"]),
          ["maint/1", "maint/2", "maint/3"],
          "no heartbeat: stale",
        );
        assert.deepEqual(await keysOf(["--token", "t"]), ["maint/2", "maint/3"]);
        assert.deepEqual(await keysOf(["--operation", "alter-table"]), ["table/1024"]);
        assert.deepEqual(await keysOf(["--token", "t", "--prefix", "maint/3"]), ["maint/3"]);
        await lib.tryPutPoison("beat/1", "beating", { heartbeatIntervalMs: 60_000 });
        assert.deepEqual(
          await keysOf(["--state", "stale", "--prefix", "beat/"]),
          [],
          "a live holder is not stale",
        );
        const live = await cli.run(["list", "--prefix", "beat/"]);
        assert.match(
          live.stdout,
          /beat\/1\s+in-progress\s+beating\s+-\s+-\s+\d+s\s+\d+s\s+live\s+-/,
        );
        await lib.deletePoison("beat/1", "beating");
      });

      it("list --limit stops with a cursor; --cursor continues it, in text and --json", async () => {
        const first = (
          await cli.run(["list", "--prefix", "maint/", "--limit", "2", "--json"])
        ).json<ListDoc>();
        assert.deepEqual(
          first.records.map((r) => r.key),
          ["maint/1", "maint/2"],
        );
        assert.equal(first.truncated, true);
        assert.equal(first.count, 2);
        assert.equal(typeof first.cursor, "string");
        const rest = (
          await cli.run([
            "list",
            "--prefix",
            "maint/",
            "--limit",
            "2",
            "--cursor",
            first.cursor as string,
            "--json",
          ])
        ).json<ListDoc>();
        assert.deepEqual(
          rest.records.map((r) => r.key),
          ["maint/3"],
        );
        assert.deepEqual([rest.truncated, rest.cursor], [false, null]);

        const text = await cli.run(["list", "--prefix", "maint/", "--limit", "2"]);
        assert.match(text.stdout, /2 keys \(--limit 2 reached; there may be more\)/);
        const more = await runSuggested(text.stdout, "list", /more: (poison .*)$/m);
        assert.equal(more.code, 0, more.stderr);
        assert.match(more.stdout, /^KEY.*\nmaint\/3 /, "the printed command continues the listing");

        const foreign = await cli.run([
          "list",
          "--prefix",
          "table/",
          "--cursor",
          first.cursor as string,
        ]);
        assert.equal(foreign.code, 2, "a cursor of another listing is refused");
      });

      it("check: 0 when nothing matches, 1 when something does; --state, --prefix, --older-than, --json", async () => {
        const poisoned = await cli.run(["check"]);
        assert.equal(poisoned.code, 1, poisoned.stderr);
        assert.match(poisoned.stdout, /table\/1024\s+poisoned/);
        assert.match(poisoned.stdout, /1 poison key matches \(state poisoned\)/);
        const doc = await cli.run(["check", "--json"]);
        assert.equal(doc.code, 1);
        const parsed = doc.json<CheckDoc>();
        assert.deepEqual([parsed.count, parsed.matched, parsed.state], [1, true, "poisoned"]);
        assert.deepEqual(
          parsed.matches.map((r) => r.key),
          ["table/1024"],
        );
        assert.equal(
          (await cli.run(["check", "--prefix", "maint/"])).code,
          0,
          "nothing poisoned under maint/",
        );
        assert.equal((await cli.run(["check", "--prefix", "maint/", "--state", "any"])).code, 1);
        assert.equal(
          (await cli.run(["check", "--older-than", "1h"])).code,
          0,
          "poisoned, but not for an hour",
        );
        const none = (await cli.run(["check", "--older-than", "1h", "--json"])).json<CheckDoc>();
        assert.deepEqual([none.count, none.matched], [0, false]);
      });

      it("clear --token: a mismatch exits 3 and shows the holder; the holder's token clears, audited", async () => {
        const wrong = await cli.run(["clear", "maint/1", "--token", "not-mine"]);
        assert.equal(wrong.code, 3);
        assert.match(
          wrong.stderr,
          /held by token "maint-1" \(in-progress, operation manual-quarantine/,
        );
        const wrongJson = await cli.run(["clear", "maint/1", "--token", "not-mine", "--json"]);
        assert.equal(wrongJson.json<ErrorDoc>().error.holder, "maint-1");

        const right = await cli.run([
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
        const [latest] = (await cli.run(["history", "maint/1", "--json"])).json<HistoryDoc>()
          .entries;
        assert.equal(latest?.action, "delete");
        assert.equal(latest?.reason, "maintenance done");

        const absent = await cli.run(["clear", "maint/1", "--token", "maint-1", "--json"]);
        assert.equal(absent.code, 0);
        assert.equal(absent.json<{ cleared: boolean }>().cleared, false);
      });

      it("clear --token of a poisoned key is a recovery: it needs --reason and a confirmation, and is audited", async () => {
        await lib.tryPutPoison("rec/1", "op-R", { operation: "resize" });
        await lib.markPoisoned("rec/1", "op-R", new Error("half done"));
        const noReason = await cli.run(["clear", "rec/1", "--token", "op-R"]);
        assert.equal(noReason.code, 2);
        assert.match(noReason.stderr, /"rec\/1" is poisoned .*: clearing it is a recovery/);
        const noYes = await cli.run(["clear", "rec/1", "--token", "op-R", "--reason", "fixed"]);
        assert.equal(noYes.code, 2);
        assert.match(noYes.stderr, /stdin is not a terminal/);
        assert.equal(await lib.getPoison("rec/1"), "op-R");
        const done = await cli.run([
          "clear",
          "rec/1",
          "--token",
          "op-R",
          "--reason",
          "resized by hand",
          "--yes",
        ]);
        assert.equal(done.code, 0, done.stderr);
        const [entry] = (await cli.run(["history", "rec/1", "--json"])).json<HistoryDoc>().entries;
        assert.deepEqual(
          [entry?.action, entry?.reason, entry?.token],
          ["delete", "resized by hand", "op-R"],
        );
      });

      it("clear of a live holder is refused with exit 6 (heartbeat, owner, the way on); --even-if-alive clears it, audited", async () => {
        await lib.tryPutPoison("live/1", "run-L", {
          operation: "alter-table",
          owner: "node-9:77",
          heartbeatIntervalMs: 60_000,
        });
        for (const args of [
          ["clear", "live/1", "--force", "--reason", "looks stuck", "--yes"],
          ["clear", "live/1", "--token", "run-L"],
          ["clear", "--all-of-token", "run-L", "--force", "--reason", "looks stuck", "--yes"],
        ]) {
          const run = await cli.run(args);
          assert.equal(run.code, 6, `${args.join(" ")}: ${run.stderr}`);
          assert.match(run.stderr, /last heartbeat \d+(ms|\.\d+s|s) ago, every 60s/);
          assert.match(run.stderr, /owner "node-9:77"/);
          assert.match(run.stderr, /stop the operation first, or add --even-if-alive/);
          const doc = (await cli.run([...args, "--json"])).json<ErrorDoc>();
          assert.deepEqual([doc.error.code, doc.error.exitCode], ["HOLDER_ALIVE", 6]);
        }
        assert.equal(await lib.getPoison("live/1"), "run-L", "nothing was changed");
        const forced = await cli.run([
          "clear",
          "live/1",
          "--force",
          "--reason",
          "run is wedged",
          "--even-if-alive",
          "--yes",
        ]);
        assert.equal(forced.code, 0, forced.stderr);
        assert.match(forced.stdout, /its holder was live: its run loses the key and aborts/);
        const [entry] = (await cli.run(["history", "live/1", "--json"])).json<HistoryDoc>().entries;
        assert.deepEqual([entry?.action, entry?.evenIfAlive], ["force-delete", true]);
      });

      it("clear --force: refuses without --reason, without --yes off a terminal, and on an unexpected holder", async () => {
        const noReason = await cli.run(["clear", "table/1024", "--force", "--yes"]);
        assert.equal(noReason.code, 2);
        assert.match(noReason.stderr, /--force needs --reason/);
        const noYes = await cli.run(["clear", "table/1024", "--force", "--reason", "r"], {
          input: "yes\n",
        });
        assert.equal(noYes.code, 2);
        assert.match(noYes.stderr, /stdin is not a terminal/);
        const unexpected = await cli.run([
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
        assert.equal((await cli.run(["show", "table/1024"])).code, 0, "the key is still there");
      });

      it("clear --force --yes removes the key whoever holds it; history names actor, reason and the record", async () => {
        const cleared = await cli.run([
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
        assert.equal((await cli.run(["show", "table/1024"])).code, 4);

        const history = await cli.run(["history", "table/1024"]);
        assert.equal(history.code, 0);
        assert.match(
          history.stdout,
          /force-delete\s+carol\s+procedure-A\s+re-ran ALTER on shard 4/,
        );
        const [entry] = (await cli.run(["history", "table/1024", "--json"])).json<HistoryDoc>()
          .entries;
        assert.equal(entry?.action, "force-delete");
        assert.equal(entry?.record?.state, "poisoned");
        assert.equal(entry?.record?.error?.message, "shard 4: connection reset");

        const again = await cli.run(["clear", "table/1024", "--force", "--reason", "r", "--yes"]);
        assert.equal(again.code, 0);
        assert.match(again.stdout, /not present in .*; nothing to clear/);
      });

      it("clear --all-of-token removes every key of one operation in one audited step", async () => {
        await lib.tryPutPoisons(["op/a", "op/b", "op/c"], "procedure-M", { operation: "migrate" });
        await lib.markPoisoned("op/b", "procedure-M", new Error("step 2 failed"));
        await lib.tryPutPoison("op/other", "procedure-N");
        const run = await cli.run([
          "clear",
          "--all-of-token",
          "procedure-M",
          "--force",
          "--reason",
          "OPS-7: migrated by hand",
          "--yes",
          "--json",
        ]);
        assert.equal(run.code, 0, run.stderr);
        const doc = run.json<{
          records: PoisonRecord[];
          count: number;
          remaining: number;
          token: string;
        }>();
        assert.deepEqual(doc.records.map((r) => r.key).sort(), ["op/a", "op/b", "op/c"]);
        assert.deepEqual([doc.count, doc.remaining, doc.token], [3, 0, "procedure-M"]);
        assert.equal(await lib.getPoison("op/other"), "procedure-N", "another token's key stays");
        const entries = (await cli.run(["history", "--json"]))
          .json<HistoryDoc>()
          .entries.filter((e) => e.key.startsWith("op/"));
        assert.deepEqual(
          entries.map((e) => [e.action, e.reason, e.token]),
          [
            ["force-delete", "OPS-7: migrated by hand", "procedure-M"],
            ["force-delete", "OPS-7: migrated by hand", "procedure-M"],
            ["force-delete", "OPS-7: migrated by hand", "procedure-M"],
          ],
        );
        const none = await cli.run([
          "clear",
          "--all-of-token",
          "procedure-M",
          "--force",
          "--reason",
          "r",
          "--yes",
        ]);
        assert.equal(none.code, 0);
        assert.match(none.stdout, /token "procedure-M" holds no poison keys in /);
        await lib.deletePoison("op/other", "procedure-N");
      });

      it("history: newest first, --limit, KEY filter, JSON", async () => {
        const all = (await cli.run(["history", "--json"])).json<HistoryDoc>();
        assert.ok(all.entries.length >= 5);
        const times = all.entries.map((e) => e.at);
        assert.deepEqual(times, [...times].sort().reverse(), "newest first");
        const ids = all.entries.map((e) => e.id);
        assert.equal(new Set(ids).size, ids.length);
        const two = (await cli.run(["history", "--limit", "2", "--json"])).json<HistoryDoc>();
        assert.deepEqual(
          two.entries.map((e) => e.id),
          ids.slice(0, 2),
        );
        assert.equal(two.truncated, true);
        const text = await cli.run(["history", "--limit", "2"]);
        assert.match(text.stdout, /^AT\s+AGO\s+ACTION\s+KEY\s+ACTOR\s+TOKEN\s+REASON/);
        assert.match(text.stdout, /2 entries \(--limit 2 reached/);
        const none = await cli.run(["history", "never/touched"]);
        assert.equal(none.code, 0);
        assert.match(none.stdout, /no audit entries for "never\/touched" in /);
      });

      it("list pages through 1203 keys; --all-of-token refuses more keys than one atomic step, never splitting", async () => {
        const keys = Array.from({ length: 1203 }, (_, i) => `bulk/${String(i).padStart(5, "0")}`);
        for (let i = 0; i < keys.length; i += 40)
          await lib.tryPutPoisons(keys.slice(i, i + 40), "bulk-token");
        await lib.markPoisoned("bulk/01100", "bulk-token", new Error("late failure"));
        const doc = (await cli.run(["list", "--prefix", "bulk/", "--json"])).json<ListDoc>();
        assert.equal(doc.count, 1203);
        assert.deepEqual(
          doc.records.map((r) => r.key),
          keys,
        );
        const poisoned = (
          await cli.run(["list", "--prefix", "bulk/", "--state", "poisoned", "--json"])
        ).json<ListDoc>();
        assert.deepEqual(
          poisoned.records.map((r) => r.key),
          ["bulk/01100"],
        );
        const text = await cli.run(["list", "--prefix", "bulk/"]);
        assert.equal(text.stdout.trimEnd().split("\n").length, 1 + 1203 + 1, "header, rows, count");

        const all = await cli.run([
          "clear",
          "--all-of-token",
          "bulk-token",
          "--force",
          "--reason",
          "r",
          "--yes",
          "--json",
        ]);
        assert.equal(all.code, 2, all.stderr);
        assert.equal(all.json<ErrorDoc>().error.code, "TOO_MANY_KEYS");
        assert.match(
          all.stderr,
          /holds 1203 keys, more than one atomic step of the \w+ backend removes \(at most \d+\); nothing was removed/,
        );
        const hundred = await cli.run([
          "clear",
          "--all-of-token",
          "bulk-token",
          "--prefix",
          "bulk/000",
          "--force",
          "--reason",
          "r",
          "--yes",
        ]);
        if (store.name === "etcd") {
          assert.equal(hundred.code, 2, hundred.stderr);
          assert.match(
            hundred.stderr,
            /holds 100 keys, more than one atomic step of the etcd backend removes \(at most 42\)/,
          );
        } else {
          assert.equal(hundred.code, 0, hundred.stderr);
          assert.match(
            hundred.stdout,
            /force-cleared 100 keys of token "bulk-token" under prefix "bulk\/000" in one atomic step/,
          );
        }
        const left = (await cli.run(["list", "--prefix", "bulk/", "--json"])).json<ListDoc>().count;
        assert.equal(left, store.name === "etcd" ? 1203 : 1103, "all or none");
      });
    });
  }
});
