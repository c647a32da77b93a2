import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BackendUnavailableError,
  createPoisonStore,
  memoryDriver,
  StoreClosedError,
} from "../../src/index.js";

describe("runtime: close()", () => {
  it("a driver whose close() never settles is cut at timeoutMs with BackendUnavailableError", async () => {
    const inner = memoryDriver();
    const store = createPoisonStore(
      { ...inner, close: () => new Promise<void>(() => undefined) },
      { timeoutMs: 200 },
    );
    await store.tryPutPoison("k", "t");
    const started = performance.now();
    await assert.rejects(store.close(), (error: unknown) => {
      assert.ok(error instanceof BackendUnavailableError);
      assert.match(error.message, /close did not finish within 200 ms/);
      return true;
    });
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 190 && elapsed < 1000, `cut after ${Math.round(elapsed)} ms`);
    await assert.rejects(store.getPoison("k"), StoreClosedError);
  });

  it("waits for pending calls, then releases the driver once", async () => {
    let closes = 0;
    const inner = memoryDriver();
    const store = createPoisonStore({
      ...inner,
      close: async () => {
        closes++;
        await inner.close();
      },
    });
    const put = store.tryPutPoison("k", "t");
    await Promise.all([store.close(), store.close()]);
    await put;
    assert.equal(closes, 1);
  });
});
