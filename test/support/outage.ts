/**
 * Shared outage checks for networked drivers: with a fault proxy cut, every call rejects with
 * BackendUnavailableError (cause attached) within a bound, never a false success or a false
 * null; when the proxy passes again, the same store object works without being re-created.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { it } from "node:test";
import { BackendUnavailableError, type PoisonStoreClient } from "../../src/index.js";
import { type FaultProxy, type ProxyMode, startFaultProxy } from "./fault-proxy.js";

/** Every public call, against a key that holds `token` on the real server. */
function everyCall(store: PoisonStoreClient, key: string, token: string) {
  return {
    tryPutPoison: () => store.tryPutPoison(key, token),
    tryPutPoisonOther: () => store.tryPutPoison(key, "someone-else"),
    deletePoison: () => store.deletePoison(key, token),
    getPoison: () => store.getPoison(key),
    inspectPoison: () => store.inspectPoison(key),
    listPoisons: () => store.listPoisons(),
    markPoisoned: () => store.markPoisoned(key, token, new Error("x")),
    forceDeletePoison: () => store.forceDeletePoison(key, { actor: "a", reason: "r" }),
    auditLog: () => store.auditLog(),
    tryPutPoisons: () => store.tryPutPoisons([key], token),
    deletePoisons: () => store.deletePoisons([key], token),
  };
}

