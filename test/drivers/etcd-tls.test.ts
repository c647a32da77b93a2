/**
 * etcd with TLS, client certificates and auth (the secured server of `npm run services`:
 * https://127.0.0.1:2479, --client-cert-auth, users root and poison, --auth-token-ttl 2): the
 * conformance suite, token renewal, and every misconfiguration as a typed error that leaks no
 * secret.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import {
  BackendConfigurationError,
  type EtcdTransport,
  etcdDriver,
  InvalidArgumentError,
  openPoisonStore,
} from "../../src/index.js";
import { rejectsWith } from "../conformance/index.js";
import { assertNativeWatchEndsOnAbort, countedEtcdStore } from "../support/etcd.js";
import { measureCorePaths } from "../support/round-trips.js";
import {
  assertNoSecret,
  expectMisconfigured,
  securedSuite,
  storesClosedAfter,
} from "../support/secured.js";
import {
  securedEtcdUrl,
  securedPassword,
  tlsFiles,
  withCredentials,
  withParams,
} from "../support/servers.js";

const url = securedEtcdUrl;
const metaPrefix = `/poison-test-meta/${randomUUID()}/`;
/** The server's --auth-token-ttl (scripts/services-tls.sh), in ms. */
const TOKEN_TTL_MS = 2000;

const skip = await securedSuite("etcd-tls");

