/**
 * The guard suite's harness: every backend's guard test file calls `guardSuite(harness)` with a
 * factory of raw drivers on one shared backend. Stores are built from those drivers, optionally
 * through {@link faultyDriver}, so outage cases run on every backend the same way.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import {
  createPoisonStore,
  type PoisonDriver,
  PoisonGuard,
  type PoisonGuardOptions,
  type PoisonStoreClient,
  type PoisonStoreOptions,
} from "../../src/index.js";
import { describeSuite, suiteRuns } from "../conformance/harness.js";

export interface GuardHarness {
  /** The backend's name, as in POISON_DRIVERS. */
  name: string;
  /** Why the backend cannot be used here, or null when it can. */
  unavailable?(): Promise<string | null>;
  /** A new driver on the same backend (sharing its data with the others it made). */
  driver(): PoisonDriver;
  teardown?(): Promise<void>;
}

/** Switches of {@link faultyDriver}: while one is on, that driver call throws as an unreachable
 *  backend would (the runtime turns it into BackendUnavailableError). */
export interface Faults {
  remove: boolean;
  update: boolean;
  put: boolean;
}

export function faultyDriver(inner: PoisonDriver, faults: Faults): PoisonDriver {
  const cut = (what: keyof Faults) => {
    if (faults[what]) throw new Error(`injected fault: connection reset during ${what}`);
  };
  return {
    backend: inner.backend,
    capabilities: inner.capabilities,
    init: (options) => inner.init(options),
    put: async (records, audit) => {
      cut("put");
      return inner.put(records, audit);
    },
    remove: async (keys, token, audit, expected) => {
      cut("remove");
      return inner.remove(keys, token, audit, expected);
    },
    update: async (keys, token, patch) => {
      cut("update");
      return inner.update(keys, token, patch);
    },
    get: (key) => inner.get(key),
    list: (query) => inner.list(query),
    audit: (query) => inner.audit(query),
    close: () => inner.close(),
  };
}

export interface GuardSuiteContext {
  harness: GuardHarness;
  /** A store in this run's namespace; closed after the suite. */
  open(options?: PoisonStoreOptions): PoisonStoreClient;
  /** A store whose driver calls fail while the returned switches are on. */
  openFaulty(options?: PoisonStoreOptions): { store: PoisonStoreClient; faults: Faults };
  /** A guard with test-friendly defaults (no heartbeats, short deterministic backoff). */
  guard(store: PoisonStoreClient, options?: PoisonGuardOptions): PoisonGuard;
  key(label?: string): string;
  token(label?: string): string;
}

export type GuardBehaviour = (ctx: GuardSuiteContext) => void;

/** The rejection of `promise`, which must reject. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

export async function runGuardSuite(
  harness: GuardHarness,
  behaviours: Record<string, GuardBehaviour>,
): Promise<void> {
  const title = `guard: ${harness.name}`;
  if (!(await suiteRuns(title, harness))) return;
  const namespace = `/poison-guard-test/${randomUUID()}/`;
  const opened: PoisonStoreClient[] = [];
  const ctx: GuardSuiteContext = {
    harness,
    open(options) {
      const store = createPoisonStore(harness.driver(), { namespace, ...options });
      opened.push(store);
      return store;
    },
    openFaulty(options) {
      const faults: Faults = { remove: false, update: false, put: false };
      const store = createPoisonStore(faultyDriver(harness.driver(), faults), {
        namespace,
        ...options,
      });
      opened.push(store);
      return { store, faults };
    },
    guard(store, options) {
      return new PoisonGuard(store, {
        heartbeatIntervalMs: false,
        retry: { maxAttempts: 3, minDelayMs: 5, maxDelayMs: 20 },
        storeRetry: { maxAttempts: 2, minDelayMs: 5, maxDelayMs: 10 },
        random: () => 0.5,
        ...options,
      });
    },
    key(label = "k") {
      return `${label}/${randomUUID()}`;
    },
    token(label = "t") {
      return `${label}-${randomUUID()}`;
    },
  };
  describeSuite(title, behaviours, ctx, opened, () => harness.teardown?.());
}
