/** listPoisons filters (SPEC §7): state (stale included), token, operation; cursors that cannot
 *  widen a listing; pages bounded whatever the filter matches. */
import assert from "node:assert/strict";
import { it } from "node:test";
import {
  InvalidArgumentError,
  type ListPoisonsOptions,
  type PoisonStoreClient,
} from "../../src/index.js";
import { rejectsWith, type SuiteContext } from "./harness.js";

/** Every key a filtered listing returns, following cursors to the end. */
async function keysOf(
  store: PoisonStoreClient,
  options: ListPoisonsOptions,
): Promise<{ keys: string[]; pages: number }> {
  const keys: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await store.listPoisons({ ...options, cursor });
    assert.ok(page.records.length <= (options.limit ?? 100), "a page never exceeds its limit");
    keys.push(...page.records.map((r) => r.key));
    cursor = page.cursor;
    pages++;
    assert.ok(pages < 500, "paging does not terminate");
  } while (cursor !== null);
  return { keys, pages };
}

export function filters(ctx: SuiteContext): void {
  it("filters by token, operation and state, each alone and together", async () => {
    const store = ctx.open();
    const past = ctx.open({ clock: () => new Date(Date.now() - 3_600_000) });
    const base = `${ctx.key("filters")}/`;
    await store.tryPutPoisons([`${base}a1`, `${base}a2`], "op-a", { operation: "alter" });
    await store.tryPutPoison(`${base}b1`, "op-b", { operation: "migrate" });
    await store.markPoisoned(`${base}a2`, "op-a", new Error("half-way"));
    await store.tryPutPoison(`${base}live`, "op-c", {
      operation: "alter",
      heartbeatIntervalMs: 1000,
    });
    await past.tryPutPoison(`${base}dead`, "op-c", {
      operation: "alter",
      heartbeatIntervalMs: 1000,
    });
    const list = async (options: ListPoisonsOptions) =>
      (await keysOf(store, { prefix: base, limit: 2, ...options })).keys.map((k) =>
        k.slice(base.length),
      );
    assert.deepEqual(await list({ token: "op-a" }), ["a1", "a2"]);
    assert.deepEqual(await list({ operation: "alter" }), ["a1", "a2", "dead", "live"]);
    assert.deepEqual(await list({ state: "poisoned" }), ["a2"]);
    assert.deepEqual(await list({ state: "in-progress" }), ["a1", "b1", "dead", "live"]);
    // Stale: in progress and not live (no heartbeat promised, or it stopped).
    assert.deepEqual(await list({ state: "stale" }), ["a1", "b1", "dead"]);
    assert.deepEqual(await list({ state: "stale", token: "op-c" }), ["dead"]);
    assert.deepEqual(await list({ token: "op-a", state: "in-progress", operation: "alter" }), [
      "a1",
    ]);
    assert.deepEqual(await list({ token: "nobody" }), []);
  });

  it("a filter that matches little still pages within bounds, and finds every match", async () => {
    const store = ctx.open();
    const base = `${ctx.key("sparse")}/`;
    const keys = Array.from({ length: 30 }, (_, i) => `${base}${String(i).padStart(2, "0")}`);
    for (let i = 0; i < keys.length; i += 10) {
      await store.tryPutPoisons(keys.slice(i, i + 10), "noise");
    }
    await store.tryPutPoison(`${base}29x`, "needle");
    await store.tryPutPoison(`${base}00x`, "needle");
    const { keys: found } = await keysOf(store, { prefix: base, limit: 1, token: "needle" });
    assert.deepEqual(found, [`${base}00x`, `${base}29x`]);
  });

  it("filters are validated", async () => {
    const store = ctx.open();
    await rejectsWith(
      store.listPoisons({ state: "dead" as unknown as "stale" }),
      InvalidArgumentError,
      { argument: "options.state" },
    );
    await rejectsWith(store.listPoisons({ token: "" }), InvalidArgumentError, {
      argument: "options.token",
    });
    await rejectsWith(
      store.listPoisons({ operation: 42 as unknown as string }),
      InvalidArgumentError,
      {
        argument: "options.operation",
      },
    );
  });

  it("a cursor of another prefix is refused instead of widening the listing", async () => {
    const store = ctx.open();
    const base = `${ctx.key("cursor")}/`;
    for (const key of ["a/1", "a/2", "b/1", "b/2"]) await store.tryPutPoison(base + key, "t");
    const first = await store.listPoisons({ prefix: `${base}a/`, limit: 1 });
    assert.ok(first.cursor);
    await rejectsWith(
      store.listPoisons({ prefix: `${base}b/`, cursor: first.cursor }),
      InvalidArgumentError,
      { argument: "options.cursor" },
    );
    // The same cursor continues its own listing.
    const next = await store.listPoisons({ prefix: `${base}a/`, limit: 1, cursor: first.cursor });
    assert.deepEqual(
      next.records.map((r) => r.key),
      [`${base}a/2`],
    );
  });

  it("tampered, truncated and foreign cursors are refused", async () => {
    const store = ctx.open();
    const base = `${ctx.key("tamper")}/`;
    await store.tryPutPoisons([`${base}1`, `${base}2`], "t");
    const { cursor } = await store.listPoisons({ prefix: base, limit: 1 });
    assert.ok(cursor);
    const flipped = `${cursor.slice(0, 5)}${cursor[5] === "A" ? "B" : "A"}${cursor.slice(6)}`;
    for (const bad of [
      flipped,
      cursor.slice(0, -1),
      `${cursor}x`,
      "k1.AA",
      "\u0000",
      "",
      Buffer.from([0xff, 0xfe]).toString("latin1"),
    ]) {
      await rejectsWith(store.listPoisons({ prefix: base, cursor: bad }), InvalidArgumentError, {
        argument: "options.cursor",
      });
    }
    const audit = await store.auditLog({ limit: 1 });
    await rejectsWith(store.auditLog({ cursor: "a1.5" }), InvalidArgumentError);
    if (audit.cursor)
      await rejectsWith(store.listPoisons({ cursor: audit.cursor }), InvalidArgumentError);
  });
}