describe("etcd with TLS and auth", { skip }, () => {
  const { track } = storesClosedAfter();

  /** A store that counts requests by path, and remembers the tokens it was given. */
  const counted = (driverUrl = url) => {
    const opened = countedEtcdStore({ url: driverUrl, metaPrefix });
    track(opened.store);
    return opened;
  };

  it("store.watch() is served by etcd's own watch (source native), and its abort ends it", async () => {
    const store = openPoisonStore(etcdDriver({ url, metaPrefix }), {
      namespace: `/poison-test/${randomUUID()}/`,
    });
    await assertNativeWatchEndsOnAbort(track(store));
  });

  it("logs in once, then each core call is one request carrying the token", async () => {
    const { store, paths } = counted();
    // Warm up: login, init and a first write on another key; none of it counts.
    await store.tryPutPoison("rt/warm-up", "warm-up");
    await store.deletePoison("rt/warm-up", "warm-up");
    assert.equal(paths[0], "/v3/auth/authenticate");
    assert.equal(paths.filter((p) => p === "/v3/auth/authenticate").length, 1);
    const measured = await measureCorePaths(store, "rt/1", () => paths.length);
    for (const { label, count } of measured) assert.equal(count, 1, `${label}: ${count}`);
  });

  it("an expired token is renewed once, and the call in flight succeeds (writes too)", async () => {
    const { store, paths, tokens } = counted();
    await store.tryPutPoison("expiry/1", "t");
    assert.equal(tokens.length, 1);
    // etcd drops a simple token after --auth-token-ttl without use (checked every second).
    await new Promise((resolve) => setTimeout(resolve, TOKEN_TTL_MS + 2000));
    paths.length = 0;
    await store.tryPutPoison("expiry/2", "t");
    assert.deepEqual(
      paths,
      ["/v3/kv/txn", "/v3/auth/authenticate", "/v3/kv/txn"],
      "refused for its token, logged in again, sent once more",
    );
    assert.equal(tokens.length, 2);
    assert.notEqual(tokens[0], tokens[1]);
    assert.equal(await store.getPoison("expiry/2"), "t");

    // Many calls meeting the expired token at once share one new login.
    await new Promise((resolve) => setTimeout(resolve, TOKEN_TTL_MS + 2000));
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => store.getPoison(i % 2 ? "expiry/1" : "expiry/2")),
    );
    assert.ok(results.every((token) => token === "t"));
    assert.equal(tokens.length, 3, "one login for sixteen calls");
    await store.deletePoisons(["expiry/1", "expiry/2"], "t");
  });

  it("a token refused again after a fresh login fails the call, never loops", async () => {
    // A transport that makes the server see a bad token every time.
    let logins = 0;
    const transport: EtcdTransport = (request, send) => {
      if (request.path === "/v3/auth/authenticate") logins++;
      else request.headers.authorization = "not-a-token";
      return send(request);
    };
    const store = openPoisonStore(etcdDriver({ url, metaPrefix, transport }), {
      namespace: `/poison-test/${randomUUID()}/`,
    });
    track(store);
    await assert.rejects(store.tryPutPoison("k", "t"), /refused a freshly issued auth token/);
    assert.equal(logins, 2, "the first login, then one renewal");
  });

  it("a wrong password is a configuration error naming the password", async () => {
    const error = await expectMisconfigured(
      openPoisonStore(etcdDriver({ url: withCredentials(url, "poison", "wrong-pw") })),
      "etcd",
      ["password"],
      ["wrong-pw"],
    );
    assert.match(error.message, /etcd:\/\/USER:PASSWORD@/);
  });

  it("no user on a server with auth: a configuration error asking for one", async () => {
    await expectMisconfigured(
      openPoisonStore(etcdDriver({ url: withCredentials(url, null) })),
      "etcd",
      ["user"],
    );
  });

  it("a user without permissions: a configuration error naming the permissions", async () => {
    await expectMisconfigured(
      openPoisonStore(
        etcdDriver({ url: withCredentials(url, "poison-noperm", securedPassword), metaPrefix }),
      ),
      "etcd",
      ["permissions"],
    );
  });

  it("an untrusted CA, or none (the system's list): the CA is what to fix", async () => {
    for (const ca of [tlsFiles.rogueCa, null]) {
      await expectMisconfigured(
        openPoisonStore(etcdDriver({ url: withParams(url, { ca }) })),
        "etcd",
        ["tls.ca"],
      );
    }
  });

  it("a missing client certificate, or one from another CA: the client certificate is what to fix", async () => {
    await expectMisconfigured(
      openPoisonStore(etcdDriver({ url: withParams(url, { cert: null, key: null }) })),
      "etcd",
      ["tls.cert"],
    );
    await expectMisconfigured(
      openPoisonStore(
        etcdDriver({ url: withParams(url, { cert: tlsFiles.rogueCert, key: tlsFiles.rogueKey }) }),
      ),
      "etcd",
      ["tls.cert"],
    );
  });

  it("skipping verification works only when asked for explicitly", async () => {
    const insecure = openPoisonStore(
      etcdDriver({
        url: withParams(url, { ca: tlsFiles.rogueCa, "insecure-skip-tls-verify": "true" }),
        metaPrefix,
      }),
    );
    track(insecure);
    assert.equal(await insecure.getPoison(`insecure/${randomUUID()}`), null);
    const byOption = openPoisonStore(
      etcdDriver({
        url: withParams(url, { ca: null }),
        tls: { rejectUnauthorized: false },
        metaPrefix,
      }),
    );
    track(byOption);
    assert.equal(await byOption.getPoison(`insecure/${randomUUID()}`), null);
  });

  it("the tls option takes PEM text or paths; endpoints and credentials as options", async () => {
    const store = openPoisonStore(
      etcdDriver({
        endpoints: ["https://127.0.0.1:2479"],
        tls: {
          ca: readFileSync(tlsFiles.ca, "utf8"),
          cert: tlsFiles.cert,
          key: readFileSync(tlsFiles.key),
        },
        username: "poison",
        password: securedPassword,
        metaPrefix,
      }),
      { namespace: `/poison-test/${randomUUID()}/` },
    );
    track(store);
    await store.tryPutPoison("k", "t");
    assert.equal(await store.getPoison("k"), "t");
    await store.deletePoison("k", "t");
  });

  it("TLS files that cannot be read or do not load fail typed, without their contents", async () => {
    const missing = openPoisonStore(
      etcdDriver({ url: withParams(url, { ca: "/nonexistent/ca.pem" }) }),
    );
    track(missing);
    const error = await rejectsWith(missing.getPoison("k"), InvalidArgumentError, {
      argument: "ca",
    });
    assert.match(error.message, /\/nonexistent\/ca\.pem.*ENOENT/);

    const key = readFileSync(tlsFiles.key, "utf8");
    const garbled = openPoisonStore(
      etcdDriver({
        url: withParams(url, { cert: null, key: null }),
        tls: {
          cert: readFileSync(tlsFiles.cert, "utf8"),
          key: key.replace(/[A-Za-z]{8}\n/, "!!!!\n"),
        },
      }),
    );
    track(garbled);
    const loadError = await rejectsWith(garbled.getPoison("k"), InvalidArgumentError);
    assertNoSecret(loadError, [key.split("\n")[1] as string], "a key that does not load");
  });

  it("plain etcd:// against the TLS port, and etcds:// against a plain port, hint at the scheme", async () => {
    const plain = openPoisonStore(etcdDriver({ url: "etcd://127.0.0.1:2479" }), {
      timeoutMs: 3000,
    });
    track(plain);
    await assert.rejects(plain.getPoison("k"), /use etcds:\/\//);
  });

  it("one TLS setup and one login serve every endpoint of a multi-endpoint URL", async () => {
    const twice = url.replace("127.0.0.1:2479", "127.0.0.1:1,127.0.0.1:2479");
    const { store, tokens } = counted(twice);
    await store.tryPutPoison("multi", "t");
    assert.equal(await store.getPoison("multi"), "t");
    await store.deletePoison("multi", "t");
    assert.equal(tokens.length, 1, "one login");
  });

  it("no error of a misconfigured store shows the password or a token", async () => {
    const { store, tokens } = counted();
    await store.getPoison("k");
    const failures: unknown[] = [];
    for (const driverUrl of [
      withCredentials(url, "poison", `${securedPassword}x`),
      withParams(url, { ca: tlsFiles.rogueCa }),
      withParams(url, { cert: null, key: null }),
      url.replace("2479", "1"),
    ]) {
      const other = openPoisonStore(etcdDriver({ url: driverUrl }), { timeoutMs: 3000 });
      await other.getPoison("k").catch((error: unknown) => failures.push(error));
      await other.close();
    }
    assert.equal(failures.length, 4);
    for (const failure of failures) {
      assert.ok(failure instanceof Error);
      assertNoSecret(failure, [securedPassword, `${securedPassword}x`, ...tokens], "etcd");
    }
    assert.ok(failures.slice(0, 3).every((f) => f instanceof BackendConfigurationError));
  });
});