/** Cut the proxy (`mode`), check every call fails typed and bounded, restore, check recovery. */
export async function checkOutage(
  store: PoisonStoreClient,
  proxy: FaultProxy,
  mode: ProxyMode,
  options: {
    key: string;
    token: string;
    boundMs: number;
    requireCause: boolean;
    /** Leave open connections in place (a black hole on a live connection: requests vanish). */
    keepConnections?: boolean;
  },
): Promise<void> {
  const { key, token, boundMs } = options;
  await store.tryPutPoison(key, token);
  assert.equal(await store.getPoison(key), token);

  proxy.mode = mode;
  if (!options.keepConnections) proxy.resetAll();
  for (const [name, call] of Object.entries(everyCall(store, key, token))) {
    const started = performance.now();
    let outcome: unknown;
    try {
      outcome = { resolved: await call() };
    } catch (error) {
      outcome = error;
    }
    const elapsed = performance.now() - started;
    assert.ok(
      outcome instanceof BackendUnavailableError,
      `${mode}: ${name} must reject with BackendUnavailableError, got ${JSON.stringify(outcome) ?? String(outcome)}`,
    );
    assert.ok(
      elapsed < boundMs,
      `${mode}: ${name} took ${Math.round(elapsed)} ms (bound ${boundMs})`,
    );
    if (options.requireCause) {
      assert.ok(outcome.cause !== undefined, `${mode}: ${name} must carry the cause`);
    }
  }

  proxy.mode = "pass";
  const deadline = Date.now() + 10_000;
  let holder: string | null | undefined;
  while (holder === undefined) {
    try {
      holder = await store.getPoison(key);
    } catch (error) {
      assert.ok(error instanceof BackendUnavailableError);
      assert.ok(
        Date.now() < deadline,
        "the store did not recover within 10 s of the proxy passing",
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  assert.equal(holder, token, "the key written before the outage is still there");
  await store.deletePoison(key, token);
  assert.equal(await store.getPoison(key), null);
}

/**
 * close() while the backend is away (its connections reset and new ones refused, so a client
 * sits between reconnect attempts) settles within `boundMs`: a shutdown never hangs on it.
 */
export async function checkCloseDuringOutage(
  store: PoisonStoreClient,
  proxy: FaultProxy,
  boundMs: number,
): Promise<void> {
  await store.getPoison(`close/${Date.now()}`);
  proxy.mode = "reset";
  proxy.resetAll();
  // Let a call fail and the client start reconnecting, as it would in production.
  await store.getPoison("close/after-reset").catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const started = performance.now();
  const settled = await store.close().then(
    () => "resolved",
    (error: unknown) => error,
  );
  const elapsed = performance.now() - started;
  // The runtime would cut a hanging close() at timeoutMs with an error; a driver must not
  // need that backstop.
  assert.equal(settled, "resolved", `close() must release cleanly, got ${String(settled)}`);
  assert.ok(elapsed < boundMs, `close() took ${Math.round(elapsed)} ms (bound ${boundMs})`);
  proxy.mode = "pass";
}

/**
 * A caller retrying in a tight loop while the server is away (a documented pattern: retry with
 * the same token) must not starve the client's own reconnection: every failed call settles
 * only after the event loop has had a turn, so timers (here, the one that brings the server
 * back) fire during the loop, and the loop succeeds soon after the server is back (issue 11).
 */
export async function checkTightRetryLoop(
  store: PoisonStoreClient,
  proxy: FaultProxy,
): Promise<void> {
  const key = `tight-loop/${randomUUID()}`;
  await store.tryPutPoison(`${key}/warm-up`, "warm-up");
  proxy.mode = "reset";
  proxy.resetAll();
  const started = performance.now();
  let backAt = 0;
  // If failures settled through microtasks only, this timer would never fire.
  const timer = setTimeout(() => {
    proxy.mode = "pass";
    backAt = performance.now();
  }, 300);
  let attempts = 0;
  try {
    for (;;) {
      attempts++;
      try {
        await store.tryPutPoison(key, "looping");
        break;
      } catch (error) {
        assert.ok(error instanceof BackendUnavailableError, String(error));
        assert.ok(
          performance.now() - started < 15_000,
          `no success within 15 s of the outage (${attempts} attempts; server back: ${backAt > 0})`,
        );
      }
    }
  } finally {
    clearTimeout(timer);
    proxy.mode = "pass";
  }
  assert.ok(backAt > 0, "the timer bringing the server back fired during the loop");
  const recovery = performance.now() - backAt;
  assert.ok(recovery < 10_000, `the loop succeeded ${Math.round(recovery)} ms after recovery`);
  assert.equal(await store.getPoison(key), "looping");
  await store.deletePoison(key, "looping");
  await store.deletePoison(`${key}/warm-up`, "warm-up");
}

/**
 * The outage tests of a driver that talks to one server (Redis, etcd), registered in the
 * caller's describe: three ways to cut the proxy, each typed, bounded and recovered from by
 * the same store, and close() during an outage. `openThrough(port)` opens a store reaching the
 * server through a proxy at `port`, with timeoutMs 1000 and the client's own bounds under it.
 */
export function outageTests(
  target: { host: string; port: number },
  openThrough: (port: number) => PoisonStoreClient,
): void {
  const outages = [
    { mode: "blackhole", keepConnections: true, title: "black hole on live connections" },
    { mode: "blackhole", keepConnections: false, title: "connections cut, then black hole" },
    { mode: "reset", keepConnections: false, title: "connections reset and refused" },
  ] as const;
  for (const { mode, keepConnections, title } of outages) {
    it(`outage (${title}): typed, bounded, and the same store recovers`, async (t) => {
      const proxy = await startFaultProxy(target);
      t.after(() => proxy.close());
      const store = openThrough(proxy.port);
      t.after(() => store.close());
      await checkOutage(store, proxy, mode, {
        key: `outage/${randomUUID()}`,
        token: "survivor",
        boundMs: 1300,
        requireCause: true,
        keepConnections,
      });
    });
  }

  it("close() while the server is away releases the store, in time", async (t) => {
    const proxy = await startFaultProxy(target);
    t.after(() => proxy.close());
    await checkCloseDuringOutage(openThrough(proxy.port), proxy, 1000);
  });

  it("a tight retry loop while the server is away never starves reconnection", async (t) => {
    const proxy = await startFaultProxy(target);
    t.after(() => proxy.close());
    const store = openThrough(proxy.port);
    t.after(() => store.close());
    await checkTightRetryLoop(store, proxy);
  });
}
