/** openPoisonStore: URL schemes, errors and lazy loading of client libraries. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  InvalidArgumentError,
  openPoisonStore,
  redactUrl,
  supportedUrlForms,
} from "../src/index.js";

describe("openPoisonStore", () => {
  it("rejects an unknown scheme with a clear error listing the supported ones", () => {
    assert.throws(
      () => openPoisonStore("zookeeper://127.0.0.1:2181"),
      (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError);
        assert.equal(error.argument, "url");
        for (const form of supportedUrlForms()) assert.ok(error.message.includes(form), form);
        assert.match(error.message, /sqlite:PATH/);
        return true;
      },
    );
    assert.throws(() => openPoisonStore("not a url"), InvalidArgumentError);
  });

  it("never prints a password from the URL", () => {
    assert.throws(
      () => openPoisonStore("zookeeper://admin:s3cret@127.0.0.1:2181/x"),
      (error: unknown) =>
        error instanceof Error &&
        !error.message.includes("s3cret") &&
        error.message.includes("***"),
    );
    assert.equal(redactUrl("postgres://u:p%40ss@h:5432/db"), "postgres://u:***@h:5432/db");
    assert.equal(redactUrl("sqlite:./x.db"), "sqlite:./x.db");
    assert.equal(redactUrl("mysql://u:p@secret@h:3306/db"), "mysql://u:***@h:3306/db");
    assert.equal(redactUrl("redis://:only-password@h:6379"), "redis://:***@h:6379");
    // Characters that break a URL parser, or that JSON escapes, are hidden at the source too.
    for (const secret of ["s3c\\retpw", 's3c"retpw', "s3c/ret?pw#x", "p@ss:word"]) {
      const url = `etcd://u:${secret}@127.0.0.1:2379`;
      const label = redactUrl(url);
      assert.ok(!label.includes("s3c") && !label.includes("word"), label);
      // Opened or refused as malformed, the password shows nowhere.
      let shown: string;
      try {
        shown = openPoisonStore(`redis://u:${secret}@127.0.0.1:1/0`).location;
      } catch (error) {
        assert.ok(error instanceof InvalidArgumentError);
        shown = error.message;
      }
      assert.ok(!shown.includes("s3c") && !shown.includes("word"), shown);
    }
  });

  it("a malformed %-escape in a sqlite: URL is an argument error, not an URIError", () => {
    assert.throws(
      () => openPoisonStore("sqlite:///data/%ZZ.db"),
      (error: unknown) =>
        error instanceof InvalidArgumentError &&
        error.argument === "url" &&
        /%25/.test(error.message),
    );
  });

  it("accepts sqlite:PATH, sqlite:///ABS and memory:[NAME]", async () => {
    const dir = mkdtempSync(join(tmpdir(), "poison-open-"));
    try {
      const a = openPoisonStore(`sqlite:${join(dir, "a.db")}`);
      await a.tryPutPoison("k", "t");
      await a.close();
      const b = openPoisonStore(`sqlite://${join(dir, "a.db")}`);
      assert.equal(await b.getPoison("k"), "t");
      await b.close();
      const m1 = openPoisonStore("memory:shared-by-name");
      const m2 = openPoisonStore("memory:shared-by-name");
      const m3 = openPoisonStore("memory:");
      await m1.tryPutPoison("k", "t");
      assert.equal(await m2.getPoison("k"), "t");
      assert.equal(await m3.getPoison("k"), null);
      assert.throws(() => openPoisonStore("sqlite:"), InvalidArgumentError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("importing the package loads no client library until a store is used", () => {
    const script = `
      import { createRequire } from "node:module";
      const require = createRequire(import.meta.url);
      const loaded = () => Object.keys(require.cache).filter((p) => /node_modules\\/(better-sqlite3|pg|mysql2|ioredis|redis|etcd3|@grpc)\\//.test(p));
      const { openPoisonStore } = await import("./src/index.ts");
      const before = loaded();
      const store = openPoisonStore("sqlite::memory:");
      await store.tryPutPoison("k", "t");
      await store.close();
      console.log(JSON.stringify({ before, after: loaded().some((p) => p.includes("better-sqlite3")) }));
    `;
    const result = spawnSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      {
        encoding: "utf8",
      },
    );
    assert.equal(result.status, 0, result.stderr);
    const { before, after } = JSON.parse(result.stdout.trim().split("\n").at(-1) as string);
    assert.deepEqual(before, [], "client libraries loaded by the import alone");
    assert.equal(after, true, "the check must see better-sqlite3 once a store was used");
  });
});
