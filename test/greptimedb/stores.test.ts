/**
 * The greptimedb layout on etcd, PostgreSQL and MariaDB, over metadata written with a metasrv's
 * exact bytes (test/fixtures/greptimedb), with and without a store key prefix and a schema:
 * listing, explanation, refusal without allowWrite, clearing, and every byte afterwards.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  encodePoisonValue,
  ownMetaPrefix,
  poisonStorageKey,
  procedureKey,
  segmentKey,
  tableInfoKey,
} from "../../src/greptimedb/layout.js";
import {
  explainPoison,
  explainPoisons,
  greptimeClusterState,
  greptimeLayoutOf,
  InvalidArgumentError,
  openPoisonStore,
  PoisonConflictError,
  type PoisonStoreClient,
  ReadOnlyStoreError,
  StoreClosedError,
} from "../../src/index.js";
import { backendSkipReason, rejectsWith } from "../conformance/index.js";
import {
  ALTER_TABLE_TYPE,
  CHILD_ERROR,
  CHILD_ID,
  FULL_TABLE_NAME,
  greptimeFixture,
  HOLDER_DATA,
  HOLDER_ID,
  PARENT_ID,
  POISON_KEY,
  procedureMessage,
  SEGMENT_SIZE,
  TABLE_ID,
} from "../fixtures/greptimedb/fixtures.js";
import { mysqlUnavailable, postgresUnavailable } from "../support/servers.js";
import {
  type Entry,
  etcdPlace,
  type MetadataPlace,
  mysqlPlace,
  type PrivateEtcd,
  postgresPlace,
  privateEtcdUnavailable,
  startPrivateEtcd,
} from "./places.js";

/** A procedure that ended and left nothing in the store (the usual poisoned ALTER). */
const GONE_ID = "0f0e0d0c-0b0a-4908-8706-050403020100";
/** A procedure whose newest step was written only in part (a segment missing). */
const TORN_ID = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d";
const NON_CANONICAL_ID = "99999999-8888-4777-8666-555555555555";

/** The fixture, plus keys that exercise each verdict and each kind of damage. */
function metadata(prefix: string): { entries: Entry[]; extra: Record<string, Entry> } {
  const fixture = greptimeFixture(prefix, "stuck");
  const poison = (key: string, value: Buffer | string): Entry => ({
    key: poisonStorageKey(prefix, key),
    value: Buffer.from(value),
  });
  const tornStep = procedureKey(prefix, TORN_ID, 0, "step");
  const tornMessage = procedureMessage({
    typeName: ALTER_TABLE_TYPE,
    data: HOLDER_DATA,
    parentId: null,
    step: 0,
  });
  const extra = {
    child: poison(`table/${TABLE_ID + 1}`, Buffer.from(encodePoisonValue(CHILD_ID))),
    gone: poison("table/2048", Buffer.from(encodePoisonValue(GONE_ID))),
    goneInfo: { key: tableInfoKey(prefix, 2048), value: Buffer.from("{not json") },
    garbage: poison("table/4096", "not json"),
    nonCanonical: poison("table/8192", `{"token": "${NON_CANONICAL_ID}"}`),
    torn: poison("table/16384", Buffer.from(encodePoisonValue(TORN_ID))),
    // Segments 0 and 2 of a value that had three: segment 1 never landed.
    tornHead: { key: tornStep, value: Buffer.from(tornMessage.slice(0, SEGMENT_SIZE)) },
    tornTail: {
      key: segmentKey(tornStep, 2),
      value: Buffer.from(tornMessage.slice(2 * SEGMENT_SIZE)),
    },
  };
  return { entries: [...fixture.entries, ...Object.values(extra)], extra };
}

const actor = { actor: "ops@example.com", reason: "OPS-1234: reconciled, DESC TABLE verified" };

