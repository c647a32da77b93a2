/**
 * MariaDB with TLS and a password (the second server of `npm run services`: 127.0.0.1:3307,
 * user poison REQUIRE X509, TLS required over TCP): the conformance suite, the documented URL
 * form, and every misconfiguration as a typed error without secrets.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { InvalidArgumentError, mysqlDriver, openPoisonStore } from "../../src/index.js";
import { rejectsWith } from "../conformance/index.js";
import { misconfigurationTests, securedSuite, storesClosedAfter } from "../support/secured.js";
import {
  securedMysqlUrl,
  securedPassword,
  tlsFiles,
  withCredentials,
  withParams,
} from "../support/servers.js";

const url = securedMysqlUrl;

const skip = await securedSuite("mysql-tls");

describe("mysql with TLS and a password", { skip }, () => {
  const { track, works } = storesClosedAfter();
  const open = (driverUrl: string) => openPoisonStore(driverUrl, { timeoutMs: 4000 });

  misconfigurationTests("mysql", open, [
    {
      title: "a wrong password",
      url: withCredentials(url, "poison", "wrong-pw"),
      settings: ["password"],
      secrets: ["wrong-pw"],
    },
    {
      title: "a database the user may not use",
      url: url.replace("/test?", "/no_such_database?"),
      settings: ["database"],
    },
    {
      title: "an untrusted CA",
      url: withParams(url, { "ssl-ca": tlsFiles.rogueCa }),
      settings: ["tls.ca"],
    },
    {
      title: "no CA (the system's list)",
      url: withParams(url, { "ssl-ca": null }),
      settings: ["tls.ca"],
    },
    {
      // MariaDB answers an account that requires a certificate (REQUIRE X509) as it answers a
      // wrong password; the message names both.
      title: "a missing client certificate",
      url: withParams(url, { "ssl-cert": null, "ssl-key": null }),
      settings: ["password", "tls.cert"],
    },
    {
      title: "a client certificate from another CA",
      url: withParams(url, { "ssl-cert": tlsFiles.rogueCert, "ssl-key": tlsFiles.rogueKey }),
      settings: ["tls.cert"],
    },
    {
      title: "TLS against a server without it",
      url: `mysql://root@127.0.0.1:3306/test?ssl-mode=VERIFY_IDENTITY&ssl-ca=${tlsFiles.ca}`,
      settings: ["ssl-mode"],
    },
  ]);

  it("the missing client certificate's message says to give one", async () => {
    const store = track(open(withParams(url, { "ssl-cert": null, "ssl-key": null })));
    await assert.rejects(store.getPoison("k"), /client certificate \(ssl-cert, ssl-key\)/);
  });

  it("VERIFY_CA, REQUIRED, ssl-ca alone, mariadb:// and a host name all connect", async () => {
    await works(open(withParams(url, { "ssl-mode": "VERIFY_CA" })));
    await works(open(withParams(url, { "ssl-mode": "REQUIRED" })));
    await works(open(withParams(url, { "ssl-mode": null })));
    await works(open(url.replace(/^mysql:/, "mariadb:")));
    await works(open(url.replace("127.0.0.1", "localhost")));
  });

  it("ssl-verify-server-cert=false skips verification, only when asked for", async () => {
    await works(
      open(withParams(url, { "ssl-ca": tlsFiles.rogueCa, "ssl-verify-server-cert": "false" })),
    );
    await works(
      openPoisonStore(
        mysqlDriver({
          url: withParams(url, { "ssl-ca": null }),
          tls: { rejectUnauthorized: false },
        }),
      ),
    );
  });

  it("the tls option takes PEM text or paths", async () => {
    await works(
      openPoisonStore(
        mysqlDriver({
          url: withParams(url, {
            "ssl-mode": null,
            "ssl-ca": null,
            "ssl-cert": null,
            "ssl-key": null,
          }),
          tls: {
            ca: readFileSync(tlsFiles.ca, "utf8"),
            cert: tlsFiles.cert,
            key: readFileSync(tlsFiles.key),
          },
        }),
      ),
    );
  });

  it("contradictory or unsupported TLS settings are refused before connecting", () => {
    for (const bad of [
      withParams(url, { "ssl-mode": "DISABLED" }),
      withParams(url, { "ssl-mode": "PREFERRED" }),
      withParams(url, { "ssl-verify-server-cert": "no" }),
      withParams(url, { ssl: "{}" }),
    ]) {
      assert.throws(() => mysqlDriver({ url: bad }), InvalidArgumentError, bad);
    }
    assert.throws(() => mysqlDriver({ url, tls: { ca: tlsFiles.ca } }), InvalidArgumentError);
  });

  it("an unreadable certificate file is an InvalidArgumentError naming the parameter", async () => {
    const store = track(open(withParams(url, { "ssl-key": "/nonexistent/client.key" })));
    const error = await rejectsWith(store.getPoison("k"), InvalidArgumentError, {
      argument: "ssl-key",
    });
    assert.match(error.message, /\/nonexistent\/client\.key.*ENOENT/);
  });

  it("the location shows the URL without its password", () => {
    const store = track(open(url));
    assert.ok(!store.location.includes(encodeURIComponent(securedPassword)));
    assert.match(store.location, /poison:\*\*\*@/);
  });
});
