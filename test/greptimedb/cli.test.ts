/**
 * The built `poison` CLI on a GreptimeDB metasrv's metadata (`--store '…?layout=greptimedb'`):
 * list and show explain, clear is refused without --allow-write and, with it, removes the poison
 * key and nothing else of GreptimeDB's. On a private etcd and on PostgreSQL.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ownMetaPrefix, poisonStorageKey } from "../../src/greptimedb/layout.js";
import { runPoison } from "../cli/support.js";
import { backendSkipReason } from "../conformance/index.js";
import {
  FULL_TABLE_NAME,
  greptimeFixture,
  HOLDER_ID,
  POISON_KEY,
} from "../fixtures/greptimedb/fixtures.js";
import { postgresUnavailable } from "../support/servers.js";
import {
  etcdPlace,
  type MetadataPlace,
  type PrivateEtcd,
  postgresPlace,
  privateEtcdUnavailable,
  startPrivateEtcd,
} from "./places.js";

const PREFIX = "greptimedb-prod";

async function recovery(place: MetadataPlace): Promise<void> {
  await place.write(greptimeFixture(PREFIX, "poisoned").entries);
  const before = await place.dump();
  const store = ["--store", place.url];

  const list = runPoison(["list", ...store]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /recovery mode ON, procedures PAUSED/);
  assert.match(
    list.stdout,
    new RegExp(`table/1024 +${FULL_TABLE_NAME.replaceAll(".", "\\.")} +repair-then-clear`),
  );

  const listed = runPoison(["list", ...store, "--json"]).json<{
    records: {
      key: string;
      greptimedb: { table: { fullName: string }; advice: { verdict: string } };
    }[];
  }>();
  assert.equal(listed.records[0]?.greptimedb.table.fullName, FULL_TABLE_NAME);
  assert.equal(listed.records[0]?.greptimedb.advice.verdict, "repair-then-clear");

  const show = runPoison(["show", POISON_KEY, ...store]);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /no state in GreptimeDB's procedure store/);
  assert.match(show.stdout, /verdict +repair-then-clear/);
  assert.match(show.stdout, new RegExp(`--allow-write --force --expect-token ${HOLDER_ID}`));

  const refused = runPoison([
    "clear",
    POISON_KEY,
    ...store,
    "--force",
    "--reason",
    "OPS-1",
    "--yes",
  ]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /opens read-only/);
  assert.match(refused.stderr, /--allow-write/);
  assert.deepEqual(await place.dump(), before);

  const cleared = runPoison([
    "clear",
    POISON_KEY,
    ...store,
    "--allow-write",
    "--force",
    "--expect-token",
    HOLDER_ID,
    "--reason",
    "OPS-1: reconciled, DESC TABLE verified",
    "--yes",
  ]);
  assert.equal(cleared.code, 0, cleared.stderr);
  const after = await place.dump();
  const expected = new Map(before);
  expected.delete(poisonStorageKey(PREFIX, POISON_KEY));
  const theirs = new Map([...after].filter(([key]) => !key.startsWith(ownMetaPrefix(PREFIX))));
  assert.deepEqual(theirs, expected, "only the poison key went");

  const history = runPoison(["history", POISON_KEY, ...store, "--json"]).json<{
    entries: { reason: string; token: string }[];
  }>();
  assert.equal(history.entries[0]?.reason, "OPS-1: reconciled, DESC TABLE verified");
  assert.equal(history.entries[0]?.token, HOLDER_ID);
  assert.equal(runPoison(["show", POISON_KEY, ...store]).code, 4);
}

// A private etcd (the `etcd` binary): listed as the etcd backend for POISON_DRIVERS and
// POISON_REQUIRE_ALL.
const etcdSkip = await backendSkipReason("etcd", privateEtcdUnavailable);
const postgresSkip = await backendSkipReason("postgres", postgresUnavailable);
describe("poison CLI on ?layout=greptimedb", () => {
  let etcd: PrivateEtcd | null = null;
  const places: MetadataPlace[] = [];
  after(async () => {
    for (const place of places) await place.remove();
    await etcd?.stop();
  });

  it("etcd: list, show, refused clear, clear with --allow-write", {
    skip: etcdSkip ?? false,
  }, async () => {
    etcd = await startPrivateEtcd();
    const place = etcdPlace(etcd, PREFIX);
    await recovery(place);
  });

  it("PostgreSQL: list, show, refused clear, clear with --allow-write", {
    skip: postgresSkip ?? false,
  }, async () => {
    const place = await postgresPlace({ storeKeyPrefix: PREFIX, schema: true });
    places.push(place);
    await recovery(place);
  });
});
