/**
 * The runtime every backend runs under. It owns what drivers must not each re-implement:
 * argument validation, the namespace, timestamps, record building, init-once (retried after a
 * failure), a bound on every call, use-after-close, and the mapping of driver results to the
 * typed errors of the contract.
 */
import { hostname } from "node:os";
import { OBSERVED_CALLS, outcomeOf, type StoreCallListener } from "./calls.js";
import type { PoisonStoreClient } from "./contract.js";
import {
  type AuditIntent,
  type ListFilter,
  matchesFilter,
  type PoisonDriver,
  type PutOutcome,
  type RecordPatch,
  type RemoveOutcome,
} from "./driver.js";
import {
  BackendUnavailableError,
  HolderAliveError,
  InvalidArgumentError,
  PoisonConflictError,
  PoisonNotFoundError,
} from "./errors.js";
import { decodeAuditCursor, decodeCursor, encodeAuditCursor, encodeCursor } from "./keys.js";
import {
  aliveForRefusal,
  DEFAULT_CLOCK_SKEW_MS,
  describeLiveness,
  LIVENESS_FACTOR,
  livenessOf,
} from "./liveness.js";
import { DEFAULT_NAMESPACE } from "./namespace.js";
import type {
  AuditActor,
  AuditEntry,
  AuditLogOptions,
  AuditPage,
  DeletePoisonOptions,
  DeletePoisonsResult,
  ForceDeleteOptions,
  ListPoisonsOptions,
  ListState,
  PoisonErrorInfo,
  PoisonPage,
  PoisonRecord,
  PutPoisonInfo,
  PutPoisonsResult,
} from "./records.js";
import { optimistic } from "./retry.js";
import { StoreRuntime } from "./runtime.js";
import {
  checkData,
  checkDuration,
  checkKey,
  checkKeys,
  checkLimit,
  checkNamespace,
  checkObject,
  checkOptionalString,
  checkRecordedInterval,
  checkString,
  checkToken,
  MAX_LABEL_BYTES,
  MAX_PAGE_SIZE,
  MAX_STACK_BYTES,
  MAX_TEXT_BYTES,
} from "./validation.js";
import { type ChangeStream, WatchHub, type WatchOptions } from "./watch.js";

export { DEFAULT_NAMESPACE } from "./namespace.js";
/** Upper bound of any single call, including connecting. */
export const DEFAULT_TIMEOUT_MS = 5000;

export interface PoisonStoreOptions {
  /** Prefixed to every stored key. Default `/__procedure_poison/`. */
  namespace?: string;
  /** A call that has not settled after this many milliseconds rejects with
   *  BackendUnavailableError (its outcome unknown). Default 5000. */
  timeoutMs?: number;
  /** Where timestamps come from; for tests. Default `() => new Date()`. */
  clock?: () => Date;
  /** How far the clocks of a holder and of whoever force-deletes may disagree: a forced delete
   *  refuses a holder whose last heartbeat is younger than 3 intervals plus this. Default 5000. */
  clockSkewMs?: number;
  /** Where the store is, as shown in messages (`--store …`); must not hold a password.
   *  `openPoisonStore(url)` sets the redacted URL. Default: the driver's description. */
  location?: string;
}

/** Passes of a compare-and-delete before giving up (a holder heartbeating every few ms). */
const MAX_DECISION_ATTEMPTS = 16;
/** Driver pages a filtered listing reads at most per call: the work of one call stays bounded
 *  whatever the filter matches; a page may then come back short with a cursor. */
const MAX_FILTER_SCANS = 8;
type PutOk = Extract<PutOutcome, { ok: true }>;

/** Wrap a driver in the runtime. `openPoisonStore` does this for URLs. */
export function createPoisonStore(
  driver: PoisonDriver,
  options: PoisonStoreOptions = {},
): PoisonStoreClient {
  return new ManagedPoisonStore(driver, options);
}

class ManagedPoisonStore implements PoisonStoreClient {
  readonly backend: string;
  readonly namespace: string;
  readonly location: string;
  readonly #driver: PoisonDriver;
  readonly #maxBatchKeys: number;
  readonly #clockSkewMs: number;
  readonly #clock: () => Date;
  /** No clock was given: #now may read Date.now() and reuse its text within a millisecond. */
  readonly #systemClock: boolean;
  /** The last millisecond #now formatted, and its text. */
  #nowMs = Number.NaN;
  #nowText = "";
  readonly #runtime: StoreRuntime;