/** GreptimeDB's keys only: everything outside our own range. */
function theirs(dump: Map<string, string>, prefix: string): Map<string, string> {
  return new Map([...dump].filter(([key]) => !key.startsWith(ownMetaPrefix(prefix))));
}
function ours(dump: Map<string, string>, prefix: string): string[] {
  return [...dump.keys()].filter((key) => key.startsWith(ownMetaPrefix(prefix))).sort();
}

function placeTests(name: string, skip: string | null, makePlaces: () => Promise<MetadataPlace[]>) {
  describe(`greptimedb layout on ${name}`, { skip: skip ?? false, concurrency: false }, () => {
    let places: MetadataPlace[] = [];
    before(async () => {
      places = await makePlaces();
    });
    after(async () => {
      for (const place of places.splice(0)) await place.remove();
    });

    // One sequence per place: the steps build on each other (the clear comes last). A place is
    // removed as soon as its sequence ends (places on one private etcd share its key space).
    it("each place: list, explain, refuse without allowWrite, clear, compare the bytes", async () => {
      while (places.length > 0) {
        const place = places[0] as MetadataPlace;
        try {
          await scenario(place);
        } finally {
          places.shift();
          await place.remove();
        }
      }
    });
  });
}

async function scenario(place: MetadataPlace): Promise<void> {
  const prefix = place.storeKeyPrefix;
  const { entries, extra } = metadata(prefix);
  await place.write(entries);
  const written = await place.dump();
  assert.equal(written.size, entries.length, place.label);
  const stores: PoisonStoreClient[] = [];
  const open = (allowWrite: boolean) => {
    const store = openPoisonStore(place.url, allowWrite ? { allowWrite } : {});
    stores.push(store);
    return store;
  };
  try {
    const store = open(false);
    assert.equal(store.namespace, `${prefix}/__procedure_poison/`);
    assert.doesNotMatch(store.location, /allowWrite/);
    assert.equal(greptimeLayoutOf(store)?.allowWrite, false);
    assert.equal(await store.exists(), true);

    // Listing: GreptimeDB's keys, GreptimeDB's tokens, malformed values included.
    const page = await store.listPoisons();
    assert.deepEqual(
      page.records.map((r) => [r.key, r.token, r.state]),
      [
        [POISON_KEY, HOLDER_ID, "poisoned"],
        [`table/${TABLE_ID + 1}`, CHILD_ID, "poisoned"],
        ["table/16384", TORN_ID, "poisoned"],
        ["table/2048", GONE_ID, "poisoned"],
        ["table/4096", "not json", "poisoned"],
        ["table/8192", NON_CANONICAL_ID, "poisoned"],
      ],
      place.label,
    );
    assert.equal(await store.getPoison(POISON_KEY), HOLDER_ID);

    // Explanations of the whole page: nothing unparsable breaks it.
    const explained = await explainPoisons(store, page.records);
    const byKey = new Map(explained.map((e) => [e.key, e]));
    const stuck = byKey.get(POISON_KEY);
    assert.ok(stuck);
    assert.equal(stuck.table?.fullName, FULL_TABLE_NAME);
    assert.equal(stuck.table?.status, "found");
    assert.equal(stuck.procedureId, HOLDER_ID);
    assert.equal(stuck.procedure?.status, "executing");
    assert.equal(stuck.procedure?.message?.typeName, ALTER_TABLE_TYPE);
    assert.equal(stuck.procedure?.keys.length, 5, "the step and its four segments");
    assert.equal(stuck.procedure?.dataText, JSON.stringify(JSON.parse(HOLDER_DATA), null, 2));
    assert.equal(stuck.procedure?.message?.actor, "greptime_user");
    assert.equal(stuck.advice.verdict, "wait");
    assert.deepEqual(stuck.value, {
      raw: `{"token":"${HOLDER_ID}"}`,
      token: HOLDER_ID,
      canonical: true,
    });
    assert.deepEqual(stuck.problems, []);
    assert.deepEqual(stuck.cluster.switches, {
      recoveryMode: true,
      proceduresPaused: true,
      maintenanceMode: false,
    });
    assert.match(stuck.advice.reason, /procedure-manager\/resume/, "paused procedures are named");

    const child = byKey.get(`table/${TABLE_ID + 1}`);
    assert.equal(child?.procedure?.status, "rolling-back");
    assert.equal(child?.procedure?.message?.error, CHILD_ERROR);
    assert.equal(child?.procedure?.message?.parentId, PARENT_ID);
    assert.equal(child?.parent?.message?.typeName, "metasrv-procedure::Repartition");
    assert.equal(child?.table?.status, "missing");
    assert.equal(child?.advice.verdict, "wait");

    const gone = byKey.get("table/2048");
    assert.equal(gone?.procedure, null);
    assert.equal(gone?.advice.verdict, "repair-then-clear");
    assert.equal(gone?.table?.status, "malformed");
    assert.equal(gone?.table?.raw, "{not json");
    assert.ok(gone?.problems.some((p) => p.includes("table info")));

    const garbage = byKey.get("table/4096");
    assert.deepEqual(garbage?.value, { raw: "not json", token: null, canonical: false });
    assert.ok(garbage?.problems.some((p) => p.includes("poison value cannot be read")));
    assert.equal(garbage?.advice.verdict, "not-greptimedb");

    const nonCanonical = byKey.get("table/8192");
    assert.equal(nonCanonical?.value?.canonical, false);
    assert.ok(nonCanonical?.problems.some((p) => p.includes("delete_poison")));

    const torn = byKey.get("table/16384");
    assert.equal(torn?.procedure?.status, "unreadable");
    assert.equal(torn?.advice.verdict, "repair-then-clear");
    assert.ok(torn?.problems.some((p) => p.includes("segments are not 1..n")));

    // One key, and the cluster alone.
    assert.deepEqual(await explainPoison(store, POISON_KEY), stuck);
    assert.equal(await explainPoison(store, "table/1"), null);
    const cluster = await greptimeClusterState(store);
    assert.equal(cluster.metadataFound, true);
    assert.equal(cluster.switches.recoveryMode, true);

    // Read-only: every write refused, not one byte changed.
    const refusals = [
      () => store.forceDeletePoison(POISON_KEY, actor),
      () => store.forceDeletePoisons([POISON_KEY, "table/2048"], actor),
      () => store.deletePoison(POISON_KEY, HOLDER_ID),
      () => store.tryPutPoison("table/1", "maint-1"),
      () => store.markPoisoned(POISON_KEY, HOLDER_ID, new Error("x")),
      () => store.touchPoisons([POISON_KEY], HOLDER_ID),
    ];
    // One at a time, each awaited as it is made: a rejection nobody handles yet is an unhandled
    // rejection, as with any promise.
    for (const refuse of refusals) {
      const error = await rejectsWith(refuse(), ReadOnlyStoreError, {
        code: "READ_ONLY_STORE",
        byAllowWrite: true,
      });
      assert.match(error.message, /allowWrite: true/);
      assert.match(error.message, /--allow-write/);
    }
    assert.deepEqual(await place.dump(), written, "a refused write changes nothing");

    // allowWrite: the operator's clear of the stuck key, expecting its holder.
    const writer = open(true);
    await rejectsWith(
      writer.forceDeletePoison(POISON_KEY, { ...actor, expectedToken: "someone-else" }),
      PoisonConflictError,
      { holder: HOLDER_ID },
    );
    assert.deepEqual(await place.dump(), written, "a refused clear changes nothing");
    const removed = await writer.forceDeletePoison(POISON_KEY, {
      ...actor,
      expectedToken: HOLDER_ID,
    });
    assert.equal(removed?.token, HOLDER_ID);
    const cleared = await place.dump();
    // GreptimeDB's bytes are exactly what its own delete_poison leaves: the key gone, no other
    // change; ours are the audit entry alone.
    const expected = new Map(written);
    expected.delete(poisonStorageKey(prefix, POISON_KEY));
    assert.deepEqual(theirs(cleared, prefix), expected, place.label);
    const own = ours(cleared, prefix);
    assert.ok(own.length >= 1, "an audit entry");
    assert.ok(
      own.every((key) => /\/__poison_store\/audit/.test(key)),
      `only audit rows: ${own.join(", ")}`,
    );
    const audit = await writer.auditLog({ key: POISON_KEY });
    assert.equal(audit.entries.length, 1);
    assert.equal(audit.entries[0]?.action, "force-delete");
    assert.equal(audit.entries[0]?.token, HOLDER_ID);
    assert.equal(audit.entries[0]?.record?.token, HOLDER_ID);
    assert.equal(audit.entries[0]?.reason, actor.reason);
    assert.equal(await store.getPoison(POISON_KEY), null, "the read-only store sees it gone");
    assert.equal(await writer.forceDeletePoison(POISON_KEY, actor), null, "already absent");

    // A note of ours on a GreptimeDB key (a token-checked mark with its procedure id) is our row
    // alone, and a clear takes it along; the non-canonical value GreptimeDB itself could never
    // delete is cleared the same way.
    await writer.markPoisoned("table/8192", NON_CANONICAL_ID, new Error("seen by ops"));
    const marked = await place.dump();
    assert.deepEqual(theirs(marked, prefix), theirs(cleared, prefix));
    assert.ok(ours(marked, prefix).some((key) => key.includes("/record/")));
    assert.equal((await writer.inspectPoison("table/8192"))?.error?.message, "seen by ops");
    await writer.forceDeletePoison("table/8192", { ...actor, expectedToken: NON_CANONICAL_ID });
    const final = await place.dump();
    const expectedFinal = new Map(theirs(cleared, prefix));
    expectedFinal.delete(extra.nonCanonical?.key as string);
    assert.deepEqual(theirs(final, prefix), expectedFinal);
    assert.ok(!ours(final, prefix).some((key) => key.includes("/record/")), "our record went too");
    assert.equal((await writer.auditLog()).entries.length, 2);

    // Puts: GreptimeDB's exact bytes on etcd and PostgreSQL; never on MySQL.
    if (place.backend === "mysql") {
      await rejectsWith(writer.tryPutPoison("table/1", "maint-1"), ReadOnlyStoreError, {
        byAllowWrite: false,
      });
      assert.deepEqual(await place.dump(), final);
    } else {
      await writer.tryPutPoison("table/1", "maint-1", { operation: "maintenance" });
      const put = await place.dump();
      assert.equal(
        put.get(poisonStorageKey(prefix, "table/1")),
        Buffer.from('{"token":"maint-1"}').toString("hex"),
      );
      assert.equal((await writer.inspectPoison("table/1"))?.operation, "maintenance");
      await writer.deletePoison("table/1", "maint-1");
      assert.deepEqual(theirs(await place.dump(), prefix), theirs(final, prefix));
    }
  } finally {
    await Promise.all(stores.map((store) => store.close()));
  }
}

