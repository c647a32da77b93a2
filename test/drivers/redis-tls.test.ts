/**
 * Redis with TLS and an ACL user (the second server of `npm run services`: 127.0.0.1:6380, TLS
 * only, client certificates required, user poison): the conformance suite, and every
 * misconfiguration as a typed error without secrets.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import {
  BackendUnavailableError,
  InvalidArgumentError,
  openPoisonStore,
  redisDriver,
} from "../../src/index.js";
import { rejectsWith } from "../conformance/index.js";
import {
  assertNoSecret,
  misconfigurationTests,
  securedSuite,
  storesClosedAfter,
} from "../support/secured.js";
import {
  securedPassword,
  securedRedisUrl,
  tlsFiles,
  withCredentials,
  withParams,
} from "../support/servers.js";

const url = securedRedisUrl;
const keyPrefix = `{poison-test-${randomUUID()}}:`;

const skip = await securedSuite("redis-tls");

describe("redis with TLS and an ACL user", { skip }, () => {
  const { track, works } = storesClosedAfter();
  const open = (driverUrl: string) =>
    openPoisonStore(redisDriver({ url: driverUrl, keyPrefix }), { timeoutMs: 4000 });

  misconfigurationTests("redis", open, [
    {
      title: "a wrong password",
      url: withCredentials(url, "poison", "wrong-pw"),
      settings: ["password"],
      secrets: ["wrong-pw"],
    },
    { title: "no password", url: withCredentials(url, null), settings: ["password"] },
    {
      title: "an untrusted CA",
      url: withParams(url, { ca: tlsFiles.rogueCa }),
      settings: ["tls.ca"],
    },
    {
      title: "no CA (the system's list)",
      url: withParams(url, { ca: null }),
      settings: ["tls.ca"],
    },
    {
      title: "a missing client certificate",
      url: withParams(url, { cert: null, key: null }),
      settings: ["tls.cert"],
    },
    {
      title: "a client certificate from another CA",
      url: withParams(url, { cert: tlsFiles.rogueCert, key: tlsFiles.rogueKey }),
      settings: ["tls.cert"],
    },
  ]);

  it("a refused connection keeps its cause (ECONNREFUSED), not only 'Connection is closed'", async () => {
    const store = track(open(withParams(url.replace("6380", "1"), {})));
    const error = await rejectsWith(store.getPoison("k"), BackendUnavailableError);
    assert.match(error.message, /ECONNREFUSED/);
    assert.equal((error.cause as { code?: string } | undefined)?.code, "ECONNREFUSED");
    assertNoSecret(error, [securedPassword], "refused");
  });

  it("redis:// against the TLS port hints at rediss://", async () => {
    const store = track(open("redis://127.0.0.1:6380"));
    await assert.rejects(store.getPoison("k"), /use rediss:\/\//);
  });

  it("skipping verification works only when asked for explicitly", async () => {
    await works(
      open(withParams(url, { ca: tlsFiles.rogueCa, "insecure-skip-tls-verify": "true" })),
    );
    await works(
      openPoisonStore(
        redisDriver({
          url: withParams(url, { ca: null }),
          tls: { rejectUnauthorized: false },
          keyPrefix,
        }),
      ),
    );
  });

  it("the tls option takes PEM text or paths; a host name works as well as the address", async () => {
    await works(
      openPoisonStore(
        redisDriver({
          url: withParams(url, { ca: null, cert: null, key: null }),
          tls: {
            ca: readFileSync(tlsFiles.ca, "utf8"),
            cert: tlsFiles.cert,
            key: readFileSync(tlsFiles.key),
          },
          keyPrefix,
        }),
      ),
    );
    await works(open(url.replace("127.0.0.1", "localhost")));
  });

  it("TLS settings on redis://, a bad flag, or the CA given twice are refused before connecting", () => {
    assert.throws(
      () => redisDriver({ url: `redis://127.0.0.1:6379?ca=${tlsFiles.ca}` }),
      InvalidArgumentError,
    );
    assert.throws(
      () => redisDriver({ url: "redis://127.0.0.1:6379", tls: { ca: tlsFiles.ca } }),
      InvalidArgumentError,
    );
    assert.throws(
      () => redisDriver({ url: withParams(url, { "insecure-skip-tls-verify": "yes" }) }),
      InvalidArgumentError,
    );
    assert.throws(() => redisDriver({ url, tls: { ca: tlsFiles.ca } }), InvalidArgumentError);
  });

  it("the location shows the URL without its password", () => {
    const store = track(open(url));
    assert.ok(!store.location.includes(encodeURIComponent(securedPassword)));
    assert.match(store.location, /poison:\*\*\*@/);
  });
});
