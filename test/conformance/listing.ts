/** listPoisons: order, literal prefixes, pages and cursors. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { InvalidArgumentError, type PoisonStoreClient } from "../../src/index.js";
import { rejectsWith, type SuiteContext } from "./harness.js";

async function listAll(
  store: PoisonStoreClient,
  prefix: string,
  limit: number,
): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const page = await store.listPoisons({ prefix, limit, cursor });
    pages.push(page.records.map((r) => r.key));
    cursor = page.cursor;
    assert.ok(pages.length < 1000, "paging does not terminate");
  } while (cursor !== null);
  return pages;
}

export function listing(ctx: SuiteContext): void {
  it("lists by key in UTF-8 byte order", async () => {
    const store = ctx.open();
    const base = `${ctx.key("order")}/`;
    // UTF-8 order differs from UTF-16 order: U+FFFD (EF BF BD) sorts before U+1F642 (F0 9F 99 82).
    const suffixes = ["b", "a", "A", "aa", "a/", "\uFFFD", "🙂", "z", "é", "0"];
    for (const s of suffixes) await store.tryPutPoison(base + s, "t");
    const expected = suffixes
      .map((s) => base + s)
      .sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    const page = await store.listPoisons({ prefix: base, limit: 100 });
    assert.deepEqual(
      page.records.map((r) => r.key),
      expected,
    );
    assert.equal(page.cursor, null);
    assert.ok(page.records.every((r) => r.token === "t" && r.state === "in-progress"));
  });

  it("a prefix matches literally: % _ \\ * ? [ are plain characters", async () => {
    const store = ctx.open();
    const base = `${ctx.key("literal")}/`;
    const keys = [
      "a%",
      "a%b",
      "ab",
      "a_",
      "a_b",
      "axb",
      "a\\",
      "a\\b",
      "a*",
      "a*b",
      "a?",
      "a[",
      "a[b]",
    ];
    for (const k of keys) await store.tryPutPoison(base + k, "t");
    const cases: Array<[string, string[]]> = [
      ["a%", ["a%", "a%b"]],
      ["a_", ["a_", "a_b"]],
      ["a\\", ["a\\", "a\\b"]],
      ["a*", ["a*", "a*b"]],
      ["a?", ["a?"]],
      ["a[", ["a[", "a[b]"]],
      ["ab", ["ab"]],
    ];
    for (const [prefix, expected] of cases) {
      const page = await store.listPoisons({ prefix: base + prefix });
      assert.deepEqual(
        page.records.map((r) => r.key.slice(base.length)).sort(),
        expected.sort(),
        `prefix ${JSON.stringify(prefix)}`,
      );
    }
  });

  it("pages through every key exactly once, cursor null on the last page", async () => {
    const store = ctx.open();
    const base = `${ctx.key("pages")}/`;
    const keys = Array.from({ length: 7 }, (_, i) => `${base}${String(i).padStart(2, "0")}`);
    await Promise.all(keys.map((k) => store.tryPutPoison(k, "t")));
    const pages = await listAll(store, base, 3);
    assert.deepEqual(
      pages.map((p) => p.length),
      [3, 3, 1],
    );
    assert.deepEqual(pages.flat(), keys);
    const exact = await listAll(store, base, 7);
    assert.deepEqual(
      exact.map((p) => p.length),
      [7],
      "a page that ends exactly at the last key has a null cursor",
    );
  });

  it("a cursor survives the deletion of the key it points at", async () => {
    const store = ctx.open();
    const base = `${ctx.key("cursor")}/`;
    for (const s of ["a", "b", "c", "d"]) await store.tryPutPoison(base + s, "t");
    const first = await store.listPoisons({ prefix: base, limit: 2 });
    assert.deepEqual(
      first.records.map((r) => r.key),
      [`${base}a`, `${base}b`],
    );
    await store.deletePoison(`${base}b`, "t");
    const second = await store.listPoisons({ prefix: base, limit: 2, cursor: first.cursor });
    assert.deepEqual(
      second.records.map((r) => r.key),
      [`${base}c`, `${base}d`],
    );
  });

  it("an empty prefix lists the whole namespace; nothing matches an unused prefix", async () => {
    const store = ctx.open({ namespace: `${ctx.namespace}${ctx.key("own-ns")}/` });
    await store.tryPutPoison("x", "t");
    await store.tryPutPoison("y", "t");
    assert.deepEqual(
      (await store.listPoisons()).records.map((r) => r.key),
      ["x", "y"],
    );
    assert.deepEqual(await store.listPoisons({ prefix: "zz" }), { records: [], cursor: null });
  });

  it("rejects a bad limit, prefix or cursor with InvalidArgumentError", async () => {
    const store = ctx.open();
    for (const limit of [0, -1, 1.5, 1001, "10"]) {
      await rejectsWith(store.listPoisons({ limit: limit as number }), InvalidArgumentError, {
        argument: "options.limit",
      });
    }
    await rejectsWith(store.listPoisons({ cursor: "not-a-cursor" }), InvalidArgumentError, {
      argument: "options.cursor",
    });
    await rejectsWith(store.listPoisons({ prefix: "a\u0000" }), InvalidArgumentError, {
      argument: "options.prefix",
    });
  });
}
