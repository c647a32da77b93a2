/**
 * notify(store, { webhooks }): webhooks received by a local HTTP server — poisoned, stale and
 * force-cleared, each once; the retry after a 500; no duplicate after a restart of the notifier
 * (its state file), and what happened while it was down sent after it; answers that are not
 * retried; webhook secrets never in what it reports.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  type NotificationPayload,
  type NotifierEvent,
  notify,
  openPoisonStore,
} from "../../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "poison-notify-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const SECRET_PATH = "/services/T0001/B0002/Zx9SuperSecretWebhookToken";

/** A webhook receiver: answers each POST with the next status of `script` (then 200). */
class Receiver {
  readonly received: Array<{ payload: NotificationPayload; headers: IncomingHttpHeaders }> = [];
  /** Every request, answered or not. */
  attempts = 0;
  script: number[] = [];
  readonly #server: Server;
  url = "";

  constructor() {
    this.#server = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (chunk: string) => {
        body += chunk;
      });
      req.on("end", () => {
        this.attempts++;
        const status = this.script.shift() ?? 200;
        if (status === 200) {
          this.received.push({
            payload: JSON.parse(body) as NotificationPayload,
            headers: req.headers,
          });
        }
        res.statusCode = status;
        res.end(status === 200 ? "ok" : "try later");
      });
    });
  }

  async start(port = 0): Promise<this> {
    this.#server.listen(port, "127.0.0.1");
    await once(this.#server, "listening");
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}${SECRET_PATH}`;
    return this;
  }

  of(kind: string, key: string) {
    return this.received.filter((r) => r.payload.kind === kind && r.payload.key === key);
  }

  async waitFor(kind: string, key: string, ms = 5000) {
    const deadline = Date.now() + ms;
    while (this.of(kind, key).length === 0) {
      if (Date.now() > deadline)
        throw new Error(
          `no ${kind} ${key} within ${ms} ms; got ${JSON.stringify(this.received.map((r) => `${r.payload.kind} ${r.payload.key}`))}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.of(kind, key)[0] as { payload: NotificationPayload; headers: IncomingHttpHeaders };
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    this.#server.close();
  }
}

const FAST = { retry: { minDelayMs: 20, maxDelayMs: 50 }, watch: { pollIntervalMs: 40 } };

