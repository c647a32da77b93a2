import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import {
  BackendUnavailableError,
  type EtcdTransport,
  etcdDriver,
  InvalidArgumentError,
  openPoisonStore,
  PoisonConflictError,
} from "../../src/index.js";
import { backendSkipReason, rejectsWith, testDriver } from "../conformance/index.js";
import { conformanceHarness, deleteEtcdRun } from "../support/backends.js";
import { assertNativeWatchEndsOnAbort, countedEtcdStore } from "../support/etcd.js";
import { startFaultProxy } from "../support/fault-proxy.js";
import { outageTests } from "../support/outage.js";
import { measureCorePaths } from "../support/round-trips.js";
import { etcdUnavailable } from "../support/servers.js";

const HOST = "127.0.0.1";
const PORT = 2379;
const ENDPOINT = `http://${HOST}:${PORT}`;
const url = `etcd://${HOST}:${PORT}`;
// Each run keeps its records and audit log under its own meta prefix, so reruns never meet.
const metaPrefix = `/poison-test-meta/${randomUUID()}/`;

const unavailable = etcdUnavailable;

/** A raw etcd request through the JSON gateway, as another tool (GreptimeDB) would write. */
async function raw(path: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const response = await fetch(`${ENDPOINT}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(2000),
  });
  assert.equal(response.status, 200);
  return (await response.json()) as Record<string, unknown>;
}
const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
async function rawGet(key: string): Promise<string | null> {
  const reply = await raw("/v3/kv/range", { key: b64(key) });
  const kvs = reply.kvs as Array<{ value?: string }> | undefined;
  return kvs?.[0] ? Buffer.from(kvs[0].value ?? "", "base64").toString("utf8") : null;
}
const rawPut = (key: string, value: string) =>
  raw("/v3/kv/put", { key: b64(key), value: b64(value) });

await testDriver(conformanceHarness("etcd"));

const skip = await backendSkipReason("etcd", unavailable);

describe("etcd driver", { skip: skip ?? false }, () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
    // What this run wrote, and only that (other runs may share the server).
    await deleteEtcdRun(url, metaPrefix);
  });

  it("store.watch() is served by etcd's own watch (source native), and its abort ends it", async () => {
    const store = openPoisonStore(etcdDriver({ url, metaPrefix }), {
      namespace: `/poison-test/${randomUUID()}/`,
    });
    cleanup.push(() => store.close());
    await assertNativeWatchEndsOnAbort(store);
  });

  it("each core call is one round trip (one transaction), on success and on conflict", async () => {
    const { store, paths } = countedEtcdStore({ url, metaPrefix });
    cleanup.push(() => store.close());
    const key = "rt/1";
    // Warm up: init (health reads) and a first write on another key; none of it counts.
    await store.tryPutPoison(`${key}/warm-up`, "warm-up");
    await store.deletePoison(`${key}/warm-up`, "warm-up");
    const measured = await measureCorePaths(store, key, () => paths.length);
    for (const { label, count } of measured) {
      assert.equal(count, 1, `${label} took ${count} round trips`);
    }
    const counts = Object.fromEntries(measured.map(({ label, count }) => [label, count]));
    process.stderr.write(`etcd round trips: ${JSON.stringify(counts)}\n`);
  });

  it("GreptimeDB compatibility: a key GreptimeDB wrote reads, conflicts and deletes", async () => {
    // The default namespace, as GreptimeDB uses it; the key is unique to this run.
    const table = `table/${randomUUID()}`;
    const key = `/__procedure_poison/${table}`;
    await rawPut(key, '{"token":"expected_token"}');
    cleanup.push(() => raw("/v3/kv/deleterange", { key: b64(key) }));
    const store = openPoisonStore(etcdDriver({ url, metaPrefix }));
    cleanup.push(() => store.close());
    assert.equal(await store.getPoison(table), "expected_token");
    const record = await store.inspectPoison(table);
    assert.equal(record?.token, "expected_token");
    assert.equal(record?.state, "poisoned", "no record: quarantined, conservatively");
    assert.deepEqual(
      (await store.listPoisons({ prefix: table })).records.map((r) => [r.key, r.token]),
      [[table, "expected_token"]],
    );
    await rejectsWith(store.tryPutPoison(table, "other"), PoisonConflictError, {
      holder: "expected_token",
    });
    await rejectsWith(store.deletePoison(table, "other"), PoisonConflictError, {
      holder: "expected_token",
    });
    await store.tryPutPoison(table, "expected_token"); // idempotent for the holder
    assert.equal(await rawGet(key), '{"token":"expected_token"}', "left byte for byte");
    await store.deletePoison(table, "expected_token");
    assert.equal(await rawGet(key), null);
    assert.equal(await store.getPoison(table), null);
  });

  it("GreptimeDB compatibility: the bytes the library writes are GreptimeDB's", async () => {
    const table = `table/${randomUUID()}`;
    const key = `/__procedure_poison/${table}`;
    const store = openPoisonStore(etcdDriver({ url, metaPrefix }));
    cleanup.push(() => store.close());
    await store.tryPutPoison(table, "expected_token", { operation: "alter-table" });
    assert.equal(await rawGet(key), '{"token":"expected_token"}');
    const recordText = await rawGet(`${metaPrefix}record/${key}`);
    assert.equal(JSON.parse(recordText ?? "null")?.operation, "alter-table");
    // A token with characters JSON escapes: the same bytes serde_json writes.
    await store.tryPutPoison(`${table}/q`, 'a"b\\c/ü\n');
    assert.equal(await rawGet(`${key}/q`), '{"token":"a\\"b\\\\c/ü\\n"}');
    // GreptimeDB deletes only the poison key; a stale record must not leak into the next holder.
    await raw("/v3/kv/deleterange", { key: b64(key) });
    await rawPut(key, '{"token":"greptime"}');
    const record = await store.inspectPoison(table);
    assert.equal(record?.token, "greptime");
    assert.equal(record?.operation, undefined);
    await store.forceDeletePoison(table, { actor: "test", reason: "cleanup" });
    await store.deletePoison(`${table}/q`, 'a"b\\c/ü\n');
    assert.equal(await rawGet(key), null);
    assert.equal(await rawGet(`${metaPrefix}record/${key}`), null);
  });

  it("listing a namespace that covers the meta prefix returns only poison keys", async () => {
    const namespace = metaPrefix.slice(0, metaPrefix.indexOf("/", 1) + 1); // "/poison-test-meta/"
    const store = openPoisonStore(etcdDriver({ url, metaPrefix }), { namespace });
    const inMeta = openPoisonStore(etcdDriver({ url, metaPrefix }), {
      namespace: `/poison-test/${randomUUID()}/`,
    });
    cleanup.push(
      () => store.close(),
      () => inMeta.close(),
    );
    await inMeta.tryPutPoison("k", "t", { audit: { actor: "a", reason: "fill the meta range" } });
    const mine = `${randomUUID()}`;
    await store.tryPutPoison(mine, "t");
    const listed = (await store.listPoisons({ limit: 1000 })).records.map((r) => r.key);
    assert.ok(listed.includes(mine));
    assert.ok(
      listed.every((k) => !`${namespace}${k}`.startsWith(metaPrefix)),
      listed.join(","),
    );
    await rejectsWith(
      store.tryPutPoison(`${metaPrefix.slice(namespace.length)}record/x`, "t"),
      InvalidArgumentError,
      { argument: "key" },
    );
    await store.deletePoison(mine, "t");
  });

  it("several endpoints: a refused one is skipped", async () => {
    const store = openPoisonStore(
      etcdDriver({ url: `etcd://127.0.0.1:1,${HOST}:${PORT}`, metaPrefix }),
      { namespace: `/poison-test/${randomUUID()}/` },
    );
    cleanup.push(() => store.close());
    await store.tryPutPoison("k", "t");
    assert.equal(await store.getPoison("k"), "t");
    await store.deletePoison("k", "t");
  });

  it("several endpoints: a write cut off after it was sent is never sent again elsewhere (issue 11 item 10)", async () => {
    const proxy = await startFaultProxy({ host: HOST, port: PORT });
    cleanup.push(() => proxy.close());
    const namespace = `/poison-test/${randomUUID()}/`;
    const writes: string[] = [];
    // Reads pass through the proxy; the answer to the first write is cut after etcd applied it.
    const cutWrites: EtcdTransport = (request, send) => {
      const write = request.body.includes("request_delete_range");
      if (write) writes.push(request.endpoint);
      proxy.mode = write && writes.length === 1 ? "cut-reply" : "pass";
      return send(request);
    };
    const store = openPoisonStore(
      etcdDriver({
        url: `etcd://127.0.0.1:${proxy.port},${HOST}:${PORT}`,
        metaPrefix,
        transport: cutWrites,
      }),
      { namespace },
    );
    const direct = openPoisonStore(etcdDriver({ url, metaPrefix }), { namespace });
    cleanup.push(
      () => store.close(),
      () => direct.close(),
    );
    await direct.tryPutPoison("k", "holder");
    const outcome = await store.forceDeletePoison("k", { actor: "test", reason: "cut" }).then(
      (record) => record,
      (error: unknown) => error,
    );
    assert.ok(
      outcome instanceof BackendUnavailableError,
      `the outcome is unknown, not ${JSON.stringify(outcome)}`,
    );
    assert.match(outcome.message, /never sent again/);
    assert.deepEqual(writes, [`http://127.0.0.1:${proxy.port}`], "sent to one endpoint only");
    // The first attempt did apply, once: retrying with the same call now answers from evidence.
    assert.equal(await direct.getPoison("k"), null);
    const forced = (await direct.auditLog({ key: "k" })).entries.filter(
      (entry) => entry.action === "force-delete",
    );
    assert.equal(forced.length, 1);
    // A read is not a write: it fails over to the next endpoint.
    proxy.mode = "reset";
    proxy.resetAll();
    assert.equal(await store.getPoison("k"), null);
  });

  it("a request over the server's size limit is refused before sending, typed (issue 11 item 9)", async () => {
    const { store, paths } = countedEtcdStore({ url, metaPrefix });
    cleanup.push(() => store.close());
    await store.tryPutPoison("warm-up", "t"); // init, not counted
    const data = "x".repeat(60_000);
    const keys = Array.from({ length: 42 }, (_, i) => `big/${i}`);
    const before = paths.length;
    const error = await rejectsWith(
      store.tryPutPoisons(keys, "t", { data }),
      InvalidArgumentError,
      {
        argument: "request size",
      },
    );
    assert.equal(paths.length, before, "nothing was sent");
    assert.match(error.message, /--max-request-bytes/);
    assert.match(error.message, /maxRequestBytes/);
    assert.match(error.message, /1572864/);
    for (const key of keys.slice(0, 3)) assert.equal(await store.getPoison(key), null);
    // Just under the limit still goes through: the estimate errs high by little.
    const fits = keys.slice(0, 20);
    await store.tryPutPoisons(fits, "t", { data });
    assert.equal(await store.getPoison(fits[19] as string), "t");
    await store.deletePoisons(fits, "t");
  });

  it("the server's own size refusal is typed too, for a limit set higher than the server's", async () => {
    const namespace = `/poison-test/${randomUUID()}/`;
    const store = openPoisonStore(
      etcdDriver({ url, metaPrefix, maxRequestBytes: 8 * 1024 * 1024 }),
      { namespace },
    );
    cleanup.push(() => store.close());
    const data = "x".repeat(60_000);
    // ~1.7 MB: over etcd's 1.5 MiB raft limit, under its 2 MiB gRPC limit; then over both.
    for (const count of [28, 42]) {
      const keys = Array.from({ length: count }, (_, i) => `server-big/${count}/${i}`);
      const error = await rejectsWith(
        store.tryPutPoisons(keys, "t", { data }),
        InvalidArgumentError,
        { argument: "request size" },
      );
      assert.match(error.message, /nothing was applied/);
      assert.equal(await store.getPoison(keys[0] as string), null);
    }
  });

  it("maxRequestBytes: from the option or the URL; a smaller limit refuses smaller requests", async () => {
    const data = "x".repeat(20_000);
    for (const driver of [
      etcdDriver({ url, metaPrefix, maxRequestBytes: 10_000 }),
      etcdDriver({ url: `${url}?maxRequestBytes=10000&metaPrefix=${metaPrefix}` }),
    ]) {
      const store = openPoisonStore(driver, { namespace: `/poison-test/${randomUUID()}/` });
      cleanup.push(() => store.close());
      const error = await rejectsWith(
        store.tryPutPoison("k", "t", { data }),
        InvalidArgumentError,
        {
          argument: "request size",
        },
      );
      assert.match(error.message, /limit of 10000 bytes/);
      await store.tryPutPoison("small", "t");
      await store.deletePoison("small", "t");
    }
    assert.throws(() => etcdDriver({ url, maxRequestBytes: 0 }), InvalidArgumentError);
    assert.throws(() => etcdDriver({ url: `${url}?maxRequestBytes=lots` }), InvalidArgumentError);
  });

  it("URLs: unknown parameters, TLS settings on etcd:// and bad user information are refused", () => {
    for (const bad of [
      `${url}?cacert=/x.pem`,
      `${url}?ca=/x.pem`,
      "etcd://user@127.0.0.1:2379",
      "etcd://:pw@127.0.0.1:2379",
      "etcd://u:%ZZ@127.0.0.1:2379",
    ]) {
      const error = (() => {
        try {
          etcdDriver({ url: bad });
          return null;
        } catch (caught) {
          return caught;
        }
      })();
      assert.ok(error instanceof InvalidArgumentError, `${bad}: ${String(error)}`);
      assert.ok(!error.message.includes("%ZZ") && !error.message.includes(":pw"), error.message);
    }
    assert.throws(() => etcdDriver({ url, tls: { ca: "/x.pem" } }), InvalidArgumentError);
  });

  outageTests({ host: HOST, port: PORT }, (port) =>
    openPoisonStore(
      etcdDriver({ url: `etcd://127.0.0.1:${port}`, metaPrefix, requestTimeoutMs: 700 }),
      { timeoutMs: 1000, namespace: `/poison-test/${randomUUID()}/` },
    ),
  );

  it("a server that does not answer at all fails the first call, typed", async () => {
    const store = openPoisonStore(etcdDriver({ url: "etcd://127.0.0.1:1" }), { timeoutMs: 1000 });
    cleanup.push(() => store.close());
    await assert.rejects(store.getPoison("k"), BackendUnavailableError);
  });
});
