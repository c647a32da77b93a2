/**
 * Tokens: the file format (hashes only), adding and removing, verification, and the slowdown of
 * repeated failed authentication.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  addAdminToken,
  bearerSecret,
  FailureThrottle,
  removeAdminToken,
  TokenVerifier,
} from "../../src/admin/auth.js";
import {
  generateAdminToken,
  hashAdminToken,
  parseAdminTokens,
  readAdminTokens,
} from "../../src/index.js";
import {
  BAD_SECRET,
  call,
  memoryStore,
  OPERATOR_SECRET,
  startAdmin,
  TOKENS,
  VIEWER_SECRET,
} from "./support.js";

const dir = mkdtempSync(join(tmpdir(), "poison-admin-auth-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("the token file", () => {
  it("stores a name, a role and a hash, never the secret, in a file only its owner reads", async () => {
    const file = join(dir, "tokens.json");
    const { secret, token } = await addAdminToken(file, "alice", "operator");
    assert.match(secret, /^pst_[A-Za-z0-9_-]{43}$/);
    const text = readFileSync(file, "utf8");
    assert.ok(!text.includes(secret), "the secret is not in the file");
    assert.ok(!text.includes(secret.slice(4, 20)), "no part of the secret is in the file");
    assert.equal(token.hash, hashAdminToken(secret));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    await addAdminToken(file, "bob", "viewer");
    const tokens = await readAdminTokens(file);
    assert.deepEqual(
      tokens.map((t) => [t.name, t.role]),
      [
        ["alice", "operator"],
        ["bob", "viewer"],
      ],
    );
    await assert.rejects(addAdminToken(file, "alice", "viewer"), /already/);
    assert.equal(await removeAdminToken(file, "alice"), true);
    assert.equal(await removeAdminToken(file, "alice"), false);
    assert.deepEqual(
      (await readAdminTokens(file)).map((t) => t.name),
      ["bob"],
    );
  });

  it("refuses a missing or malformed file with a message that says what to do", async () => {
    await assert.rejects(readAdminTokens(join(dir, "missing.json")), /--add-token/);
    const bad = (tokens: unknown, version: unknown = 1) => JSON.stringify({ version, tokens });
    const hash = `sha256:${"a".repeat(64)}`;
    for (const [text, pattern] of [
      ["{", /not valid JSON/],
      [bad([], 2), /version 2/],
      [bad([{ name: "a", role: "admin", hash }]), /role/],
      [bad([{ name: "a", role: "viewer", hash: "pst_plaintext" }]), /never the token itself/],
      [bad([{ name: "a b", role: "viewer", hash }]), /name/],
      [
        bad([
          { name: "a", role: "viewer", hash },
          { name: "a", role: "operator", hash },
        ]),
        /repeated/,
      ],
    ] as const) {
      assert.throws(() => parseAdminTokens(text), pattern);
    }
    const file = join(dir, "plain.json");
    writeFileSync(file, bad([{ name: "ci", role: "viewer", hash }]));
    assert.equal((await readAdminTokens(file))[0]?.name, "ci");
  });

  it("verifies secrets by hash, and reads only well-formed bearer headers", () => {
    const verifier = new TokenVerifier(TOKENS);
    assert.deepEqual(verifier.verify(OPERATOR_SECRET), { name: "olga", role: "operator" });
    assert.deepEqual(verifier.verify(VIEWER_SECRET), { name: "victor", role: "viewer" });
    assert.equal(verifier.verify(BAD_SECRET), null);
    assert.equal(verifier.verify(""), null);
    assert.notEqual(generateAdminToken(), generateAdminToken());
    assert.equal(bearerSecret(null), undefined);
    assert.equal(bearerSecret("Bearer abc"), "abc");
    assert.equal(bearerSecret("bearer  abc "), "abc");
    assert.equal(bearerSecret("Basic dXNlcjpwYXNz"), null);
    assert.equal(bearerSecret("Bearer"), null);
    assert.equal(bearerSecret("Bearer a b"), null);
  });
});

describe("failed authentication", () => {
  it("is answered at once a few times, then more and more slowly, per client", async () => {
    const throttle = new FailureThrottle({ freeAttempts: 2, baseMs: 40, maxMs: 160 });
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const started = performance.now();
      assert.equal(await throttle.failed("10.0.0.1"), true);
      waits.push(performance.now() - started);
    }
    assert.ok((waits[0] as number) < 20 && (waits[1] as number) < 20, `${waits}`);
    assert.ok((waits[2] as number) >= 35, `third: ${waits[2]}`);
    assert.ok((waits[3] as number) >= 75, `fourth: ${waits[3]}`);
    assert.ok((waits[5] as number) >= 155 && (waits[5] as number) < 400, `capped: ${waits[5]}`);
    const other = performance.now();
    await throttle.failed("10.0.0.2");
    assert.ok(performance.now() - other < 20, "another client is not slowed down");
  });

  it("slows bad tokens over HTTP, not good ones, and answers 429 when too many wait", async () => {
    const store = memoryStore();
    const running = await startAdmin(store, {
      authFailureDelay: { freeAttempts: 1, baseMs: 300, maxMs: 300 },
    });
    try {
      const url = `${running.url}/api/v1/poisons`;
      assert.equal((await call(url, { token: BAD_SECRET })).status, 401);
      let started = performance.now();
      assert.equal((await call(url, { token: BAD_SECRET })).status, 401);
      assert.ok(performance.now() - started >= 280, "the second failure waited");
      started = performance.now();
      assert.equal((await call(url, { token: VIEWER_SECRET })).status, 200);
      assert.ok(performance.now() - started < 250, "a valid token is not slowed down");
      const flood = await Promise.all(
        Array.from({ length: 80 }, () => call(url, { token: BAD_SECRET })),
      );
      const statuses = flood.map((answer) => answer.status);
      assert.ok(statuses.includes(429), "some of the flood were refused at once");
      assert.ok(statuses.every((status) => status === 401 || status === 429));
    } finally {
      await running.close();
      await store.close();
    }
  });
});
