/** The runtime's path for networked drivers (src/core/runtime.ts, #withTimeout), driven through
 *  the memory driver flagged as networked: when a call's answer reaches the caller, and how a
 *  call that outlives its bound is counted. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BackendUnavailableError,
  createPoisonStore,
  memoryDriver,
  PoisonConflictError,
  type PoisonDriver,
} from "../../src/index.js";

function networked(overrides: Partial<PoisonDriver> = {}): PoisonDriver {
  const inner = memoryDriver();
  return { ...inner, capabilities: { ...inner.capabilities, inProcess: false }, ...overrides };
}

/** Whether a setImmediate scheduled just before `call` ran before its promise settled. */
async function turnBefore(call: () => Promise<unknown>): Promise<boolean> {
  let turned = false;
  setImmediate(() => {
    turned = true;
  });
  await call().catch(() => undefined);
  return turned;
}

describe("runtime: networked calls", () => {
  it("a conflict reaches the caller with the server's answer, without waiting for the event loop", async () => {
    const store = createPoisonStore(networked());
    await store.tryPutPoison("k", "holder");
    await assert.rejects(store.tryPutPoison("k", "other"), PoisonConflictError);
    assert.equal(await turnBefore(() => store.tryPutPoison("k", "other")), false);
    await store.close();
  });

  it("a backend failure still waits one turn, so a tight retry loop cannot starve a reconnection", async () => {
    const store = createPoisonStore(
      networked({
        getToken: () => Promise.reject(new Error("connection is closed")),
      }),
    );
    await assert.rejects(store.getPoison("k"), BackendUnavailableError);
    assert.equal(await turnBefore(() => store.getPoison("k")), true);
    await store.close();
  });

  it("a call cut at timeoutMs is answered and no longer counted: close() does not wait for it", async () => {
    const store = createPoisonStore(
      networked({ getToken: () => new Promise<string | null>(() => undefined) }),
      { timeoutMs: 100 },
    );
    await assert.rejects(store.getPoison("k"), /no answer within 100 ms/);
    const started = performance.now();
    await store.close();
    assert.ok(performance.now() - started < 90, "close() waited for the expired call");
  });
});