// A private etcd (the `etcd` binary): listed as the etcd backend for POISON_DRIVERS and
// POISON_REQUIRE_ALL.
const etcdSkip = await backendSkipReason("etcd", privateEtcdUnavailable);
let etcd: PrivateEtcd | null = null;
placeTests("etcd (a private server)", etcdSkip, async () => {
  etcd = await startPrivateEtcd();
  return [etcdPlace(etcd, ""), etcdPlace(etcd, "greptimedb-prod")];
});
after(async () => {
  await etcd?.stop();
});

placeTests("PostgreSQL", await backendSkipReason("postgres", postgresUnavailable), async () => [
  await postgresPlace({ storeKeyPrefix: "", schema: false }),
  await postgresPlace({ storeKeyPrefix: "greptimedb-prod", schema: true }),
  await postgresPlace({ storeKeyPrefix: "", schema: true, table: "meta_kv" }),
]);

placeTests("MariaDB", await backendSkipReason("mysql", mysqlUnavailable), async () => [
  await mysqlPlace({ storeKeyPrefix: "", schema: false }),
  await mysqlPlace({ storeKeyPrefix: "greptimedb-prod", schema: true, table: "meta_kv" }),
  await mysqlPlace({ storeKeyPrefix: "greptimedb-prod", schema: false, blob: true }),
]);

