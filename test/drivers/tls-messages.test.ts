/**
 * The four networked backends' TLS failures, as the person who must fix them reads them: one
 * mapping (src/drivers/tls.ts `tlsConfigurationError`), each backend's own hint of where the
 * setting is given. The messages are pinned word for word; no server is needed (etcd's failure
 * comes from a transport that throws it).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mysqlConfigurationError } from "../../src/drivers/mysql/connection.js";
import { postgresConfigurationError } from "../../src/drivers/postgres/connection.js";
import { redisConfigurationError } from "../../src/drivers/redis-connection.js";
import { BackendConfigurationError, etcdDriver, openPoisonStore } from "../../src/index.js";

const failure = (code: string, message: string) => Object.assign(new Error(message), { code });

const FAILURES = {
  untrusted: failure("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"),
  clientCertRefused: failure(
    "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "tlsv13 alert certificate required",
  ),
  plainTextPort: failure("ERR_SSL_WRONG_VERSION_NUMBER", "wrong version number"),
  otherHost: failure(
    "ERR_TLS_CERT_ALTNAME_INVALID",
    "Hostname/IP does not match certificate's altnames",
  ),
};

async function etcdConfigurationError(error: Error): Promise<unknown> {
  const store = openPoisonStore(
    etcdDriver({
      url: "etcd://127.0.0.1:2379",
      transport: async () => {
        throw error;
      },
    }),
  );
  try {
    await store.getPoison("k");
    return null;
  } catch (thrown) {
    return thrown;
  } finally {
    await store.close();
  }
}

const classify: Record<string, (error: Error) => unknown> = {
  mysql: mysqlConfigurationError,
  postgres: postgresConfigurationError,
  redis: redisConfigurationError,
  etcd: etcdConfigurationError,
};

/** [failure, backend, setting, message]. */
const EXPECTED: [keyof typeof FAILURES, string, string, string][] = [
  [
    "untrusted",
    "mysql",
    "tls.ca",
    "mysql backend misconfigured (tls.ca): the server's certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate); give the CA that signed it (ssl-ca=PATH, or tls.ca)",
  ],
  [
    "untrusted",
    "postgres",
    "tls.ca",
    "postgres backend misconfigured (tls.ca): the server's certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate); give the CA that signed it (sslrootcert=PATH, or tls.ca)",
  ],
  [
    "untrusted",
    "redis",
    "tls.ca",
    "redis backend misconfigured (tls.ca): the server's certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate); give the CA that signed it (?ca=PATH, or tls.ca)",
  ],
  [
    "untrusted",
    "etcd",
    "tls.ca",
    "etcd backend misconfigured (tls.ca): http://127.0.0.1:2379: the server's certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate); give the CA that signed it (tls.ca, or ?ca=PATH in the URL)",
  ],
  [
    "clientCertRefused",
    "mysql",
    "tls.cert",
    "mysql backend misconfigured (tls.cert): the server refused the TLS handshake (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED): it requires a client certificate signed by a CA it trusts; give the client certificate and key (ssl-cert=PATH&ssl-key=PATH, or tls.cert and tls.key)",
  ],
  [
    "clientCertRefused",
    "postgres",
    "tls.cert",
    "postgres backend misconfigured (tls.cert): the server refused the TLS handshake (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED): it requires a client certificate signed by a CA it trusts; give the client certificate and key (sslcert=PATH&sslkey=PATH, or tls.cert and tls.key)",
  ],
  [
    "clientCertRefused",
    "redis",
    "tls.cert",
    "redis backend misconfigured (tls.cert): the server refused the TLS handshake (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED): it requires a client certificate signed by a CA it trusts; give the client certificate and key (?cert=PATH&key=PATH, or tls.cert and tls.key)",
  ],
  [
    "clientCertRefused",
    "etcd",
    "tls.cert",
    "etcd backend misconfigured (tls.cert): http://127.0.0.1:2379: the server refused the TLS handshake (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED): it requires a client certificate signed by a CA it trusts; give the client certificate and key (tls.cert and tls.key, or ?cert=PATH&key=PATH in the URL)",
  ],
  [
    "plainTextPort",
    "mysql",
    "url",
    "mysql backend misconfigured (url): the server does not speak TLS on this port (ERR_SSL_WRONG_VERSION_NUMBER); use the plain-text URL form, or the server's TLS port",
  ],
  [
    "plainTextPort",
    "postgres",
    "url",
    "postgres backend misconfigured (url): the server does not speak TLS on this port (ERR_SSL_WRONG_VERSION_NUMBER); use the plain-text URL form, or the server's TLS port",
  ],
  [
    "plainTextPort",
    "redis",
    "url",
    "redis backend misconfigured (url): the server does not speak TLS on this port (ERR_SSL_WRONG_VERSION_NUMBER); use the plain-text URL form, or the server's TLS port: use redis:// for a plain-text port",
  ],
  [
    "plainTextPort",
    "etcd",
    "url",
    "etcd backend misconfigured (url): http://127.0.0.1:2379: the server does not speak TLS on this port (ERR_SSL_WRONG_VERSION_NUMBER); use the plain-text URL form, or the server's TLS port: use etcd:// for a plain-text port",
  ],
  [
    "otherHost",
    "mysql",
    "tls.servername",
    "mysql backend misconfigured (tls.servername): the server's certificate does not name the host connected to (Hostname/IP does not match certificate's altnames); connect by a name the certificate carries, or set tls.servername",
  ],
  [
    "otherHost",
    "postgres",
    "tls.servername",
    "postgres backend misconfigured (tls.servername): the server's certificate does not name the host connected to (Hostname/IP does not match certificate's altnames); connect by a name the certificate carries, or set tls.servername",
  ],
  [
    "otherHost",
    "redis",
    "tls.servername",
    "redis backend misconfigured (tls.servername): the server's certificate does not name the host connected to (Hostname/IP does not match certificate's altnames); connect by a name the certificate carries, or set tls.servername",
  ],
  [
    "otherHost",
    "etcd",
    "tls.servername",
    "etcd backend misconfigured (tls.servername): http://127.0.0.1:2379: the server's certificate does not name the host connected to (Hostname/IP does not match certificate's altnames); connect by a name the certificate carries, or set tls.servername",
  ],
];

describe("TLS failures as configuration errors", () => {
  for (const [name, backend, setting, message] of EXPECTED) {
    it(`${backend}: ${name} names ${setting} and where to set it`, async () => {
      const error = FAILURES[name];
      const classified = await classify[backend]?.(error);
      assert.ok(classified instanceof BackendConfigurationError, String(classified));
      assert.equal(classified.backend, backend);
      assert.equal(classified.setting, setting);
      assert.equal(classified.message, message);
      assert.equal(classified.cause, error);
    });
  }

  it("a network failure is not a configuration error", () => {
    const refused = failure("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1");
    assert.equal(mysqlConfigurationError(refused), null);
    assert.equal(postgresConfigurationError(refused), null);
    assert.equal(redisConfigurationError(refused), null);
  });
});
