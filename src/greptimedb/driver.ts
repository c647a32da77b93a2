/**
 * What the `greptimedb` layout's drivers share: the reader of GreptimeDB's own keys (kept out of
 * the generic driver contract: only this layout reads another system's metadata), the read-only
 * gate, and the link from a store to its driver that `explainPoison` follows.
 */
import type { PoisonStoreClient } from "../core/contract.js";
import type { PoisonDriver } from "../core/driver.js";
import { ReadOnlyStoreError } from "../core/errors.js";
import type { StoredEntry } from "./layout.js";
import type { GreptimeLayout } from "./options.js";

/** Plain reads of GreptimeDB's keys, as stored (the store key prefix included). */
export interface GreptimeMetadataReader {
  /** The values of exact keys; absent keys are missing from the map. */
  get(keys: readonly string[]): Promise<Map<string, Uint8Array>>;
  /** Up to `limit` entries whose key starts with `prefix`, in key byte order. */
  range(prefix: string, limit: number): Promise<StoredEntry[]>;
  /** Whether GreptimeDB's metadata is there to read (SQL: its table exists; etcd: always). */
  found(): Promise<boolean>;
}

/** A driver of the greptimedb layout: the contract, plus the reader and the settings. */
export interface GreptimeDriver extends PoisonDriver {
  readonly greptime: {
    readonly layout: GreptimeLayout;
    readonly metadata: GreptimeMetadataReader;
  };
}

/**
 * The read-only gate: without `allowWrite`, every write is refused before anything is sent.
 * Reads pass through untouched.
 */
export function gateWrites(driver: GreptimeDriver, location: string): GreptimeDriver {
  if (driver.greptime.layout.allowWrite) return driver;
  const refuse = (operation: "put" | "delete" | "update") =>
    Promise.reject(
      new ReadOnlyStoreError(
        driver.backend,
        operation,
        true,
        `the greptimedb layout opens read-only (${location}): the ${operation} was refused and nothing was changed. ` +
          "Once the runbook in docs/GREPTIMEDB.md says to clear, open it with allowWrite: true " +
          "(URL ?allowWrite=true, CLI --allow-write).",
      ),
    );
  return {
    ...driver,
    put: () => refuse("put"),
    remove: () => refuse("delete"),
    update: () => refuse("update"),
  };
}

const drivers = new WeakMap<PoisonStoreClient, GreptimeDriver>();

export function registerGreptimeStore(store: PoisonStoreClient, driver: GreptimeDriver): void {
  drivers.set(store, driver);
}

/** The driver behind a store opened with the greptimedb layout, or undefined. */
export function greptimeDriverOf(store: PoisonStoreClient): GreptimeDriver | undefined {
  return drivers.get(store);
}

/** The layout's settings of a store, or null when it was not opened with the greptimedb layout. */
export function greptimeLayoutOf(store: PoisonStoreClient): Readonly<GreptimeLayout> | null {
  const driver = drivers.get(store);
  return driver ? { ...driver.greptime.layout } : null;
}
