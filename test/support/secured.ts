/**
 * Checks shared by the secured-server tests (test/drivers/<name>-tls.test.ts): a misconfiguration
 * is a typed BackendConfigurationError naming what to fix, and no error ever carries a secret.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { inspect } from "node:util";
import { BackendConfigurationError, type PoisonStoreClient } from "../../src/index.js";
import { securedPassword } from "./servers.js";

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