describe("greptimedb layout options", () => {
  it("are checked before anything is connected", () => {
    const bad: [string, Record<string, unknown>, string][] = [
      ["redis://127.0.0.1:6379?layout=greptimedb", {}, "url"],
      ["etcd://127.0.0.1:2379?layout=other", {}, "options.layout"],
      ["etcd://127.0.0.1:2379", { layout: "greptimedb", table: "t" }, "options.table"],
      ["etcd://127.0.0.1:2379?layout=greptimedb&metaPrefix=/x/", {}, "url"],
      ["etcd://127.0.0.1:2379?layout=greptimedb&allowWrite=yes", {}, "url"],
      [
        "etcd://127.0.0.1:2379?layout=greptimedb&storeKeyPrefix=a",
        { storeKeyPrefix: "b" },
        "options.storeKeyPrefix",
      ],
      ["etcd://127.0.0.1:2379", { layout: "greptimedb", namespace: "/x/" }, "options.namespace"],
      ["etcd://127.0.0.1:2379", { allowWrite: true }, "options.allowWrite"],
      ["postgres://u@h/db", { layout: "greptimedb", schema: "" }, "options.schema"],
      [
        "mysql://u@h/db",
        { layout: "greptimedb", storeKeyPrefix: "a\u0000" },
        "options.storeKeyPrefix",
      ],
    ];
    for (const [url, options, argument] of bad) {
      assert.throws(
        () => openPoisonStore(url, options),
        (error: unknown) => error instanceof InvalidArgumentError && error.argument === argument,
        `${url} ${JSON.stringify(options)}`,
      );
    }
  });

  it("come from the URL or the options; the location keeps them, never allowWrite or a password", async () => {
    const store = openPoisonStore(
      "postgres://gt:secret@db.internal:5432/meta?sslmode=disable&layout=greptimedb&storeKeyPrefix=gt/prod&allowWrite=true",
      { table: "meta_kv", schema: "greptime" },
    );
    assert.equal(store.namespace, "gt/prod/__procedure_poison/");
    assert.equal(
      store.location,
      "postgres://gt:***@db.internal:5432/meta?sslmode=disable&layout=greptimedb&storeKeyPrefix=gt/prod&table=meta_kv&schema=greptime",
    );
    assert.deepEqual(greptimeLayoutOf(store), {
      backend: "postgres",
      storeKeyPrefix: "gt/prod",
      table: "meta_kv",
      schema: "greptime",
      allowWrite: true,
    });
    const same = openPoisonStore("etcd://127.0.0.1:2379", {
      layout: "greptimedb",
      namespace: "/__procedure_poison/",
    });
    assert.equal(same.location, "etcd://127.0.0.1:2379?layout=greptimedb");
    assert.equal(greptimeLayoutOf(openPoisonStore("memory:")), null);
    await rejectsWith(explainPoison(openPoisonStore("memory:"), "k"), InvalidArgumentError, {
      argument: "store",
    });
    await Promise.all([store.close(), same.close()]);
  });

  it("explanations refuse a closed store before reading anything", async () => {
    const store = openPoisonStore("etcd://127.0.0.1:1?layout=greptimedb");
    await store.close();
    await rejectsWith(explainPoison(store, "table/1"), StoreClosedError);
    await rejectsWith(explainPoisons(store, []), StoreClosedError);
    await rejectsWith(greptimeClusterState(store), StoreClosedError);
  });
});
