/**
 * The driver contract: the small set of atomic primitives a backend must provide. The runtime
 * (`createPoisonStore`) owns validation, namespacing, timestamps, init-once, timeouts and
 * use-after-close, so drivers only translate these calls into their backend's atomic steps.
 *
 * Keys a driver sees are storage keys (the namespace already prefixed); records carry them too.
 */
import type {
  AuditAction,
  AuditEntry,
  PoisonErrorInfo,
  PoisonRecord,
  PoisonState,
} from "./records.js";
import type { DriverWatch } from "./watch.js";

/** What differs between backends, for the runtime, the tests and the docs. */
export interface DriverCapabilities {
  /** A resolved write survives a crash of this process (and, for servers, of the server). */
  readonly durable: boolean;
  /** Other processes see the same keys (false for `memory:`). */
  readonly shared: boolean;
  /** Each single-key call of the core contract is one round trip to a server. */
  readonly oneRoundTrip: boolean;
  /** The most keys one atomic batch may name (default 1000); the runtime refuses larger batches
   *  with InvalidArgumentError before anything is sent. */
  readonly maxBatchKeys?: number;
  /** `list` applies `ListQuery.filter` itself: every row it returns matches the filter, and it
   *  reads on until it has `limit` matches or the range ends. Without it the runtime filters,
   *  reading a bounded number of pages per call. */
  readonly listFilter?: boolean;
  /** Every call runs in this process and settles without waiting on a network or a server
   *  (`memory:`, SQLite, whose only wait is its bounded busy timeout): nothing can hang, so the
   *  runtime arms no per-call timer (options.timeoutMs then bounds only close()). A driver that
   *  may wait on another machine must leave this unset. */
  readonly inProcess?: boolean;
}

/** How `init` may treat the backend. */
export interface InitOptions {
  /** True before a write: create or migrate tables, files and scripts as needed. False before a
   *  read: create and change nothing; report whether this library's storage exists. */
  create: boolean;
}

/** An audit entry to append in the same atomic step as the write it describes. One is stored per
 *  key the write changed; the driver fills `key` and `record`. */
export interface AuditIntent {
  action: AuditAction;
  at: string;
  actor: string;
  reason: string;
  token?: string;
  /** A force-delete that overrode a live holder. */
  evenIfAlive?: true;
}

export type PutOutcome =
  /** Every key is now held by the token: `records` in the order given (new or pre-existing);
   *  `created[i]` is true when this call wrote `records[i]` (the key was absent). */
  | { ok: true; records: PoisonRecord[]; created: boolean[] }
  /** At least one key is held by another token; nothing was written. */
  | { ok: false; conflicts: PoisonRecord[] };

export type RemoveOutcome =
  /** The records removed (keys that were absent are not listed). */
  | { ok: true; removed: PoisonRecord[] }
  /** At least one key is held by another token, or (with `expected`) is no longer the record
   *  the caller decided on: `conflicts` holds those records as they are now (keys found absent
   *  are not listed). Nothing was removed. */
  | { ok: false; conflicts: PoisonRecord[] };

/** Fields a token-checked update may change. */
export interface RecordPatch {
  updatedAt: string;
  state?: PoisonState;
  error?: PoisonErrorInfo;
  heartbeatAt?: string;
  heartbeatIntervalMs?: number;
}

/**
 * The fields that identify one version of a record, for a compare-and-delete: every write of a
 * record (put, mark, heartbeat) changes at least one of them.
 */
export function sameVersion(a: PoisonRecord, b: PoisonRecord): boolean {
  return (
    a.token === b.token &&
    a.state === b.state &&
    a.updatedAt === b.updatedAt &&
    (a.heartbeatAt ?? null) === (b.heartbeatAt ?? null)
  );
}

export type UpdateOutcome =
  | { ok: true; records: PoisonRecord[] }
  /** Nothing was changed: some keys are held by another token, or absent. */
  | { ok: false; conflicts: PoisonRecord[]; missing: string[] };

/** What a listing may be narrowed to. `state` is a stored state: the runtime turns `stale` into
 *  `in-progress` here and checks liveness itself. */
