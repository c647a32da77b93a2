/**
 * PostgreSQL with TLS and a password (the secured role of `npm run services`: poison_tls, scram,
 * hostssl with a client certificate required, database poison_tls): the conformance suite, the
 * URL forms `pg` users write, and every misconfiguration as a typed error without secrets.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { InvalidArgumentError, openPoisonStore, postgresDriver } from "../../src/index.js";
import { rejectsWith } from "../conformance/index.js";
import { misconfigurationTests, securedSuite, storesClosedAfter } from "../support/secured.js";
import {
  securedPassword,
  securedPostgresUrl,
  tlsFiles,
  withCredentials,
  withParams,
} from "../support/servers.js";

const url = securedPostgresUrl;

const skip = await securedSuite("postgres-tls");

describe("postgres with TLS and a password", { skip }, () => {
  const { track, works } = storesClosedAfter();
  const open = (driverUrl: string) => openPoisonStore(driverUrl, { timeoutMs: 4000 });

  misconfigurationTests("postgres", open, [
    {
      title: "a wrong password",
      url: withCredentials(url, "poison_tls", "wrong-pw"),
      settings: ["password"],
      secrets: ["wrong-pw"],
    },
    { title: "no password", url: withCredentials(url, "poison_tls"), settings: ["password"] },
    {
      title: "a user that does not exist",
      url: withCredentials(url, "nobody", securedPassword),
      settings: ["user"],
    },
    {
      title: "a database that does not exist",
      url: url.replace("/poison_tls?", "/no_such_database?"),
      settings: ["database"],
    },
    {
      title: "an untrusted CA",
      url: withParams(url, { sslrootcert: tlsFiles.rogueCa }),
      settings: ["tls.ca"],
    },
    {
      title: "no CA (the system's list)",
      url: withParams(url, { sslrootcert: null }),
      settings: ["tls.ca"],
    },
    {
      title: "a missing client certificate",
      url: withParams(url, { sslcert: null, sslkey: null }),
      settings: ["tls.cert"],
    },
    {
      title: "a client certificate from another CA",
      url: withParams(url, { sslcert: tlsFiles.rogueCert, sslkey: tlsFiles.rogueKey }),
      settings: ["tls.cert"],
    },
    {
      title: "no TLS where the server requires it",
      url: withParams(url, { sslmode: "disable", sslrootcert: null, sslcert: null, sslkey: null }),
      settings: ["sslmode"],
    },
  ]);

  it("verify-ca checks the chain only; verify-full, require and ssl=true the host name too", async () => {
    await works(open(withParams(url, { sslmode: "verify-ca" })));
    await works(open(withParams(url, { sslmode: "require" })));
    await works(open(withParams(url, { sslmode: null, ssl: "true" })));
    await works(open(url.replace("127.0.0.1", "localhost")));
  });

  it("sslmode=no-verify skips verification, only when asked for", async () => {
    await works(open(withParams(url, { sslmode: "no-verify", sslrootcert: tlsFiles.rogueCa })));
    await works(
      openPoisonStore(
        postgresDriver({
          url: withParams(url, { sslrootcert: null }),
          tls: { rejectUnauthorized: false },
        }),
      ),
    );
  });

  it("the tls option takes PEM text or paths, alone or beside the URL's parameters", async () => {
    const plainUrl = withParams(url, {
      sslmode: null,
      sslrootcert: null,
      sslcert: null,
      sslkey: null,
    });
    await works(
      openPoisonStore(
        postgresDriver({
          url: plainUrl,
          tls: {
            ca: readFileSync(tlsFiles.ca, "utf8"),
            cert: tlsFiles.cert,
            key: readFileSync(tlsFiles.key),
          },
        }),
      ),
    );
    await works(
      openPoisonStore(
        postgresDriver({
          url: withParams(url, { sslcert: null, sslkey: null }),
          tls: { cert: tlsFiles.cert, key: tlsFiles.key },
        }),
      ),
    );
  });

  it("contradictory or unsupported TLS settings are refused before connecting", () => {
    for (const bad of [
      withParams(url, { sslmode: "disable" }), // with sslrootcert…
      withParams(url, { sslmode: "allow" }),
      withParams(url, { sslmode: "verify-ca", sslrootcert: null }),
      withParams(url, { uselibpqcompat: "true" }),
      withParams(url, { ssl: "maybe" }),
      withParams(url, { sslpassword: "key-passphrase" }),
    ]) {
      assert.throws(() => postgresDriver({ url: bad }), InvalidArgumentError, bad);
    }
    assert.throws(
      () => postgresDriver({ url, tls: { ca: tlsFiles.ca } }),
      InvalidArgumentError,
      "the CA given twice",
    );
  });

  it("an unreadable certificate file is an InvalidArgumentError naming the parameter", async () => {
    const store = track(open(withParams(url, { sslrootcert: "/nonexistent/root.pem" })));
    const error = await rejectsWith(store.getPoison("k"), InvalidArgumentError, {
      argument: "sslrootcert",
    });
    assert.match(error.message, /\/nonexistent\/root\.pem.*ENOENT/);
  });

  it("the location shows the URL without its password", () => {
    const store = track(open(url));
    assert.ok(!store.location.includes(encodeURIComponent(securedPassword)));
    assert.ok(!store.location.includes(securedPassword));
    assert.match(store.location, /poison_tls:\*\*\*@/);
  });
});
