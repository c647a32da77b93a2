/**
 * The shared conformance suite: every backend's test file calls `testDriver(harness)`, and the
 * same cases run against the real backend. One file per behaviour under this folder. Shipped as
 * `poison-store/testing` (src/testing/index.ts), so it imports nothing but the package's public
 * entry and node's own modules.
 *
 * Environment:
 * - BACKENDS=memory,sqlite   runs only the named backends; the others are reported "not
 *                            selected" (never as tested, never as a failure). `postgres` selects
 *                            its secured twin `postgres-tls` too. POISON_DRIVERS is the old name.
 * - POISON_REQUIRE_ALL=1     turns a selected backend that cannot run (unreachable server) into
 *                            a failure; `.ci/run` sets it.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { appendFileSync } from "node:fs";
import { afterEach, describe, it } from "node:test";
import type { PoisonStoreClient, PoisonStoreOptions } from "../../src/index.js";
import { PoisonStoreError } from "../../src/index.js";

export interface DriverHarness {
  /** The backend's name, as in BACKENDS (a third-party driver picks its own). */
  name: string;
  /** Why the backend cannot be used here (server unreachable…), or null when it can. */
  unavailable?(): Promise<string | null>;
  /** A new store object on the same backend, sharing its data with the others it opened. */
  open(options?: PoisonStoreOptions): PoisonStoreClient;
  /** True when a store opened later sees what an earlier one wrote after it was closed. */
  durable: boolean;
  /** Runs once after the suite. */
  teardown?(): Promise<void>;
}

/** Context handed to each behaviour file. */
export interface SuiteContext {
  harness: DriverHarness;
  /** A namespace unique to this run, so reruns against a persistent server never collide. */
  namespace: string;
  /** Open a store in this run's namespace (unless options say otherwise); closed after the suite. */
  open(options?: PoisonStoreOptions): PoisonStoreClient;
  /** A key unique to the calling test. */
  key(label?: string): string;
}

export type Behaviour = (ctx: SuiteContext) => void;

const baseName = (name: string) => name.replace(/-tls$/, "");

/** The names in BACKENDS (or its old name POISON_DRIVERS), or null when neither narrows. */
export function backendFilter(): string[] | null {
  const text = process.env.BACKENDS ?? process.env.POISON_DRIVERS ?? "";
  const names = text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return names.length > 0 ? names : null;
}

/** Whether BACKENDS selects the backend. A secured variant ("postgres-tls") runs with its
 *  backend ("postgres") or by its own name. */
export function isSelected(name: string): boolean {
  const filter = backendFilter();
  return filter === null || filter.includes(name) || filter.includes(baseName(name));
}

/** For `npm test`'s last line (scripts/test.mjs): which backends ran, which were skipped, which
 *  were not selected. One JSON line per decision, appended by every test process to
 *  POISON_TEST_REPORT. */
function recordDecision(backend: string, skipped: string | null, notSelected: boolean): void {
  const file = process.env.POISON_TEST_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify({ backend, skipped, notSelected })}\n`);
}

/**
 * Decide whether the backend runs: null when it does, else why not. A backend BACKENDS leaves
 * out is "not selected", quietly; a selected one that cannot run is skipped loudly, and in CI
 * (POISON_REQUIRE_ALL=1) that skip is a failure.
 */
export async function backendSkipReason(
  name: string,
  unavailable?: () => Promise<string | null>,
): Promise<string | null> {
  if (!isSelected(name)) {
    const reason = `not selected (BACKENDS=${backendFilter()?.join(",")})`;
    recordDecision(name, reason, true);
    return reason;
  }
  const reason = unavailable ? await unavailable() : null;
  recordDecision(name, reason, false);
  if (reason === null) return null;
  if (process.env.POISON_REQUIRE_ALL === "1") {
    it(`${name} backend is available (POISON_REQUIRE_ALL=1)`, () => {
      assert.fail(
        `the ${name} backend was required but is unavailable: ${reason}. Run \`npm run services\`.`,
      );
    });
    return reason;
  }
  process.stderr.write(`\n*** SKIPPED the ${name} backend: ${reason} ***\n\n`);
  return reason;
}

/**
 * Whether a suite titled `title` runs on `harness`'s backend; when it does not, its block is
 * reported skipped, with the reason (see {@link backendSkipReason}).
 */
export async function suiteRuns(
  title: string,
  harness: { name: string; unavailable?(): Promise<string | null> },
): Promise<boolean> {
  const skip = await backendSkipReason(harness.name, harness.unavailable?.bind(harness));
  if (skip === null) return true;
  describe(title, { skip: `backend skipped: ${skip}` }, () => {});
  return false;
}

/**
 * A suite's block on one backend: each behaviour in a block of its own, run one at a time; the
 * stores a test opened (pushed to `opened`) are closed when it ends, as kept until the suite
 * ends their idle pools add up past a shared server's connection limit (PostgreSQL's 100); a
 * last test closes what is left and runs `teardown`.
 */
export function describeSuite<Context>(
  title: string,
  behaviours: Record<string, (ctx: Context) => void>,
  ctx: Context,
  opened: PoisonStoreClient[],
  teardown: () => Promise<void> | undefined,
): void {
  describe(title, { concurrency: false }, () => {
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    });
    for (const [name, behaviour] of Object.entries(behaviours)) {
      describe(name, () => behaviour(ctx));
    }
    it("closes every store it opened", async () => {
      await Promise.all(opened.map((store) => store.close()));
      await teardown();
    });
  });
}

export async function runSuite(
  harness: DriverHarness,
  behaviours: Record<string, Behaviour>,
): Promise<void> {
  const title = `conformance: ${harness.name}`;
  if (!(await suiteRuns(title, harness))) return;
  const namespace = `/poison-test/${randomUUID()}/`;
  const opened: PoisonStoreClient[] = [];
  const ctx: SuiteContext = {
    harness,
    namespace,
    open(options) {
      const store = harness.open({ namespace, ...options });
      opened.push(store);
      return store;
    },
    key(label = "k") {
      return `${label}/${randomUUID()}`;
    },
  };
  describeSuite(title, behaviours, ctx, opened, () => harness.teardown?.());
}

/** Assert that `promise` rejects with an instance of `Class` whose fields include `fields`. */
export async function rejectsWith<E extends PoisonStoreError>(
  promise: Promise<unknown>,
  Class: abstract new (...args: never[]) => E,
  fields: Partial<Record<keyof E, unknown>> = {},
): Promise<E> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, `expected a rejection with ${Class.name}, but the call resolved`);
  assert.ok(caught instanceof Class, `expected ${Class.name}, got ${String(caught)}`);
  assert.ok(caught instanceof PoisonStoreError);
  for (const [field, value] of Object.entries(fields)) {
    assert.deepEqual(
      (caught as unknown as Record<string, unknown>)[field],
      value,
      `${Class.name}.${field}`,
    );
  }
  return caught;
}

/** Keys that must be stored verbatim on every backend. */
export const AWKWARD_KEYS: readonly string[] = [
  "a%b",
  "a_b",
  "*",
  "[x]",
  "?",
  "'; DROP TABLE x; --",
  'quote"d',
  "back\\slash",
  "über/表/🙂",
  "a/b/",
  "/",
  " leading and trailing ",
  "tab\tnew\nline",
  "\u{10FFFF}",
  "\uFFFD",
];
