/**
 * `poison serve`, run from the build as an operator runs it: the token file, the refusal to
 * listen beyond loopback without one, the access log, and a graceful SIGTERM with a stream open.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { openPoisonStore } from "../../src/index.js";
import { BIN, collectOutput } from "../cli/support.js";
import { call, codeOf } from "./support.js";

const dir = mkdtempSync(join(tmpdir(), "poison-serve-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function poison(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ...env },
    timeout: 20_000,
  });
}

/** A running `poison serve`, its URL (from its first line) and everything it printed. */
async function serve(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, "serve", "--listen", "127.0.0.1:0", ...args], {
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = collectOutput(child);
  const deadline = Date.now() + 15_000;
  let url: string | undefined;
  while (!url) {
    url = /listening on (http:\/\/\S+)|"url":"(http:[^"]+)"/
      .exec(output.stdout)
      ?.slice(1)
      .find(Boolean);
    if (url) break;
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`poison serve did not start: ${output.stdout}${output.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    child,
    url: url.replace(/\/$/, ""),
    output: () => ({ ...output }),
  };
}

async function stopped(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const [code] = (await once(child, "exit")) as [number | null];
  return code;
}

describe("poison serve", () => {
  const tokens = join(dir, "tokens.json");
  let operatorSecret = "";

  it("adds tokens: the secret on stdout once, only a hash in the file", () => {
    const added = poison([
      "serve",
      "--tokens",
      tokens,
      "--add-token",
      "olga",
      "--role",
      "operator",
    ]);
    assert.equal(added.status, 0, added.stderr);
    operatorSecret = added.stdout.trim();
    assert.match(operatorSecret, /^pst_/);
    assert.match(added.stderr, /shown once/);
    assert.ok(!readFileSync(tokens, "utf8").includes(operatorSecret));
    const viewer = poison([
      "serve",
      "--tokens",
      tokens,
      "--add-token",
      "victor",
      "--role",
      "viewer",
      "--json",
    ]);
    assert.equal(viewer.status, 0, viewer.stderr);
    assert.equal(JSON.parse(viewer.stdout).role, "viewer");
    const twice = poison(["serve", "--tokens", tokens, "--add-token", "olga", "--role", "viewer"]);
    assert.equal(twice.status, 2);
    const noRole = poison(["serve", "--tokens", tokens, "--add-token", "x"]);
    assert.equal(noRole.status, 2);
    assert.match(noRole.stderr, /--role/);
  });

  it("refuses to listen beyond loopback without a token file", () => {
    for (const listen of ["0.0.0.0:0", "[::]:0", "example.com:80"]) {
      const refused = poison(["serve", "--store", "memory:", "--listen", listen]);
      assert.equal(refused.status, 2, listen);
      assert.match(refused.stderr, /refusing to listen/);
    }
    const missing = poison(["serve", "--store", "memory:", "--tokens", join(dir, "none.json")]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cannot read/);
  });

  it("serves with tokens, logs one line per request, and stops on SIGTERM with a stream open", async () => {
    const storeUrl = `sqlite:${join(dir, "serve.db")}`;
    const seeded = openPoisonStore(storeUrl);
    await seeded.tryPutPoison("table/1024", "procedure-7f3a", { operation: "alter-table" });
    await seeded.close();
    const server = await serve(["--store", storeUrl, "--tokens", tokens]);
    try {
      const list = await call(`${server.url}/api/v1/poisons`, { token: operatorSecret });
      assert.equal(list.status, 200);
      assert.equal(
        (list.body as { records: Array<{ key: string }> }).records[0]?.key,
        "table/1024",
      );
      const anonymous = await call(`${server.url}/api/v1/poisons`);
      assert.equal(anonymous.status, 401);
      const cleared = await call(`${server.url}/api/v1/poisons/table%2F1024/clear`, {
        method: "POST",
        token: operatorSecret,
        body: { reason: "served" },
      });
      assert.equal((cleared.body as { audit: { actor: string } }).audit.actor, "olga");
      // An open event stream must not hold the shutdown up.
      const events = await fetch(`${server.url}/api/v1/events`, {
        headers: { authorization: `Bearer ${operatorSecret}` },
      });
      assert.equal(events.status, 200);
      const started = Date.now();
      server.child.kill("SIGTERM");
      assert.equal(await stopped(server.child), 0);
      assert.ok(Date.now() - started < 5000, "stopped promptly");
      const { stdout } = server.output();
      assert.match(stdout, / - GET \/api\/v1\/poisons 401 /);
      assert.match(stdout, / olga POST \/api\/v1\/poisons\/table%2F1024\/clear 200 /);
      assert.match(stdout, /SIGTERM: stopping/);
      assert.match(stdout, /stopped/);
      assert.ok(!stdout.includes(operatorSecret), "the log never holds a token");
    } finally {
      server.child.kill("SIGKILL");
    }
  });

  it("without tokens on loopback, callers act as --actor; --json logs JSON lines", async () => {
    const server = await serve(
      [
        "--store",
        `sqlite:${join(dir, "anon.db")}`,
        "--actor",
        "alice",
        "--json",
        "--base-path",
        "/poison",
      ],
      {},
    );
    try {
      assert.match(server.url, /\/poison$/);
      const me = await call(`${server.url}/api/v1/whoami`);
      assert.deepEqual(
        [(me.body as { name: string }).name, (me.body as { role: string }).role],
        ["alice", "operator"],
      );
      const put = await call(`${server.url}/api/v1/poisons`, {
        method: "POST",
        body: { key: "region/eu", token: "maint", reason: "freeze" },
      });
      assert.equal(put.status, 201, put.text);
      const bad = await call(`${server.url}/api/v1/poisons`, { token: "pst_whatever" });
      assert.equal(codeOf(bad), "UNAUTHENTICATED");
      server.child.kill("SIGINT");
      assert.equal(await stopped(server.child), 0);
      const lines = server
        .output()
        .stdout.trim()
        .split("\n")
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.equal(lines[0]?.event, "listening");
      const request = lines.find((line) => line.method === "POST");
      assert.equal(request?.actor, "alice");
      assert.equal(request?.status, 201);
      assert.equal(lines.at(-1)?.event, "stopped");
    } finally {
      server.child.kill("SIGKILL");
    }
  });
});