export interface ListFilter {
  state?: PoisonState;
  token?: string;
  operation?: string;
}

export interface ListQuery {
  /** Storage-key prefix, matched literally. */
  prefix: string;
  /** Exclusive lower bound (a storage key, never below `prefix`), or null for the first page. */
  after: string | null;
  limit: number;
  /** Applied by drivers with the `listFilter` capability; others may ignore it. */
  filter?: ListFilter;
}

/** True when `record` passes `filter` (the runtime's check, also for drivers that filter in JS). */
export function matchesFilter(record: PoisonRecord, filter: ListFilter | undefined): boolean {
  if (!filter) return true;
  if (filter.state !== undefined && record.state !== filter.state) return false;
  if (filter.token !== undefined && record.token !== filter.token) return false;
  if (filter.operation !== undefined && record.operation !== filter.operation) return false;
  return true;
}

export interface AuditQuery {
  /** Entries whose storage key starts with this prefix (the namespace). */
  prefix: string;
  /** Only this exact storage key. */
  key?: string;
  /** Exclusive upper bound on `id` (newest first), or null for the first page. */
  before: string | null;
  limit: number;
}

export interface PoisonDriver {
  /** Short backend name, used in errors: `sqlite`, `postgres`… */
  readonly backend: string;
  readonly capabilities: DriverCapabilities;
  /** Where the data lives, safe to print (no password): a path, a redacted URL, a pool's
   *  description. The runtime shows it in messages when the store was not opened by URL. */
  readonly location?: string;

  /**
   * Connect, and with `create` make what is missing (tables, migrations, scripts). Called by the
   * runtime before the first read (`create: false`) or write (`create: true`), and again after a
   * failed attempt or until storage exists. Must be idempotent and safe when two processes start
   * at once. Resolves with whether this library's storage exists now (always true after a
   * successful `create`); with `create: false` nothing may be created or changed.
   */
  init(options: InitOptions): Promise<boolean>;

  /** For every record's key, atomically: absent, write it; held by `token` (all records carry
   *  the same token), leave it; held by another token, write nothing at all. With `audit`,
   *  append one entry per key written, in the same atomic step. */
  put(records: readonly PoisonRecord[], audit?: AuditIntent): Promise<PutOutcome>;

  /** Remove the keys, atomically. `token` null removes whoever holds them; otherwise a key held
   *  by another token aborts the whole call. With `expected` (one entry per key, as the caller
   *  read it: a record, or null for a key read as absent), a key that is no longer as read — not
   *  {@link sameVersion}, absent where a record was read, present where none was — aborts the
   *  whole call: the compare-and-delete behind decisions the runtime makes on a record
   *  (liveness). With `audit`, one entry per removed key. */
  remove(
    keys: readonly string[],
    token: string | null,
    audit?: AuditIntent,
    expected?: readonly (PoisonRecord | null)[],
  ): Promise<RemoveOutcome>;

  /** Token-checked update of present keys, atomically; an absent key or another token changes
   *  nothing. */
  update(keys: readonly string[], token: string, patch: RecordPatch): Promise<UpdateOutcome>;

  /** The record stored under `key`, or null. */
  get(key: string): Promise<PoisonRecord | null>;

  /** Optional fast path for `getPoison`: only the token stored under `key`, or null. A driver
   *  that can read one column more cheaply than the whole record implements it; else the
   *  runtime uses `get`. */
  getToken?(key: string): Promise<string | null>;

  /** Records whose key starts with `prefix` and is greater than `after`, in UTF-8 byte order. */
  list(query: ListQuery): Promise<PoisonRecord[]>;

  /** Audit entries, newest first. */
  audit(query: AuditQuery): Promise<AuditEntry[]>;

  /** Optional native change feed for `store.watch()`; without it the runtime polls `list`.
   *  The contract (no change lost after `ready`, resume from a position, or `resync`) is on
   *  {@link DriverWatch} in src/core/watch.ts. */
  watch?: DriverWatch;

  /** Release every resource. Called once, after pending calls settled. */
  close(): Promise<void>;
}