  constructor(driver: PoisonDriver, options: PoisonStoreOptions) {
    const checked = checkObject("options", options, false) ?? {};
    this.#driver = driver;
    this.backend = driver.backend;
    this.#maxBatchKeys = driver.capabilities.maxBatchKeys ?? MAX_PAGE_SIZE;
    this.namespace =
      checked.namespace === undefined ? DEFAULT_NAMESPACE : checkNamespace(checked.namespace);
    this.#runtime = new StoreRuntime(
      driver,
      checkDuration("options.timeoutMs", checked.timeoutMs, DEFAULT_TIMEOUT_MS),
    );
    this.#clockSkewMs = checkDuration(
      "options.clockSkewMs",
      checked.clockSkewMs,
      DEFAULT_CLOCK_SKEW_MS,
      { allowZero: true },
    );
    this.#systemClock = typeof checked.clock !== "function";
    this.#clock = this.#systemClock ? () => new Date() : (checked.clock as () => Date);
    this.location =
      checkOptionalString("options.location", checked.location, 4096) ??
      driver.location ??
      driver.backend;
  }

  // ---- SPEC §2 -------------------------------------------------------------------------

  // The single-key calls chain promises rather than await in async bodies: on the in-process
  // backends each async frame saved is a measurable share of a call.

  tryPutPoison(key: string, token: string, info?: PutPoisonInfo): Promise<void> {
    return this.#runtime.call(() => this.#put([checkKey(key)], token, info, false));
  }

  deletePoison(key: string, token: string, options?: DeletePoisonOptions): Promise<void> {
    return this.#runtime.call(() =>
      this.#remove([checkKey(key)], checkToken(token), options, false),
    );
  }

  getPoison(key: string): Promise<string | null> {
    // Not an async body: the most frequent call saves a promise and a hop (it may throw
    // synchronously, which the runtime turns into a rejection).
    return this.#runtime.call(() => {
      const storageKey = this.#storageKey(checkKey(key));
      const driver = this.#runtime.driverFor("read");
      return driver === this.#driver
        ? tokenOf(driver, storageKey)
        : (driver as Promise<PoisonDriver | null>).then((ready) =>
            ready ? tokenOf(ready, storageKey) : null,
          );
    });
  }

  // ---- batches (the guard's all-or-none steps) -------------------------------------------

  tryPutPoisons(
    keys: readonly string[],
    token: string,
    info?: PutPoisonInfo,
  ): Promise<PutPoisonsResult> {
    // Chained rather than async bodies, as the single-key calls (the guard's two steps).
    return this.#runtime.call(() => {
      const checked = checkKeys(keys, "keys", this.#maxBatchKeys);
      return this.#put(checked, token, info, true).then((outcome) => ({
        records: outcome.records.map((record) => this.#userRecord(record)),
        created: checked.filter((_, i) => outcome.created[i] === true),
      }));
    });
  }

  deletePoisons(keys: readonly string[], token: string): Promise<DeletePoisonsResult> {
    return this.#runtime.call(() => {
      const checked = checkKeys(keys, "keys", this.#maxBatchKeys);
      return this.#remove(checked, checkToken(token), undefined, true).then((removed) => ({
        removed: removed.map((record) => this.#userKey(record.key)),
      }));
    });
  }

  exists(): Promise<boolean> {
    return this.#runtime.call(async () => (await this.#runtime.driverFor("read")) !== null);
  }

  // ---- SPEC §3 -------------------------------------------------------------------------

  inspectPoison(key: string): Promise<PoisonRecord | null> {
    return this.#runtime.call(async () => {
      const storageKey = this.#storageKey(checkKey(key));
      const driver = await this.#runtime.driverFor("read");
      const record = driver ? await driver.get(storageKey) : null;
      return record ? this.#userRecord(record) : null;
    });
  }

  listPoisons(options: ListPoisonsOptions = {}): Promise<PoisonPage> {
    return this.#runtime.call(async () => {
      const checked = checkObject("options", options, false) ?? {};
      const prefix =
        checked.prefix === undefined
          ? ""
          : checkString("options.prefix", checked.prefix, 1024, true);
      const limit = checkLimit(checked.limit, "options.limit");
      const after = decodeCursor(checked.cursor, prefix, "options.cursor");
      const state = checkListState(checked.state);
      const filter: ListFilter = {};
      if (state !== undefined) filter.state = state === "stale" ? "in-progress" : state;
      if (checked.token !== undefined) filter.token = checkToken(checked.token, "options.token");
      if (checked.operation !== undefined)
        filter.operation = checkString("options.operation", checked.operation, MAX_LABEL_BYTES);
      const filtered = Object.keys(filter).length > 0;
      const driver = await this.#runtime.driverFor("read");
      if (!driver) return { records: [], cursor: null };
      const now = this.#clock();
      const matches = (row: PoisonRecord) =>
        matchesFilter(row, filter) && (state !== "stale" || livenessOf(row, now).stale);
      // Read one row more than the page to know whether another follows. Without filters one
      // read makes the page; with them, rows that do not match are skipped, for a bounded number
      // of reads, after which the page ends early with a cursor at the last row read.
      const records: PoisonRecord[] = [];
      let from = after === null ? null : this.#storageKey(after);
      for (let scan = 0; scan < MAX_FILTER_SCANS; scan++) {
        const rows = await driver.list({
          prefix: this.#storageKey(prefix),
          after: from,
          limit: limit + 1,
          ...(filtered ? { filter } : {}),
        });
        for (const row of rows) {
          if (!matches(row)) {
            from = row.key;
            continue;
          }
          if (records.length === limit) return this.#page(prefix, records, records.at(-1)?.key);
          records.push(this.#userRecord(row));
          from = row.key;
        }
        if (rows.length <= limit) return this.#page(prefix, records, null);
      }
      return this.#page(prefix, records, from === null ? null : this.#userKey(from));
    });
  }

  markPoisoned(key: string, token: string, error: unknown): Promise<PoisonRecord> {
    return this.#runtime.call(async () => {
      const checkedKey = checkKey(key);
      const checkedToken = checkToken(token);
      const now = this.#now();
      const records = await this.#update([checkedKey], checkedToken, {
        updatedAt: now,
        state: "poisoned",
        error: describeError(error, now),
      });
      return firstOf(records, this.backend);
    });
  }

  markPoisons(keys: readonly string[], token: string, error: unknown): Promise<PoisonRecord[]> {
    return this.#runtime.call(async () => {
      const checkedKeys = checkKeys(keys, "keys", this.#maxBatchKeys);
      const checkedToken = checkToken(token);
      const now = this.#now();
      return this.#update(checkedKeys, checkedToken, {
        updatedAt: now,
        state: "poisoned",
        error: describeError(error, now),
      });
    });
  }

  touchPoisons(
    keys: readonly string[],
    token: string,
    options?: { heartbeatIntervalMs?: number },
  ): Promise<PoisonRecord[]> {
    return this.#runtime.call(async () => {
      const checkedKeys = checkKeys(keys, "keys", this.#maxBatchKeys);
      const checkedToken = checkToken(token);
      const checked = checkObject("options", options, true);
      const now = this.#now();
      const patch: RecordPatch = { updatedAt: now, heartbeatAt: now };
      if (checked?.heartbeatIntervalMs !== undefined) {
        patch.heartbeatIntervalMs = checkRecordedInterval(
          "options.heartbeatIntervalMs",
          checked.heartbeatIntervalMs,
        );
      }
      return this.#update(checkedKeys, checkedToken, patch);
    });
  }

  forceDeletePoison(key: string, options: ForceDeleteOptions): Promise<PoisonRecord | null> {
    return this.#runtime.call(async () => {
      const removed = await this.#forceDelete([checkKey(key)], options);
      return removed[0] ?? null;
    });
  }

  forceDeletePoisons(
    keys: readonly string[],
    options: ForceDeleteOptions,
  ): Promise<PoisonRecord[]> {
    return this.#runtime.call(() =>
      this.#forceDelete(checkKeys(keys, "keys", this.#maxBatchKeys), options),
    );
  }

  auditLog(options: AuditLogOptions = {}): Promise<AuditPage> {
    return this.#runtime.call(async () => {
      const checked = checkObject("options", options, false) ?? {};
      const limit = checkLimit(checked.limit, "options.limit");
      const key = checked.key === undefined ? undefined : checkKey(checked.key, "options.key");
      const before = decodeAuditCursor(checked.cursor, key ?? "", "options.cursor");
      const driver = await this.#runtime.driverFor("read");
      if (!driver) return { entries: [], cursor: null };
      const rows = await driver.audit({
        prefix: this.namespace,
        ...(key === undefined ? {} : { key: this.#storageKey(key) }),
        before,
        limit: limit + 1,
      });
      const entries = rows.slice(0, limit).map((entry) => this.#userAuditEntry(entry));
      const last = entries.at(-1);
      return {
        entries,
        cursor: rows.length > limit && last ? encodeAuditCursor(key ?? "", last.id) : null,
      };
    });
  }

  close(): Promise<void> {
    if (!this.#runtime.closed) this.#watches?.close();
    return this.#runtime.close();
  }

  // ---- observability (SPEC §7; src/core/watch.ts, src/core/calls.ts) ---------------------

  #watches: WatchHub | null = null;
  readonly #callListeners = new Set<StoreCallListener>();

  watch(options?: WatchOptions): ChangeStream {
    this.#watches ??= new WatchHub({
      backend: this.backend,
      namespace: this.namespace,
      driver: this.#driver,
      store: this,
      prepare: () => this.#runtime.call(async () => this.#runtime.driverFor("read")),
      clock: this.#clock,
    });
    return this.#watches.open(options, this.#runtime.closed);
  }

  onCall(listener: StoreCallListener): () => void {
    if (typeof listener !== "function")
      throw new InvalidArgumentError("listener", "must be a function");
    const entry: StoreCallListener = (event) => listener(event);
    this.#callListeners.add(entry);
    return () => this.#callListeners.delete(entry);
  }

  static {
    // Every public call reports to the onCall listeners. Wrapped here, once, rather than in each
    // method; without listeners a call costs one size check more.
    for (const op of OBSERVED_CALLS) {
      const plain = ManagedPoisonStore.prototype[op] as (...args: unknown[]) => Promise<unknown>;
      Object.defineProperty(ManagedPoisonStore.prototype, op, {
        configurable: true,
        writable: true,
        // Three parameters rather than a rest array: no public call takes more, and an array
        // per call was a share of the in-process calls (a missing argument is passed as
        // undefined, which each method treats as absent, defaults included).
        value: function observed(this: ManagedPoisonStore, a: unknown, b: unknown, c: unknown) {
          const listeners = this.#callListeners;
          if (listeners.size === 0) return plain.call(this, a, b, c);
          const started = performance.now();
          const result = plain.call(this, a, b, c);
          const report = (outcome: string, error?: unknown) => {
            const event = {
              backend: this.backend,
              op,
              durationMs: performance.now() - started,
              outcome,
              ...(error === undefined ? {} : { error }),
            };
            for (const listener of listeners) {
              try {
                listener(event);
              } catch {
                // Observers never change a call.
              }
            }
          };
          result.then(
            () => report("ok"),
            (error: unknown) => report(outcomeOf(error), error),
          );
          return result;
        },
      });
    }
  }

  // ---- internals -------------------------------------------------------------------------

  /** A put of validated user keys; with `keep`, resolves with the driver's outcome (storage
   *  keys), which the batch call turns into its result; without, with nothing. Validation
   *  failures throw synchronously (before the backend is reached). */
  #put(keys: string[], token: string, info: PutPoisonInfo | undefined, keep: true): Promise<PutOk>;
  #put(
    keys: string[],
    token: string,
    info: PutPoisonInfo | undefined,
    keep: false,
  ): Promise<undefined>;
  #put(
    keys: string[],
    token: string,
    info: PutPoisonInfo | undefined,
    keep: boolean,
  ): Promise<PutOk | undefined> {
    const checkedToken = checkToken(token);
    const fields = checkPutInfo(info);
    const now = this.#now();
    const records: PoisonRecord[] =
      keys.length === 1
        ? [newRecord(this.#storageKey(keys[0] as string), checkedToken, now, fields)]
        : keys.map((key) => newRecord(this.#storageKey(key), checkedToken, now, fields));
    const audit: AuditIntent | undefined = fields?.audit
      ? { action: "put", at: now, token: checkedToken, ...fields.audit }
      : undefined;
    const driver = this.#runtime.driverFor("create");
    const put =
      driver === this.#driver
        ? driver.put(records, audit)
        : (driver as Promise<PoisonDriver>).then((ready) => ready.put(records, audit));
    return put.then((outcome) => {
      if (!outcome.ok) {
        throw this.#conflictOf(records, outcome.conflicts, checkedToken);
      }
      return keep ? outcome : undefined;
    });
  }

  /** Token-checked delete; with `keep`, resolves with the driver's records it removed (storage
   *  keys), else with nothing. Validation failures throw synchronously. */
  #remove(
    keys: string[],
    token: string,
    options: DeletePoisonOptions | undefined,
    keep: true,
  ): Promise<readonly PoisonRecord[]>;
  #remove(
    keys: string[],
    token: string,
    options: DeletePoisonOptions | undefined,
    keep: false,
  ): Promise<undefined>;
  #remove(
    keys: string[],
    token: string,
    options: DeletePoisonOptions | undefined,
    keep: boolean,
  ): Promise<readonly PoisonRecord[] | undefined> {
    const checked = checkObject("options", options, true);
    const auditActor =
      checked?.audit === undefined ? undefined : checkAuditActor("options.audit", checked.audit);
    const audit: AuditIntent | undefined = auditActor
      ? { action: "delete", at: this.#now(), token, ...auditActor }
      : undefined;
    const storageKeys =
      keys.length === 1
        ? [this.#storageKey(keys[0] as string)]
        : keys.map((k) => this.#storageKey(k));
    const settle = (outcome: RemoveOutcome) => {
      if (!outcome.ok) throw this.#conflictOf(storageKeys, outcome.conflicts, token);
      return keep ? outcome.removed : undefined;
    };
    const driver = this.#runtime.driverFor("change");
    if (driver === this.#driver) return driver.remove(storageKeys, token, audit).then(settle);
    return (driver as Promise<PoisonDriver | null>).then((ready) =>
      ready ? ready.remove(storageKeys, token, audit).then(settle) : keep ? [] : undefined,
    );
  }

  /**
   * The operator's forced delete of validated user keys. Liveness is a judgement on a record, so
   * it is made on the records read and the delete is a compare-and-delete of exactly those
   * versions: if any changed in between (a heartbeat landed, the key was taken), nothing is
   * removed and the decision is made again on what is there now.
   */
  async #forceDelete(keys: string[], options: ForceDeleteOptions): Promise<PoisonRecord[]> {
    const checked = checkObject("options", options, false) ?? {};
    const actor = checkAuditActor("options", checked);
    const expectedToken =
      checked.expectedToken === undefined
        ? null
        : checkToken(checked.expectedToken, "options.expectedToken");
    const evenIfAlive = checked.evenIfAlive ?? false;
    if (typeof evenIfAlive !== "boolean")
      throw new InvalidArgumentError("options.evenIfAlive", "must be a boolean");
    const storageKeys = keys.map((k) => this.#storageKey(k));
    const driver = await this.#runtime.driverFor("change");
    if (!driver) return [];
    return optimistic<PoisonRecord[]>(
      MAX_DECISION_ATTEMPTS,
      async () => {
        const held = await Promise.all(storageKeys.map((key) => driver.get(key)));
        const present = held.filter((record): record is PoisonRecord => record !== null);
        if (present.length === 0) return { done: true, value: [] };
        if (expectedToken !== null) {
          const others = present.filter((record) => record.token !== expectedToken);
          if (others.length > 0) throw this.#conflictOf(storageKeys, others, expectedToken);
        }
        const now = this.#clock();
        const alive = present.filter((record) => aliveForRefusal(record, now, this.#clockSkewMs));
        if (alive.length > 0 && !evenIfAlive) throw this.#holderAlive(alive, now);
        const audit: AuditIntent = { action: "force-delete", at: now.toISOString(), ...actor };
        if (expectedToken !== null) audit.token = expectedToken;
        if (alive.length > 0) audit.evenIfAlive = true;
        const outcome = await driver.remove(storageKeys, null, audit, held);
        if (!outcome.ok) return { done: false };
        return { done: true, value: outcome.removed.map((record) => this.#userRecord(record)) };
      },
      () =>
        new BackendUnavailableError(
          this.backend,
          `the records kept changing under ${MAX_DECISION_ATTEMPTS} forced-delete attempts (a holder writing continuously); nothing was removed`,
        ),
    );
  }

  /** A token-checked update of validated user keys; conflicts and absences become typed errors
   *  naming the first such key in the caller's order. */
  async #update(keys: string[], token: string, patch: RecordPatch): Promise<PoisonRecord[]> {
    const storageKeys = keys.map((k) => this.#storageKey(k));
    const driver = await this.#runtime.driverFor("change");
    if (!driver) throw new PoisonNotFoundError(keys[0] as string);
    const outcome = await driver.update(storageKeys, token, patch);
    if (!outcome.ok) {
      for (const storageKey of storageKeys) {
        if (outcome.conflicts.some((c) => c.key === storageKey))
          throw this.#conflictOf(storageKeys, outcome.conflicts, token);
        if (outcome.missing.includes(storageKey))
          throw new PoisonNotFoundError(this.#userKey(storageKey));
      }
      throw new BackendUnavailableError(
        this.backend,
        "the driver refused an update without a reason",
      );
    }
    return outcome.records.map((record) => this.#userRecord(record));
  }

  /** The caller's view of a refusal: `conflicts` (driver records) held keys `token` asked for;
   *  the error names the first in the caller's order and carries them all. */
  #conflictOf(
    storageKeys: readonly string[] | readonly PoisonRecord[],
    conflicts: readonly PoisonRecord[],
    token: string,
  ): PoisonConflictError {
    const ordered = (conflicts.length > 1 ? inCallerOrder(storageKeys, conflicts) : conflicts).map(
      (record) => this.#userRecord(record),
    );
    const first = ordered[0];
    if (!first) return new PoisonConflictError("", token, "", undefined, []);
    return new PoisonConflictError(first.key, token, first.token, first, ordered);
  }

  #holderAlive(alive: readonly PoisonRecord[], now: Date): HolderAliveError {
    const first = this.#userRecord(alive[0] as PoisonRecord);
    const window = `it counts as alive while its last heartbeat is younger than ${LIVENESS_FACTOR} intervals plus ${this.#clockSkewMs} ms of allowed clock skew`;
    const more = alive.length > 1 ? `; ${alive.length - 1} more of the keys are live too` : "";
    return new HolderAliveError(
      first.key,
      first,
      `${describeLiveness(first, now)}; ${window}${more}`,
    );
  }

  #page(prefix: string, records: PoisonRecord[], last: string | null | undefined): PoisonPage {
    return { records, cursor: last ? encodeCursor(prefix, last) : null };
  }

  /** The current time as record text. Formatting a date costs more than the rest of a write to
   *  memory, and a busy store writes many times per millisecond: the text is reused while the
   *  millisecond lasts. */
  #now(): string {
    if (!this.#systemClock) return this.#clock().toISOString();
    const ms = Date.now();
    if (ms !== this.#nowMs) {
      this.#nowText = new Date(ms).toISOString();
      this.#nowMs = ms;
    }
    return this.#nowText;
  }

  #storageKey(key: string): string {
    return this.namespace + key;
  }

  #userKey(storageKey: string): string {
    return storageKey.startsWith(this.namespace)
      ? storageKey.slice(this.namespace.length)
      : storageKey;
  }

  #userRecord(record: PoisonRecord): PoisonRecord {
    return { ...record, key: this.#userKey(record.key) };
  }

  #userAuditEntry(entry: AuditEntry): AuditEntry {
    const out: AuditEntry = { ...entry, key: this.#userKey(entry.key) };
    if (entry.record) out.record = this.#userRecord(entry.record);
    return out;
  }
}

/** What `info` adds to each record of a put, and its audit actor; undefined without `info`
 *  (the usual call, which then allocates nothing for it). */
interface PutFields {
  operation?: string;
  owner?: string;
  data?: unknown;
  heartbeatIntervalMs?: number;
  audit?: AuditActor;
}

function checkPutInfo(info: unknown): PutFields | undefined {
  const checked = checkObject("info", info, true);
  if (!checked) return undefined;
  const fields: PutFields = {};
  const operation = checkOptionalString("info.operation", checked.operation, MAX_LABEL_BYTES);
  if (operation !== undefined) fields.operation = operation;
  const owner = checkOptionalString("info.owner", checked.owner, MAX_LABEL_BYTES);
  if (owner !== undefined) fields.owner = owner;
  const data = checkData("info.data", checked.data);
  if (data !== undefined) fields.data = data;
  if (checked.heartbeatIntervalMs !== undefined) {
    fields.heartbeatIntervalMs = checkRecordedInterval(
      "info.heartbeatIntervalMs",
      checked.heartbeatIntervalMs,
    );
  }
  if (checked.audit !== undefined) fields.audit = checkAuditActor("info.audit", checked.audit);
  return fields;
}

/** The record a put writes. Fields are set one by one rather than spread in: a spread into a
 *  literal is a runtime call, measurable on every in-process put. */
function newRecord(
  key: string,
  token: string,
  now: string,
  fields: PutFields | undefined,
): PoisonRecord {
  const record: PoisonRecord = {
    key,
    token,
    state: "in-progress",
    createdAt: now,
    updatedAt: now,
  };
  if (!fields) return record;
  if (fields.operation !== undefined) record.operation = fields.operation;
  if (fields.owner !== undefined) record.owner = fields.owner;
  // The records of a batch share one `data` value (checkData's own copy): drivers copy or
  // serialize what they store.
  if (fields.data !== undefined) record.data = fields.data;
  if (fields.heartbeatIntervalMs !== undefined) {
    record.heartbeatIntervalMs = fields.heartbeatIntervalMs;
    // A holder that promises heartbeats is alive from the moment its key is written.
    record.heartbeatAt = now;
  }
  return record;
}

function checkAuditActor(argument: string, value: unknown): AuditActor {
  const checked = checkObject(argument, value, false) ?? {};
  return {
    actor: checkString(`${argument}.actor`, checked.actor, MAX_LABEL_BYTES),
    reason: checkString(`${argument}.reason`, checked.reason, MAX_TEXT_BYTES),
  };
}

function checkListState(value: unknown): ListState | undefined {
  if (value === undefined) return undefined;
  if (value === "in-progress" || value === "poisoned" || value === "stale") return value;
  throw new InvalidArgumentError("options.state", 'must be "in-progress", "poisoned" or "stale"');
}

/** Turn whatever was thrown into the recorded error: never throws, never rejects a value. */
export function describeError(error: unknown, at: string): PoisonErrorInfo {
  const isObject = typeof error === "object" && error !== null;
  // Read each field once, guarded: a getter that throws must not turn a failure report into
  // a backend error.
  const name = isObject ? stringField(error, "name") : undefined;
  const message = isObject ? stringField(error, "message") : undefined;
  const stack = isObject ? stringField(error, "stack") : undefined;
  const info: PoisonErrorInfo = {
    name: clip(name || "Error", MAX_LABEL_BYTES),
    message: clip(message ?? safeString(error), MAX_TEXT_BYTES),
    at,
  };
  if (stack !== undefined) info.stack = clip(stack, MAX_STACK_BYTES);
  return info;
}

function stringField(source: object, field: "name" | "message" | "stack"): string | undefined {
  try {
    const value = (source as Record<string, unknown>)[field];
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Text for anything thrown, even a revoked Proxy, whose every reflection throws. */
export function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    try {
      return Object.prototype.toString.call(value);
    } catch {
      return "[a thrown value that cannot be described]";
    }
  }
}

/** Truncate to at most `maxBytes` UTF-8 bytes, dropping NULs and lone surrogates so the text
 *  stores on every backend. */
function clip(text: string, maxBytes: number): string {
  let clean = text.replaceAll("\u0000", "\uFFFD").toWellFormed();
  if (Buffer.byteLength(clean) <= maxBytes) return clean;
  clean = Buffer.from(clean)
    .subarray(0, maxBytes - 3)
    .toString("utf8")
    .replace(/\uFFFD$/, "");
  return `${clean}...`;
}

/** The token stored under `storageKey`, through the driver's one-column read when it has one. */
function tokenOf(driver: PoisonDriver, storageKey: string): Promise<string | null> {
  if (driver.getToken) return driver.getToken(storageKey);
  return driver.get(storageKey).then((record) => (record ? record.token : null));
}

function firstOf<T>(items: readonly T[], backend: string): T {
  const item = items[0];
  if (item === undefined)
    throw new BackendUnavailableError(backend, "the driver returned no record");
  return item;
}

/** `records` ordered as the caller's `keys`, so errors are deterministic. */
function inCallerOrder(
  keys: readonly string[] | readonly PoisonRecord[],
  records: readonly PoisonRecord[],
): PoisonRecord[] {
  // The caller's storage keys, or the records a put wrote (their keys, without a list of them
  // built for the usual single conflict).
  const order = new Map<string, number>();
  keys.forEach((key: string | PoisonRecord, i) => {
    order.set(typeof key === "string" ? key : key.key, i);
  });
  return [...records].sort((a, b) => (order.get(a.key) ?? 0) - (order.get(b.key) ?? 0));
}

/** `host:pid` of this process, the default `owner` of guarded operations. */
export function processOwner(): string {
  return `${hostname()}:${process.pid}`;
}
