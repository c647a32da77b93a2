/**
 * Checks shared by the secured-server tests (test/drivers/<name>-tls.test.ts): the conformance
 * suite on the twin, a misconfiguration is a typed BackendConfigurationError naming what to fix,
 * and no error ever carries a secret.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, it } from "node:test";
import { inspect } from "node:util";
import { BackendConfigurationError, type PoisonStoreClient } from "../../src/index.js";
import { backendSkipReason, testDriver } from "../conformance/index.js";
import { type BackendName, backend, conformanceHarness, type SecuredName } from "./backends.js";
import { securedPassword, securedUnavailable } from "./servers.js";

/**
 * The opening of test/drivers/<name>-tls.test.ts: the conformance suite on the secured twin,
 * then why the file's own cases are skipped (false: they run), probed as the registry probes it.
 */
export async function securedSuite(name: SecuredName): Promise<string | false> {
  await testDriver(conformanceHarness(name));
  const twin = backend(name.replace(/-tls$/, "") as BackendName).secured;
  if (!twin) throw new Error(`${name}: no secured twin in the registry`);
  return (await backendSkipReason(name, () => securedUnavailable(twin.url))) ?? false;
}

/**
 * Called inside a describe block: `track(store)` has the store closed after the block's tests
 * (the last opened first) and returns it; `works(store)` tracks it and proves it usable: a put,
 * a get that sees it and a delete, on a fresh key.
 */
export function storesClosedAfter(): {
  track<S extends PoisonStoreClient>(store: S): S;
  works(store: PoisonStoreClient): Promise<void>;
} {
  const opened: PoisonStoreClient[] = [];
  after(async () => {
    for (const store of opened.reverse()) await store.close();
  });
  const track = <S extends PoisonStoreClient>(store: S): S => {
    opened.push(store);
    return store;
  };
  const works = async (store: PoisonStoreClient) => {
    track(store);
    const key = `works/${randomUUID()}`;
    await store.tryPutPoison(key, "t");
    assert.equal(await store.getPoison(key), "t");
    await store.deletePoison(key, "t");
  };
  return { track, works };
}

/** The forms a secret may take in text: raw, percent-encoded, JSON-escaped. */
export function secretForms(secret: string): string[] {
  return [
    ...new Set([
      secret,
      encodeURIComponent(secret),
      JSON.stringify(secret).slice(1, -1),
      JSON.stringify(encodeURIComponent(secret)).slice(1, -1),
    ]),
  ];
}

/** Every text an error shows: message, stack, fields, causes (util.inspect renders them all). */
export function assertNoSecret(error: unknown, secrets: readonly string[], what: string): void {
  const texts = [inspect(error, { depth: 8 }), safeJson(error)];
  for (const secret of secrets) {
    for (const form of secretForms(secret)) {
      for (const text of texts) {
        assert.ok(!text.includes(form), `${what}: the error shows a secret:\n${text}`);
      }
    }
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "";
  } catch {
    return "";
  }
}

/**
 * A first call on `store` rejects with BackendConfigurationError whose `setting` is one of
 * `settings`, whose message names the backend, and that leaks neither the test password nor
 * `secrets`. Closes the store. Returns the error for further checks.
 */
export async function expectMisconfigured(
  store: PoisonStoreClient,
  backend: string,
  settings: readonly string[],
  secrets: readonly string[] = [],
): Promise<BackendConfigurationError> {
  let caught: unknown;
  try {
    await store.getPoison("misconfigured/probe");
  } catch (error) {
    caught = error;
  } finally {
    await store.close().catch(() => undefined);
  }
  assert.ok(
    caught instanceof BackendConfigurationError,
    `expected BackendConfigurationError (${settings.join(" or ")}), got ${inspect(caught)}`,
  );
  assert.equal(caught.code, "BACKEND_CONFIGURATION");
  assert.equal(caught.backend, backend);
  assert.ok(
    settings.includes(caught.setting),
    `setting ${JSON.stringify(caught.setting)}, expected ${settings.join(" or ")}: ${caught.message}`,
  );
  assert.doesNotMatch(caught.message, /retry/i, "a configuration error never says retry");
  assertNoSecret(caught, [securedPassword, ...secrets], `${backend} ${caught.setting}`);
  return caught;
}

/** One way to get a secured server's setup wrong, and what the error must name. */
export interface Misconfiguration {
  title: string;
  url: string;
  /** Acceptable `setting`s of the BackendConfigurationError. */
  settings: readonly string[];
  /** Secrets beyond the test password that must not show (a wrong password tried). */
  secrets?: readonly string[];
}

/** One test per misconfiguration: a typed BackendConfigurationError naming what to fix, with no
 *  secret in it, on the first call. */
export function misconfigurationTests(
  backend: string,
  open: (url: string) => PoisonStoreClient,
  cases: readonly Misconfiguration[],
): void {
  for (const { title, url, settings, secrets } of cases) {
    it(`${title}: BackendConfigurationError (${settings.join(" or ")})`, async () => {
      await expectMisconfigured(open(url), backend, settings, secrets);
    });
  }
}