describe("notify", () => {
  it("posts poisoned, stale and force-cleared once each, retrying after a 500", async () => {
    const receiver = await new Receiver().start();
    const store = openPoisonStore(`sqlite:${join(dir, "a.db")}`);
    const events: NotifierEvent[] = [];
    const notifier = await notify(store, {
      // Credentials in the URL are sent as Basic authentication.
      webhooks: [receiver.url.replace("http://", "http://alice:wonder%20land@")],
      stateFile: join(dir, "a-state.json"),
      checkIntervalMs: 100,
      ...FAST,
      onEvent: (event) => events.push(event),
    });
    try {
      receiver.script = [500];
      await store.tryPutPoison("table/1", "proc-1", { operation: "alter-table", owner: "node-1" });
      await store.markPoisoned("table/1", "proc-1", new Error("shard 4: <timeout> & more"));
      const poisoned = await receiver.waitFor("poisoned", "table/1");
      assert.equal(receiver.attempts, 2, "one 500, then the delivery");
      assert.ok(events.some((e) => e.type === "retrying" && /HTTP 500/.test(e.error)));
      const p = poisoned.payload;
      assert.match(
        p.text,
        /poison key `table\/1` is \*poisoned\*: alter-table \(token proc-1, owner node-1\) failed: Error: shard 4: &lt;timeout&gt; &amp; more/,
      );
      assert.match(p.text, /poison show table\/1 --store sqlite:/);
      assert.equal(p.record?.state, "poisoned");
      assert.equal(p.record?.error?.message, "shard 4: <timeout> & more");
      assert.equal(p.store, store.location);
      assert.equal(poisoned.headers["idempotency-key"], p.id);
      assert.equal(poisoned.headers["content-type"], "application/json");
      assert.equal(
        poisoned.headers.authorization,
        `Basic ${Buffer.from("alice:wonder land").toString("base64")}`,
      );

      // A holder that stops sending heartbeats goes stale with no write at all.
      await store.tryPutPoison("table/2", "proc-2", { heartbeatIntervalMs: 30 });
      const stale = await receiver.waitFor("stale", "table/2");
      assert.match(stale.payload.text, /is \*stale\*/);
      assert.match(stale.payload.text, /last heartbeat .* ago, every 30ms/);

      await store.forceDeletePoison("table/1", {
        actor: "olga",
        reason: "re-ran ALTER on shard 4",
      });
      const cleared = await receiver.waitFor("force-cleared", "table/1");
      assert.deepEqual(cleared.payload.clearedBy, {
        actor: "olga",
        reason: "re-ran ALTER on shard 4",
        evenIfAlive: false,
      });
      assert.match(cleared.payload.text, /force-cleared\* by olga: "re-ran ALTER on shard 4"/);
      assert.equal(cleared.payload.record?.token, "proc-1");

      // Several checks and polls later, still one of each.
      await new Promise((resolve) => setTimeout(resolve, 350));
      await notifier.idle();
      assert.deepEqual(receiver.received.map((r) => `${r.payload.kind} ${r.payload.key}`).sort(), [
        "force-cleared table/1",
        "poisoned table/1",
        "stale table/2",
      ]);
    } finally {
      await notifier.close();
      await receiver.close();
      await store.close();
    }
  });

  it("sends nothing twice across a restart, and after it what happened while it was down", async () => {
    const receiver = await new Receiver().start();
    const url = `sqlite:${join(dir, "b.db")}`;
    const stateFile = join(dir, "b-state.json");
    const options = { webhooks: [receiver.url], stateFile, checkIntervalMs: 60_000, ...FAST };
    let store = openPoisonStore(url);
    let notifier = await notify(store, options);
    try {
      await store.tryPutPoison("region/1", "t1");
      await store.markPoisoned("region/1", "t1", new Error("x"));
      await receiver.waitFor("poisoned", "region/1");
      await notifier.idle();
      await notifier.close();
      await store.close();
      const saved = JSON.parse(readFileSync(stateFile, "utf8")) as { sent: object };
      assert.doesNotMatch(JSON.stringify(saved), /Zx9Super|services/, "no URL in the state file");

      // Down: another key is poisoned meanwhile.
      store = openPoisonStore(url);
      await store.tryPutPoison("region/2", "t2");
      await store.markPoisoned("region/2", "t2", new Error("y"));
      notifier = await notify(store, options);
      await receiver.waitFor("poisoned", "region/2");
      await notifier.check();
      await notifier.idle();
      assert.equal(receiver.of("poisoned", "region/1").length, 1, "region/1 not sent again");
      assert.equal(receiver.of("poisoned", "region/2").length, 1);
    } finally {
      await notifier.close();
      await receiver.close();
      await store.close();
    }
  });

  it("gives up on an answer retrying cannot fix, and never reports the webhook's secret", async () => {
    const receiver = await new Receiver().start();
    const store = openPoisonStore("memory:");
    const events: NotifierEvent[] = [];
    const notifier = await notify(store, {
      webhooks: [receiver.url],
      checkIntervalMs: 60_000,
      ...FAST,
      onEvent: (event) => events.push(event),
    });
    try {
      receiver.script = [404];
      await store.tryPutPoison("k", "t");
      await store.markPoisoned("k", "t", new Error("x"));
      for (let wait = 0; wait < 100 && !events.some((e) => e.type === "failed"); wait++)
        await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(receiver.attempts, 1, "a 404 is not retried");
      const failed = events.find((e) => e.type === "failed");
      assert.ok(failed && failed.type === "failed");
      assert.match(failed.error, /HTTP 404/);
      assert.match(failed.webhook, /^http:\/\/127\.0\.0\.1:\d+\/…$/);
      await notifier.check();
      await notifier.idle();
      assert.equal(receiver.attempts, 1, "not tried again right away by the next check");
    } finally {
      await notifier.close();
      await receiver.close();
      await store.close();
    }
    // Receivers that are gone (one with credentials in its URL, sent as Basic auth): reported,
    // retried, given up, and never with a secret.
    const lonely = openPoisonStore("memory:");
    await lonely.tryPutPoison("k", "t");
    await lonely.markPoisoned("k", "t", new Error("x"));
    events.length = 0;
    const gone = await notify(lonely, {
      webhooks: [receiver.url, "http://user:hunter2-password@127.0.0.1:9/x?token=SeCrEtToKeN123"],
      retry: { maxAttempts: 2, minDelayMs: 10, maxDelayMs: 10 },
      timeoutMs: 500,
      onEvent: (event) => events.push(event),
    });
    for (let wait = 0; wait < 150 && events.filter((e) => e.type === "failed").length < 2; wait++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    await gone.close();
    await lonely.close();
    assert.equal(events.filter((e) => e.type === "failed").length, 2, JSON.stringify(events));
    assert.equal(events.filter((e) => e.type === "retrying").length, 2, "one retry each");
    const text = JSON.stringify(events);
    for (const secret of ["Zx9SuperSecretWebhookToken", "hunter2", "SeCrEtToKeN123", SECRET_PATH])
      assert.ok(!text.includes(secret), `${secret} is not in ${text}`);
  });

  it("refuses a webhook that is not an http(s) URL, without echoing it", async () => {
    const store = openPoisonStore("memory:");
    await assert.rejects(
      notify(store, { webhooks: ["ftp://files.example.com/s3cr3t-path"] }),
      (error: Error) => {
        assert.equal((error as { code?: string }).code, "INVALID_ARGUMENT");
        assert.doesNotMatch(error.message, /s3cr3t/);
        return true;
      },
    );
    await assert.rejects(notify(store, { webhooks: [] }), { code: "INVALID_ARGUMENT" });
    await store.close();
  });
});
