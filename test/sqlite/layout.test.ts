/** The SQLite file layout: versioned, refused when newer, forgiving of malformed rows. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
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

  it("records its layout version in poison_meta", async () => {
    const path = join(dir, "version.db");
    const store = openPoisonStore(`sqlite:${path}`);
    await store.getPoison("x");
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
