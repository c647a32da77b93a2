/** GreptimeDB's metadata layout (src/greptimedb/layout.ts): pure functions over the exact bytes a
 *  metasrv writes (test/fixtures/greptimedb/fixtures.ts), with and without a store key prefix. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  canonicalProcedureId,
  DEFAULT_MAX_METADATA_VALUE_SIZE,
  displayBytes,
  encodePoisonValue,
  joinSegments,
  ownMetaPrefix,
  parsePoisonStorageKey,
  parsePoisonValue,
  parseProcedureKey,
  parseProcedureMessage,
  parseSwitches,
  parseTableInfo,
  parseTableNameKey,
  parseTableNameValue,
  poisonNamespace,
  poisonStorageKey,
  procedureKey,
  procedurePrefix,
  segmentKey,
  splitValue,
  summarizeProcedure,
  switchKeys,
  tableIdOfPoisonKey,
  tableInfoKey,
} from "../../src/greptimedb/layout.js";
import {
  ALTER_TABLE_TYPE,
  CHILD_ERROR,
  CHILD_ID,
  COMMITTED_ID,
  entriesUnder,
  FULL_TABLE_NAME,
  greptimeFixture,
  HOLDER_DATA,
  HOLDER_ID,
  PARENT_ID,
  POISON_KEY,
  procedureMessage,
  SEGMENT_SIZE,
  STORE_KEY_PREFIXES,
  stored,
  TABLE_ID,
} from "../fixtures/greptimedb/fixtures.js";

const hex = (text: string | Uint8Array) =>
  Buffer.from(typeof text === "string" ? Buffer.from(text) : text).toString("hex");

describe("poison keys", () => {
  it("match GreptimeDB's own serialization test byte for byte (state_store.rs)", () => {
    // test_serialize_deserialize: "/__procedure_poison/table/1" → {"token":"expected_token"}
    assert.equal(poisonStorageKey("", "table/1"), "/__procedure_poison/table/1");
    assert.equal(
      Buffer.from(encodePoisonValue("expected_token")).toString(),
      '{"token":"expected_token"}',
    );
  });

  it("are the store key prefix, then /__procedure_poison/, then the key (ChrootKvBackend)", () => {
    assert.equal(poisonNamespace(), "/__procedure_poison/");
    assert.equal(poisonNamespace("greptimedb-prod"), "greptimedb-prod/__procedure_poison/");
    assert.equal(
      poisonStorageKey("greptimedb-prod", POISON_KEY),
      "greptimedb-prod/__procedure_poison/table/1024",
    );
    // A prefix ending in "/" gives two slashes: the chroot adds no separator of its own.
    assert.equal(poisonStorageKey("gt/", POISON_KEY), "gt//__procedure_poison/table/1024");
    // The bytes docs/GREPTIMEDB.md shows (PostgreSQL bytea hex).
    assert.equal(
      hex(poisonStorageKey("", POISON_KEY)),
      "2f5f5f70726f6365647572655f706f69736f6e2f7461626c652f31303234",
    );
    assert.equal(
      hex(encodePoisonValue(HOLDER_ID)),
      "7b22746f6b656e223a2235643163376135322d336534662d346238612d396336312d306632653864376236613134227d",
    );
  });

  for (const prefix of STORE_KEY_PREFIXES) {
    it(`decode back to the poison key (prefix ${JSON.stringify(prefix)})`, () => {
      const fixture = greptimeFixture(prefix);
      const parsed = parsePoisonStorageKey(prefix, fixture.poison.storageKey);
      assert.deepEqual(parsed, { ok: true, key: POISON_KEY });
      assert.deepEqual(parsePoisonValue(fixture.poison.value), {
        ok: true,
        token: HOLDER_ID,
        canonical: true,
      });
      assert.equal(tableIdOfPoisonKey(POISON_KEY), TABLE_ID);
    });
  }

  it("refuse keys outside the namespace as malformed, never by throwing", () => {
    assert.deepEqual(parsePoisonStorageKey("a", "/__procedure_poison/table/1"), {
      ok: false,
      raw: "/__procedure_poison/table/1",
      problem: 'does not start with "a/__procedure_poison/"',
    });
    const empty = parsePoisonStorageKey("", "/__procedure_poison/");
    assert.equal(empty.ok, false);
  });

  it("escape tokens exactly as serde_json does", () => {
    // serde_json: \" \\ \b \t \n \f \r, other controls as lowercase \u00xx; "/", DEL and
    // non-ASCII are written as they are.
    const token = 'a"b\\c/\b\t\n\f\r\u0001\u001f\u007fé☃😀\u2028';
    assert.equal(
      Buffer.from(encodePoisonValue(token)).toString(),
      '{"token":"a\\"b\\\\c/\\b\\t\\n\\f\\r\\u0001\\u001f\u007fé☃😀\u2028"}',
    );
    assert.deepEqual(parsePoisonValue(encodePoisonValue(token)), {
      ok: true,
      token,
      canonical: true,
    });
  });

  it("flag a value GreptimeDB's delete_poison would not match (other bytes, same token)", () => {
    for (const value of ['{ "token": "x" }', '{"token":"x","by":"hand"}', '{"token":"\\u0078"}']) {
      assert.deepEqual(parsePoisonValue(value), { ok: true, token: "x", canonical: false }, value);
    }
  });

  it("return anything else raw, with the reason", () => {
    const cases: [string | Uint8Array, RegExp][] = [
      ["", /not JSON/],
      ["x", /not JSON/],
      ['"x"', /not a JSON object/],
      ["[1]", /not a JSON object/],
      ["null", /not a JSON object/],
      ['{"token":1}', /no string "token"/],
      ['{"holder":"x"}', /no string "token"/],
      [Uint8Array.of(0x7b, 0xff, 0x7d), /not valid UTF-8/],
    ];
    for (const [value, problem] of cases) {
      const parsed = parsePoisonValue(value);
      assert.equal(parsed.ok, false, String(value));
      if (parsed.ok) continue;
      assert.match(parsed.problem, problem);
      assert.equal(parsed.raw, displayBytes(value));
    }
    assert.equal(displayBytes(Uint8Array.of(0x7b, 0xff, 0x7d)), "\\x7bff7d");
  });

  it("never throw on any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (value) => {
        const parsed = parsePoisonValue(value);
        assert.equal(typeof parsed.ok, "boolean");
      }),
    );
    fc.assert(
      fc.property(fc.string(), (token) => {
        assert.deepEqual(parsePoisonValue(encodePoisonValue(token)), {
          ok: true,
          token,
          canonical: true,
        });
      }),
    );
  });

  it("name a table only for table/<u32>", () => {
    assert.equal(tableIdOfPoisonKey("table/0"), 0);
    assert.equal(tableIdOfPoisonKey("table/4294967295"), 4294967295);
    for (const key of [
      "table/4294967296",
      "table/",
      "table/1/2",
      "table/-1",
      "flow/1",
      "table/1a",
    ]) {
      assert.equal(tableIdOfPoisonKey(key), null, key);
    }
  });
});

describe("procedure ids", () => {
  it("accept the forms Uuid::parse_str accepts, in canonical form", () => {
    const id = "5d1c7a52-3e4f-4b8a-9c61-0f2e8d7b6a14";
    for (const form of [
      id,
      id.toUpperCase(),
      id.replaceAll("-", ""),
      `{${id}}`,
      `urn:uuid:${id}`,
    ]) {
      assert.equal(canonicalProcedureId(form), id, form);
    }
    for (const bad of [
      "",
      "x",
      `${id}0`,
      id.replace("-", "+"),
      "5d1c7a52-3e4f4b8a-9c61-0f2e8d7b6a14-",
    ]) {
      assert.equal(canonicalProcedureId(bad), null, bad);
    }
  });
});

describe("procedure store keys", () => {
  it("are <prefix>/__procedure__/procedure/<id>/<10-digit step>.<type> (store.rs ParsedKey)", () => {
    assert.equal(
      procedureKey("", HOLDER_ID, 2, "step"),
      `/__procedure__/procedure/${HOLDER_ID}/0000000002.step`,
    );
    assert.equal(
      procedureKey("gp", HOLDER_ID, 13, "rollback"),
      `gp/__procedure__/procedure/${HOLDER_ID}/0000000013.rollback`,
    );
    assert.equal(procedurePrefix("gp", HOLDER_ID), `gp/__procedure__/procedure/${HOLDER_ID}/`);
    assert.equal(segmentKey("k", 1), "k/0000000001");
  });

  for (const prefix of STORE_KEY_PREFIXES) {
    it(`parse back, segments included (prefix ${JSON.stringify(prefix)})`, () => {
      const key = procedureKey(prefix, HOLDER_ID, 7, "commit");
      assert.deepEqual(parseProcedureKey(prefix, key), {
        ok: true,
        procedureId: HOLDER_ID,
        step: 7,
        type: "commit",
        segment: 0,
      });
      assert.deepEqual(parseProcedureKey(prefix, segmentKey(key, 12)), {
        ok: true,
        procedureId: HOLDER_ID,
        step: 7,
        type: "commit",
        segment: 12,
      });
    });
  }

  it("refuse what GreptimeDB's loader would not accept", () => {
    const root = "/__procedure__/procedure/";
    for (const key of [
      `${root}${HOLDER_ID}/0000000001.done`,
      `${root}${HOLDER_ID}/0000000001`,
      `${root}${HOLDER_ID}/x.step`,
      `${root}not-a-uuid/0000000001.step`,
      `${root}${HOLDER_ID}/0000000001.step/x`,
      `${root}${HOLDER_ID}/0000000001.step/0000000000`,
      `${root}${HOLDER_ID}/99999999999.step`,
      `${root}${HOLDER_ID}/`,
      `${root}${HOLDER_ID}/a/b/c`,
      `/__procedure__/other/${HOLDER_ID}/0000000001.step`,
    ]) {
      const parsed = parseProcedureKey("", key);
      assert.equal(parsed.ok, false, key);
    }
  });
});

describe("segmented values", () => {
  it("split as KvStateStore::put does: whole when it fits, else chunks with 10-digit suffixes", () => {
    const text = (key: string, value: string, size?: number) =>
      splitValue(key, value, size).map((p) => [p.key, Buffer.from(p.value).toString()]);
    assert.deepEqual(text("k", "abc", 3), [["k", "abc"]]);
    assert.deepEqual(text("k", "abc"), [["k", "abc"]]);
    const parts = text("k", "abcdefg", 3);
    assert.deepEqual(parts, [
      ["k", "abc"],
      ["k/0000000001", "def"],
      ["k/0000000002", "g"],
    ]);
    assert.throws(() => splitValue("k", "abcd", 0), RangeError);
  });

  it("split bytes, not characters, and join them back whatever the read order", () => {
    const value = "é".repeat(10); // 20 bytes: a 3-byte chunk splits a character
    const pieces = splitValue("k", value, 3);
    assert.equal(pieces.length, 7);
    const shuffled = [...pieces].reverse().map((p) => ({ key: p.key, value: p.value }));
    const { values, broken } = joinSegments(shuffled);
    assert.deepEqual(broken, []);
    assert.equal(values.length, 1);
    assert.equal(Buffer.from(values[0]?.value ?? []).toString(), value);
    assert.equal(values[0]?.segments, 6);
  });

  it("round-trip any value and size", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 1, max: 64 }),
        (value, size) => {
          const { values, broken } = joinSegments(splitValue("/a/0000000001.step", value, size));
          assert.deepEqual(broken, []);
          assert.equal(values.length, 1);
          assert.deepEqual(Buffer.from(values[0]?.value ?? []), Buffer.from(value));
        },
      ),
    );
  });

  it("report a value written only in part, instead of joining what is there", () => {
    const key = procedureKey("", HOLDER_ID, 0, "step");
    const pieces = stored(key, "x".repeat(40), 10); // key, /1, /2, /3
    const { values, broken } = joinSegments(pieces.filter((p) => !p.key.endsWith("/0000000002")));
    assert.deepEqual(values, []);
    assert.equal(broken.length, 1);
    assert.equal(broken[0]?.kind, "gap");
    assert.match(broken[0]?.problem ?? "", /found 1, 3/);
    assert.deepEqual(broken[0]?.keys, [key, segmentKey(key, 1), segmentKey(key, 3)]);

    const orphan = joinSegments(pieces.filter((p) => p.key !== key));
    assert.deepEqual(
      orphan.broken.map((b) => b.kind),
      ["orphan", "orphan", "orphan"],
    );
  });
});

describe("procedure summaries", () => {
  for (const prefix of STORE_KEY_PREFIXES) {
    it(`explain the holder of the poison key from its segmented step (prefix ${JSON.stringify(prefix)})`, () => {
      const fixture = greptimeFixture(prefix);
      assert.ok(fixture.holderKeys.length > 1, "the fixture's step is segmented");
      const token = parsePoisonValue(fixture.poison.value);
      assert.ok(token.ok);
      const range = entriesUnder(fixture.entries, procedurePrefix(prefix, token.token));
      assert.deepEqual(
        range.map((e) => e.key),
        fixture.holderKeys,
      );
      const summary = summarizeProcedure(prefix, token.token, range);
      assert.ok(summary);
      assert.equal(summary.procedureId, HOLDER_ID);
      assert.equal(summary.status, "executing");
      assert.equal(summary.step, 0);
      assert.equal(summary.message?.typeName, ALTER_TABLE_TYPE);
      assert.equal(summary.message?.parentId, null);
      assert.equal(summary.message?.error, null);
      assert.equal(summary.message?.actor, "greptime_user");
      assert.equal(summary.message?.data, HOLDER_DATA);
      assert.deepEqual(summary.data, JSON.parse(HOLDER_DATA));
      assert.equal(summary.dataText, JSON.stringify(JSON.parse(HOLDER_DATA), null, 2));
      assert.deepEqual(summary.keys, fixture.holderKeys);
      assert.deepEqual(summary.problems, []);
    });
  }

  it("answer null when the procedure left nothing (it ended and its runner deleted its state)", () => {
    const fixture = greptimeFixture("", "poisoned");
    assert.deepEqual(fixture.holderKeys, []);
    const range = entriesUnder(fixture.entries, procedurePrefix("", HOLDER_ID));
    assert.equal(summarizeProcedure("", HOLDER_ID, range), null);
  });

  it("take the newest step of a procedure with a normal and a segmented step", () => {
    const first = procedureMessage({
      typeName: ALTER_TABLE_TYPE,
      data: '{"state":"Prepare"}',
      parentId: null,
      step: 0,
    });
    const big = JSON.stringify({ state: "UpdateMetadata", note: "ü".repeat(400) });
    const second = procedureMessage({
      typeName: ALTER_TABLE_TYPE,
      data: big,
      parentId: null,
      step: 1,
    });
    const entries = [
      ...stored(procedureKey("", HOLDER_ID, 0, "step"), first, SEGMENT_SIZE),
      ...stored(procedureKey("", HOLDER_ID, 1, "step"), second, SEGMENT_SIZE),
    ];
    assert.equal(entries[0]?.key, procedureKey("", HOLDER_ID, 0, "step"));
    assert.equal(entries[1]?.key, procedureKey("", HOLDER_ID, 1, "step"));
    assert.equal(entries[2]?.key, segmentKey(procedureKey("", HOLDER_ID, 1, "step"), 1));
    assert.equal(entries.length, 3, "step 0 whole, step 1 in two parts");
    const summary = summarizeProcedure("", HOLDER_ID, entries.reverse());
    assert.equal(summary?.status, "executing");
    assert.equal(summary?.step, 1);
    assert.deepEqual(summary?.data, JSON.parse(big));
    assert.deepEqual(summary?.problems, []);
  });

  it("show a rolling-back child with its error and parent", () => {
    const fixture = greptimeFixture("greptimedb-prod");
    const range = entriesUnder(fixture.entries, procedurePrefix("greptimedb-prod", CHILD_ID));
    assert.deepEqual(
      range.map((e) => e.key),
      [fixture.child.stepKey, fixture.child.rollbackKey],
    );
    const summary = summarizeProcedure("greptimedb-prod", CHILD_ID, range);
    assert.equal(summary?.status, "rolling-back");
    assert.equal(summary?.step, 1);
    assert.equal(summary?.message?.error, CHILD_ERROR);
    assert.equal(summary?.message?.parentId, PARENT_ID);
    assert.equal(summary?.message?.typeName, "metasrv-procedure::RepartitionGroup");
  });

  it("show a committed procedure with the message of its last step", () => {
    const fixture = greptimeFixture("");
    const range = entriesUnder(fixture.entries, procedurePrefix("", COMMITTED_ID));
    const summary = summarizeProcedure("", COMMITTED_ID, range);
    assert.equal(summary?.status, "committed");
    assert.equal(summary?.step, 1);
    assert.equal(summary?.message?.typeName, "metasrv-procedure::CreateDatabase");
    assert.deepEqual(summary?.problems, []);
  });

  it("flag what GreptimeDB could not load, and still show what it can", () => {
    const key0 = procedureKey("", HOLDER_ID, 0, "step");
    const key1 = procedureKey("", HOLDER_ID, 1, "step");
    const good = procedureMessage({ typeName: "T", data: "not json", parentId: null, step: 0 });
    const broken = stored(key1, "y".repeat(50), 20).filter((e) => !e.key.endsWith("1"));
    const summary = summarizeProcedure("", HOLDER_ID, [...stored(key0, good), ...broken]);
    assert.equal(summary?.status, "unreadable");
    assert.equal(summary?.step, 1);
    assert.equal(summary?.message?.typeName, "T");
    assert.equal(summary?.data, null);
    assert.equal(summary?.dataText, "not json");
    assert.ok(summary?.problems.some((p) => p.includes("cannot be joined")));
    assert.ok(summary?.problems.some((p) => p.includes("data is not JSON")));

    const garbage = summarizeProcedure("", HOLDER_ID, [{ key: key1, value: "{" }]);
    assert.equal(garbage?.status, "unreadable");
    assert.equal(garbage?.message, null);

    const stray = summarizeProcedure("", HOLDER_ID, [{ key: `${key1}x`, value: good }]);
    assert.equal(stray?.status, "unreadable");
    assert.ok(stray?.problems.some((p) => p.includes("no readable step")));
  });

  it("never throw on any entries", () => {
    const key = fc.oneof(
      fc.constant(procedureKey("", HOLDER_ID, 0, "step")),
      fc.constant(procedureKey("", HOLDER_ID, 1, "rollback")),
      fc.constant(segmentKey(procedureKey("", HOLDER_ID, 1, "rollback"), 1)),
      fc.string().map((s) => procedurePrefix("", HOLDER_ID) + s),
    );
    const value = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.json(),
      fc.constant(procedureMessage({ typeName: "T", data: "{}", parentId: null, step: 0 })),
    );
    fc.assert(
      fc.property(fc.array(fc.record({ key, value }), { maxLength: 6 }), (entries) => {
        summarizeProcedure("", HOLDER_ID, entries);
      }),
    );
  });
});

describe("procedure messages", () => {
  it("read every field of ProcedureMessage", () => {
    const parsed = parseProcedureMessage(
      procedureMessage({
        typeName: "T",
        data: "{}",
        parentId: PARENT_ID.toUpperCase(),
        step: 4,
        error: "boom",
        context: { actor: "root", event_context: { reason: "manual" } },
      }),
    );
    assert.deepEqual(parsed, {
      ok: true,
      message: {
        typeName: "T",
        data: "{}",
        parentId: PARENT_ID,
        step: 4,
        error: "boom",
        actor: "root",
        context: { actor: "root", event_context: { reason: "manual" } },
      },
    });
  });

  it("refuse messages serde would refuse", () => {
    for (const value of [
      '{"data":"{}","parent_id":null,"step":0}',
      '{"type_name":"T","data":{},"parent_id":null,"step":0}',
      '{"type_name":"T","data":"{}","parent_id":"p","step":0}',
      '{"type_name":"T","data":"{}","parent_id":null,"step":-1}',
      '{"type_name":"T","data":"{}","parent_id":null,"step":4294967296}',
      '{"type_name":"T","data":"{}","parent_id":null,"step":0,"error":1}',
      '{"type_name":"T","data":"{}","parent_id":null,"step":0,"context":[]}',
    ]) {
      assert.equal(parseProcedureMessage(value).ok, false, value);
    }
  });
});

describe("table info and table names", () => {
  for (const prefix of STORE_KEY_PREFIXES) {
    it(`resolve table/1024 to ${FULL_TABLE_NAME} (prefix ${JSON.stringify(prefix)})`, () => {
      const fixture = greptimeFixture(prefix);
      const tableId = tableIdOfPoisonKey(POISON_KEY);
      assert.equal(tableId, TABLE_ID);
      const key = tableInfoKey(prefix, TABLE_ID);
      assert.equal(key, `${prefix}__table_info/1024`);
      const entry = fixture.entries.find((e) => e.key === key);
      assert.ok(entry);
      assert.deepEqual(parseTableInfo(entry.value), {
        ok: true,
        tableId: TABLE_ID,
        catalog: "greptime",
        schema: "public",
        table: "monitor",
        fullName: FULL_TABLE_NAME,
        version: 3,
      });
      assert.deepEqual(parseTableNameKey(prefix, fixture.tableName.key), {
        ok: true,
        catalog: "greptime",
        schema: "public",
        table: "monitor",
      });
      assert.deepEqual(parseTableNameValue(fixture.tableName.value), {
        ok: true,
        tableId: TABLE_ID,
      });
    });
  }

  it("show malformed table info raw", () => {
    for (const value of [
      "",
      "{}",
      '{"table_info":{}}',
      '{"table_info":{"ident":{"table_id":"1"},"name":"t","catalog_name":"c","schema_name":"s"}}',
      '{"table_info":{"ident":{"table_id":1},"name":"t","schema_name":"s"}}',
    ]) {
      const parsed = parseTableInfo(value);
      assert.equal(parsed.ok, false, value);
      if (!parsed.ok) assert.equal(parsed.raw, value);
    }
  });

  it("refuse table name keys outside NAME_PATTERN", () => {
    for (const key of ["__table_name/a/b", "__table_name/a/b/c/d", "__table_name/1a/b/c", "x"]) {
      assert.equal(parseTableNameKey("", key).ok, false, key);
    }
    assert.equal(parseTableNameValue('{"table_id":"1"}').ok, false);
  });
});

describe("switches", () => {
  for (const prefix of STORE_KEY_PREFIXES) {
    it(`read recovery mode and paused procedures from their keys (prefix ${JSON.stringify(prefix)})`, () => {
      const fixture = greptimeFixture(prefix);
      assert.equal(fixture.switches.recovery, `${prefix}__switches/recovery`);
      assert.equal(fixture.switches.pauseProcedure, `${prefix}__switches/pause_procedure`);
      const keys = fixture.entries.map((e) => e.key);
      assert.deepEqual(parseSwitches(prefix, keys), {
        recoveryMode: true,
        proceduresPaused: true,
        maintenanceMode: false,
      });
      assert.deepEqual(parseSwitches(prefix, []), {
        recoveryMode: false,
        proceduresPaused: false,
        maintenanceMode: false,
      });
    });
  }

  it("count the legacy maintenance key, and only keys under the right prefix", () => {
    assert.equal(parseSwitches("", ["__maintenance"]).maintenanceMode, true);
    assert.equal(parseSwitches("", [switchKeys("").maintenance]).maintenanceMode, true);
    assert.equal(parseSwitches("p", ["__switches/recovery"]).recoveryMode, false);
  });
});

describe("our own keys", () => {
  it("live under <prefix>/__poison_store/, outside every range GreptimeDB reads", () => {
    assert.equal(ownMetaPrefix(), "/__poison_store/");
    assert.equal(ownMetaPrefix("greptimedb-prod"), "greptimedb-prod/__poison_store/");
    for (const prefix of STORE_KEY_PREFIXES) {
      const own = ownMetaPrefix(prefix);
      for (const theirs of [
        poisonNamespace(prefix),
        procedurePrefix(prefix, HOLDER_ID).slice(0, -HOLDER_ID.length - 1),
        tableInfoKey(prefix, TABLE_ID).replace(/\d+$/, ""),
        `${prefix}__table_name/`,
        `${prefix}__switches/`,
      ]) {
        assert.ok(!own.startsWith(theirs) && !theirs.startsWith(own), `${own} vs ${theirs}`);
        // GreptimeDB's RDS backends read a prefix with LIKE, where "_" matches any byte.
        const like = new RegExp(
          `^${theirs.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replaceAll("_", ".")}`,
          "s",
        );
        assert.ok(!like.test(`${own}record/x`), `${theirs} as a LIKE pattern`);
      }
    }
  });

  it("the default max value size is metasrv's 1500KiB", () => {
    assert.equal(DEFAULT_MAX_METADATA_VALUE_SIZE, 1_536_000);
  });
});
