/** The SQLite file layout: versioned, refused when newer, forgiving of malformed rows. */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import {
  BackendUnavailableError,
  openPoisonStore,
  SQLITE_SCHEMA_VERSION,
} from "../../src/index.js";
import { rejectsWith } from "../conformance/index.js";

describe("sqlite: file layout", () => {
  const dir = mkdtempSync(join(tmpdir(), "poison-layout-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads never create the file; the first write creates it", async () => {
    const path = join(dir, "lazy.db");
    const store = openPoisonStore(`sqlite:${path}`);
    assert.equal(await store.getPoison("x"), null);
    assert.equal(await store.inspectPoison("x"), null);
    assert.deepEqual(await store.listPoisons(), { records: [], cursor: null });
    assert.deepEqual(await store.auditLog(), { entries: [], cursor: null });
    assert.equal(await store.exists(), false);
    await store.deletePoison("x", "t");
    assert.equal(await store.forceDeletePoison("x", { actor: "a", reason: "r" }), null);
    assert.equal(existsSync(path), false, "nothing that only reads or removes created the file");
    await store.tryPutPoison("x", "t");
    assert.equal(existsSync(path), true);
    assert.equal(await store.exists(), true);
    assert.equal(await store.getPoison("x"), "t");
    await store.close();
  });

  it("records its layout version in poison_meta", async () => {
    const path = join(dir, "version.db");
    const store = openPoisonStore(`sqlite:${path}`);
    await store.tryPutPoison("x", "t");
    await store.close();
    const db = new Database(path, { readonly: true });
    const row = db.prepare("SELECT value FROM poison_meta WHERE name = 'schema_version'").get() as {
      value: string;
    };
    db.close();
    assert.equal(Number(row.value), SQLITE_SCHEMA_VERSION);
  });

  it("refuses a file written by a newer layout, saying what to do", async () => {
    const path = join(dir, "newer.db");
    const db = new Database(path);
    db.exec("CREATE TABLE poison_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)");
    db.prepare("INSERT INTO poison_meta VALUES ('schema_version', ?)").run(
      String(SQLITE_SCHEMA_VERSION + 1),
    );
    db.close();
    const store = openPoisonStore(`sqlite:${path}`);
    const error = await rejectsWith(store.getPoison("x"), BackendUnavailableError, {
      backend: "sqlite",
    });
    assert.match(error.message, /newer than this poison-store understands.*upgrade poison-store/);
    await store.close();
  });

  it("reads a file of layout 1 as it is, and migrates it to layout 2 on the first write", async () => {
    const path = join(dir, "v1.db");
    const db = new Database(path);
    db.exec(`CREATE TABLE poison_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO poison_meta VALUES ('schema_version', '1');
      CREATE TABLE poison_keys (key BLOB PRIMARY KEY, token TEXT NOT NULL, state TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, heartbeat_at TEXT, operation TEXT,
        owner TEXT, error TEXT, data TEXT) WITHOUT ROWID;
      CREATE TABLE poison_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
        action TEXT NOT NULL, key BLOB NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL,
        token TEXT, record TEXT);`);
    db.prepare(
      "INSERT INTO poison_keys VALUES (?, 'old', 'poisoned', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', NULL, 'alter', NULL, NULL, NULL)",
    ).run(Buffer.from("/ns/old"));
    db.close();
    const store = openPoisonStore(`sqlite:${path}`, { namespace: "/ns/" });
    assert.equal((await store.inspectPoison("old"))?.operation, "alter");
    assert.equal((await store.listPoisons()).records.length, 1);
    const version = () => {
      const check = new Database(path, { readonly: true });
      const row = check
        .prepare("SELECT value FROM poison_meta WHERE name = 'schema_version'")
        .get() as { value: string };
      check.close();
      return Number(row.value);
    };
    assert.equal(version(), 1, "reads left the layout as it was");
    await store.tryPutPoison("new", "t", { heartbeatIntervalMs: 1000 });
    assert.equal(version(), SQLITE_SCHEMA_VERSION);
    assert.equal((await store.inspectPoison("new"))?.heartbeatIntervalMs, 1000);
    assert.equal((await store.inspectPoison("old"))?.token, "old");
    await store.close();
  });

  it("reads, lists and force-deletes a row whose stored values are malformed", async () => {
    const path = join(dir, "malformed.db");
    const store = openPoisonStore(`sqlite:${path}`, { namespace: "/ns/" });
    await store.tryPutPoison("bad", "t");
    const db = new Database(path);
    db.prepare(
      "UPDATE poison_keys SET state = 'exploded', error = '{not json', data = 'nope' WHERE key = ?",
    ).run(Buffer.from("/ns/bad"));
    db.close();
    const record = await store.inspectPoison("bad");
    assert.equal(
      record?.state,
      "poisoned",
      "an unknown state reads as poisoned: a doubt never frees a resource",
    );
    assert.equal(record?.error?.name, "MalformedError");
    assert.deepEqual(record?.data, { malformed: "nope" });
    assert.equal((await store.listPoisons()).records.length, 1);
    const removed = await store.forceDeletePoison("bad", { actor: "ops", reason: "malformed row" });
    assert.equal(removed?.token, "t");
    assert.equal(await store.getPoison("bad"), null);
    await store.close();
  });

  it("reports a file it cannot open as BackendUnavailableError naming the path", async () => {
    const store = openPoisonStore(`sqlite:${join(dir, "no-such-dir", "x.db")}`);
    const error = await rejectsWith(store.getPoison("x"), BackendUnavailableError, {
      backend: "sqlite",
    });
    assert.match(error.message, /no-such-dir.*check that its directory exists/);
    await store.close();
  });
});
