/**
 * The observability commands through the built bin, as an operator runs them: `poison watch`
 * (text and --json lines, SIGTERM ends it with exit 0, reading never creates), and `poison
 * serve` with /metrics (public or behind a token) and --notify (a webhook received, the secret
 * URL never printed).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type ChangeEvent, openPoisonStore } from "../../src/index.js";
import { BIN, ensureBuilt } from "../cli/support.js";

const dir = mkdtempSync(join(tmpdir(), "poison-obs-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));
before(() => ensureBuilt());

/** A long-running command and everything it printed so far. */
function start(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = { stdout: "", stderr: "" };
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    output.stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    output.stderr += chunk;
  });
  const waitFor = async (pattern: RegExp, stream: "stdout" | "stderr" = "stdout", ms = 15_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const match = pattern.exec(output[stream]);
      if (match) return match;
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`no ${pattern} on ${stream}: ${JSON.stringify(output)}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };
  return { child, output, waitFor };
}

async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const [code] = (await once(child, "exit")) as [number | null];
  return code;
}

describe("poison watch", () => {
  it("prints each change as it happens, and exits 0 on SIGTERM", async () => {
    const url = `sqlite:${join(dir, "watch.db")}`;
    const store = openPoisonStore(url);
    await store.tryPutPoison("before/1", "t0");
    const watch = start(["watch", "--store", url, "--poll-interval", "50", "--prefix", "table/"]);
    try {
      await watch.waitFor(
        // SQLite has a native feed (its change log); --poll-interval only serves polling.
        /watching keys under "table\/" in sqlite:.* through its change feed/,
        "stderr",
      );
      await store.tryPutPoison("table/1", "proc-1", { operation: "alter-table" });
      await watch.waitFor(/ put +table\/1 +token proc-1 +alter-table/);
      await store.markPoisoned("table/1", "proc-1", new Error("half-applied"));
      await watch.waitFor(/ poisoned +table\/1 .*Error: half-applied/);
      await store.tryPutPoison("region/1", "t");
      await store.forceDeletePoison("table/1", { actor: "olga", reason: "repaired" });
      await watch.waitFor(/ force-deleted +table\/1/);
      watch.child.kill("SIGTERM");
      assert.equal(await exitOf(watch.child), 0);
      assert.doesNotMatch(watch.output.stdout, /region\/1|before\/1/, "only keys under the prefix");
      assert.match(watch.output.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z {2}put/m);
    } finally {
      watch.child.kill("SIGKILL");
      await store.close();
    }
  });

  it("--json prints one ChangeEvent per line", async () => {
    const url = `sqlite:${join(dir, "watch-json.db")}`;
    const store = openPoisonStore(url);
    await store.tryPutPoison("seed", "t");
    const watch = start(["watch", "--store", url, "--poll-interval", "50", "--json"]);
    try {
      await watch.waitFor(/watching every key/, "stderr");
      await store.tryPutPoison("k", "t1");
      await store.deletePoison("seed", "t");
      await watch.waitFor(/"deleted"/);
      await watch.waitFor(/"put"/);
      watch.child.kill("SIGINT");
      assert.equal(await exitOf(watch.child), 0);
      const events = watch.output.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as ChangeEvent);
      // Keys are ordered by key within one poll, by time across polls: compare as a set.
      assert.deepEqual(events.map((e) => `${e.type} ${e.key}`).sort(), ["deleted seed", "put k"]);
      assert.equal(events.find((e) => e.key === "k")?.record?.token, "t1");
    } finally {
      watch.child.kill("SIGKILL");
      await store.close();
    }
  });

  it("a sqlite: file that does not exist is exit 5, and is not created", () => {
    const file = join(dir, "missing.db");
    const run = spawnSync(process.execPath, [BIN, "watch", "--store", `sqlite:${file}`], {
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(run.status, 5, run.stderr);
    assert.match(run.stderr, /does not exist/);
    assert.equal(existsSync(file), false);
  });
});

describe("poison serve: /metrics and --notify", () => {
  it("serves /metrics without a token when public, and posts to --notify without printing it", async () => {
    const received: Array<{ kind: string; key: string }> = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (chunk: string) => {
        body += chunk;
      });
      req.on("end", () => {
        const payload = JSON.parse(body) as { kind: string; key: string };
        received.push({ kind: payload.kind, key: payload.key });
        res.end("ok");
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    const secretPath = "/hooks/SuperSecretWebhookPath0123456789";
    const webhook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}${secretPath}`;
    const url = `sqlite:${join(dir, "serve.db")}`;
    const store = openPoisonStore(url);
    await store.tryPutPoison("table/9", "proc-9");
    await store.markPoisoned("table/9", "proc-9", new Error("broken"));
    const state = join(dir, "notify-state.json");
    const serve = start([
      "serve",
      "--store",
      url,
      "--listen",
      "127.0.0.1:0",
      "--metrics",
      "public",
      "--notify",
      webhook,
      "--notify-state",
      state,
      "--poll-interval",
      "50",
    ]);
    try {
      const [, base] = (await serve.waitFor(/listening on (http:\/\/\S+)\//)) as RegExpExecArray;
      await serve.waitFor(/metrics at http:\/\/\S+\/metrics \(no token needed\)/);
      await serve.waitFor(
        /notifying http:\/\/127\.0\.0\.1:\d+\/… \(sent notifications recorded in /,
      );
      const metrics = await fetch(`${base}/metrics`);
      assert.equal(metrics.status, 200);
      const text = await metrics.text();
      assert.match(text, /^poison_keys\{state="poisoned"\} 1$/m);
      assert.match(text, /^poison_oldest_poisoned_seconds \d/m);
      // The key poisoned before serve started is notified by the first check.
      await serve.waitFor(/notify: sent poisoned table\/9 to http:\/\/127\.0\.0\.1:\d+\/…/);
      await store.tryPutPoison("table/10", "proc-10");
      await store.markPoisoned("table/10", "proc-10", new Error("broken too"));
      await serve.waitFor(/notify: sent poisoned table\/10/);
      assert.deepEqual(
        received.map((r) => `${r.kind} ${r.key}`),
        ["poisoned table/9", "poisoned table/10"],
      );
      serve.child.kill("SIGTERM");
      assert.equal(await exitOf(serve.child), 0);
      const all = serve.output.stdout + serve.output.stderr;
      assert.ok(
        !all.includes("SuperSecretWebhookPath"),
        `the webhook path is never printed: ${all}`,
      );
      assert.ok(existsSync(state));
    } finally {
      serve.child.kill("SIGKILL");
      receiver.close();
      await store.close();
    }
  });

  it("/metrics needs a token by default (viewer); --metrics off turns it off", async () => {
    const tokens = join(dir, "tokens.json");
    const added = spawnSync(
      process.execPath,
      [BIN, "serve", "--tokens", tokens, "--add-token", "prometheus", "--role", "viewer"],
      { encoding: "utf8" },
    );
    assert.equal(added.status, 0, added.stderr);
    const secret = added.stdout.trim();
    const url = `sqlite:${join(dir, "serve-auth.db")}`;
    for (const [args, withoutToken, withToken] of [
      [[], 401, 200],
      [["--metrics", "off"], 404, 404],
    ] as const) {
      const serve = start([
        "serve",
        "--store",
        url,
        "--listen",
        "127.0.0.1:0",
        "--tokens",
        tokens,
        ...args,
      ]);
      try {
        const [, base] = (await serve.waitFor(/listening on (http:\/\/\S+)\//)) as RegExpExecArray;
        assert.equal((await fetch(`${base}/metrics`)).status, withoutToken);
        const authorized = await fetch(`${base}/metrics`, {
          headers: { authorization: `Bearer ${secret}` },
        });
        assert.equal(authorized.status, withToken);
        serve.child.kill("SIGTERM");
        assert.equal(await exitOf(serve.child), 0);
      } finally {
        serve.child.kill("SIGKILL");
      }
    }
  });

  it("refuses a --notify that is not an http(s) URL without echoing it", () => {
    const run = spawnSync(
      process.execPath,
      [BIN, "serve", "--store", "memory:", "--notify", "smtp://mail/s3cr3t-t0ken-path"],
      { encoding: "utf8", timeout: 20_000 },
    );
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /--notify/);
    assert.doesNotMatch(run.stderr + run.stdout, /s3cr3t/);
  });
});
