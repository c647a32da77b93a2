/**
 * The runtime every backend runs under. It owns what drivers must not each re-implement:
 * argument validation, the namespace, timestamps, record building, init-once (retried after a
 * failure), a bound on every call, use-after-close, and the mapping of driver results to the
 * typed errors of the contract.
 */
import { hostname } from "node:os";
import type { PoisonStoreClient } from "./contract.js";
import type { AuditIntent, PoisonDriver, RecordPatch } from "./driver.js";
import {
  BackendUnavailableError,
  InvalidArgumentError,
  PoisonConflictError,
  PoisonNotFoundError,
  PoisonStoreError,
  StoreClosedError,
} from "./errors.js";
import { decodeCursor, encodeCursor } from "./keys.js";
import type {
  AuditActor,
  AuditEntry,
  AuditLogOptions,
  AuditPage,
  DeletePoisonOptions,
  ForceDeleteOptions,
  ListPoisonsOptions,
  PoisonErrorInfo,
  PoisonPage,
  PoisonRecord,
  PutPoisonInfo,
  PutPoisonsResult,
} from "./records.js";
import {
  checkData,
  checkKey,
  checkKeys,
  checkLimit,
  checkNamespace,
  checkObject,
  checkOptionalString,
  checkString,
  checkToken,
  MAX_LABEL_BYTES,
  MAX_PAGE_SIZE,
  MAX_STACK_BYTES,
  MAX_TEXT_BYTES,
} from "./validation.js";

/** GreptimeDB's procedure framework stores its poison keys under this prefix. */
export const DEFAULT_NAMESPACE = "/__procedure_poison/";
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
}

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
  readonly #driver: PoisonDriver;
  readonly #maxBatchKeys: number;
  readonly #timeoutMs: number;
  readonly #clock: () => Date;
  /** Set by #ready(). Every call validates its arguments synchronously before it first asks
   *  for the driver, so this tells whether a failure came before the backend was reached (a
   *  hostile argument whose getter throws: an argument error, not a backend outage). */
  #reachedBackend = false;
  #initialised: Promise<void> | null = null;
  #initStarted = false;
  #initDone = false;
  #closing: Promise<void> | null = null;
  readonly #pending = new Set<Promise<unknown>>();

  constructor(driver: PoisonDriver, options: PoisonStoreOptions) {
    const checked = checkObject("options", options, false) ?? {};
    this.#driver = driver;
    this.backend = driver.backend;
    this.#maxBatchKeys = driver.capabilities.maxBatchKeys ?? MAX_PAGE_SIZE;
    this.namespace =
      checked.namespace === undefined ? DEFAULT_NAMESPACE : checkNamespace(checked.namespace);
    const timeoutMs = checked.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new InvalidArgumentError(
        "options.timeoutMs",
        "must be a positive number of milliseconds",
      );
    }
    this.#timeoutMs = timeoutMs;
    this.#clock =
      typeof checked.clock === "function" ? (checked.clock as () => Date) : () => new Date();
  }

  // ---- SPEC §2 -------------------------------------------------------------------------

  tryPutPoison(key: string, token: string, info?: PutPoisonInfo): Promise<void> {
    return this.#call(async () => {
      await this.#put([checkKey(key)], token, info);
    });
  }

  deletePoison(key: string, token: string, options?: DeletePoisonOptions): Promise<void> {
    return this.#call(async () => {
      await this.#remove([checkKey(key)], checkToken(token), options);
    });
  }

  getPoison(key: string): Promise<string | null> {
    return this.#call(async () => {
      const storageKey = this.#storageKey(checkKey(key));
      const driver = await this.#ready();
      if (driver.getToken) return await driver.getToken(storageKey);
      const record = await driver.get(storageKey);
      return record ? record.token : null;
    });
  }

  // ---- batches (the guard's all-or-none steps) -------------------------------------------

  tryPutPoisons(
    keys: readonly string[],
    token: string,
    info?: PutPoisonInfo,
  ): Promise<PutPoisonsResult> {
    return this.#call(() => this.#put(checkKeys(keys, "keys", this.#maxBatchKeys), token, info));
  }

  deletePoisons(keys: readonly string[], token: string): Promise<void> {
    return this.#call(async () => {
      await this.#remove(checkKeys(keys, "keys", this.#maxBatchKeys), checkToken(token), undefined);
    });
  }

  // ---- SPEC §3 -------------------------------------------------------------------------

  inspectPoison(key: string): Promise<PoisonRecord | null> {
    return this.#call(async () => {
      const storageKey = this.#storageKey(checkKey(key));
      const record = await (await this.#ready()).get(storageKey);
      return record ? this.#userRecord(record) : null;
    });
  }

  listPoisons(options: ListPoisonsOptions = {}): Promise<PoisonPage> {
    return this.#call(async () => {
      const checked = checkObject("options", options, false) ?? {};
      const prefix =
        checked.prefix === undefined
          ? ""
          : checkString("options.prefix", checked.prefix, 1024, true);
      const limit = checkLimit(checked.limit, "options.limit");
      const after = decodeCursor(checked.cursor, "options.cursor");
      // Ask for one more than the page to know whether another page follows.
      const rows = await (await this.#ready()).list({
        prefix: this.#storageKey(prefix),
        after: after === null ? null : this.#storageKey(after),
        limit: limit + 1,
      });
      const records = rows.slice(0, limit).map((row) => this.#userRecord(row));
      const last = records.at(-1);
      return { records, cursor: rows.length > limit && last ? encodeCursor(last.key) : null };
    });
  }

  markPoisoned(key: string, token: string, error: unknown): Promise<PoisonRecord> {
    return this.#call(async () => {
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
    return this.#call(async () => {
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

  touchPoisons(keys: readonly string[], token: string): Promise<PoisonRecord[]> {
    return this.#call(async () => {
      const checkedKeys = checkKeys(keys, "keys", this.#maxBatchKeys);
      const checkedToken = checkToken(token);
      const now = this.#now();
      return this.#update(checkedKeys, checkedToken, { updatedAt: now, heartbeatAt: now });
    });
  }

  forceDeletePoison(key: string, options: ForceDeleteOptions): Promise<PoisonRecord | null> {
    return this.#call(async () => {
      const checkedKey = checkKey(key);
      const checked = checkObject("options", options, false) ?? {};
      const actor = checkAuditActor("options", checked);
      const expectedToken =
        checked.expectedToken === undefined
          ? null
          : checkToken(checked.expectedToken, "options.expectedToken");
      const audit: AuditIntent = { action: "force-delete", at: this.#now(), ...actor };
      if (expectedToken !== null) audit.token = expectedToken;
      const outcome = await (await this.#ready()).remove(
        [this.#storageKey(checkedKey)],
        expectedToken,
        audit,
      );
      if (!outcome.ok) {
        throw this.#conflict(firstOf(outcome.conflicts, this.backend), expectedToken ?? "");
      }
      const removed = outcome.removed[0];
      return removed ? this.#userRecord(removed) : null;
    });
  }

  auditLog(options: AuditLogOptions = {}): Promise<AuditPage> {
    return this.#call(async () => {
      const checked = checkObject("options", options, false) ?? {};
      const limit = checkLimit(checked.limit, "options.limit");
      const key = checked.key === undefined ? undefined : checkKey(checked.key, "options.key");
      const before = decodeAuditCursor(checked.cursor);
      const rows = await (await this.#ready()).audit({
        prefix: this.namespace,
        ...(key === undefined ? {} : { key: this.#storageKey(key) }),
        before,
        limit: limit + 1,
      });
      const entries = rows.slice(0, limit).map((entry) => this.#userAuditEntry(entry));
      const last = entries.at(-1);
      return { entries, cursor: rows.length > limit && last ? `a1.${last.id}` : null };
    });
  }

  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = (async () => {
        // Pending calls are bounded by their own timeouts.
        await Promise.allSettled([...this.#pending]);
        // Only a driver that was ever asked to initialise holds resources worth releasing.
        if (this.#initStarted) {
          // Releasing a connection to a backend that went away must not hang the caller's
          // shutdown either: it gets the same bound as a call.
          await this.#bounded("close", async () => {
            await this.#initialised?.catch(() => undefined);
            await this.#driver.close();
          });
        }
      })();
    }
    return this.#closing;
  }

  // ---- internals -------------------------------------------------------------------------

  async #put(
    keys: string[],
    token: string,
    info: PutPoisonInfo | undefined,
  ): Promise<PutPoisonsResult> {
    const checkedToken = checkToken(token);
    const fields = checkPutInfo(info);
    const now = this.#now();
    const records: PoisonRecord[] = keys.map((key) => ({
      key: this.#storageKey(key),
      token: checkedToken,
      state: "in-progress",
      createdAt: now,
      updatedAt: now,
      ...fields.record,
    }));
    const audit: AuditIntent | undefined = fields.audit
      ? { action: "put", at: now, token: checkedToken, ...fields.audit }
      : undefined;
    const outcome = await (await this.#ready()).put(records, audit);
    if (!outcome.ok) {
      const storageKeys = records.map((record) => record.key);
      throw this.#conflict(
        firstConflict(storageKeys, outcome.conflicts, this.backend),
        checkedToken,
      );
    }
    return {
      records: outcome.records.map((record) => this.#userRecord(record)),
      created: keys.filter((_, i) => outcome.created[i] === true),
    };
  }

  async #remove(
    keys: string[],
    token: string,
    options: DeletePoisonOptions | undefined,
  ): Promise<void> {
    const checked = checkObject("options", options, true);
    const auditActor =
      checked?.audit === undefined ? undefined : checkAuditActor("options.audit", checked.audit);
    const audit: AuditIntent | undefined = auditActor
      ? { action: "delete", at: this.#now(), token, ...auditActor }
      : undefined;
    const storageKeys = keys.map((k) => this.#storageKey(k));
    const outcome = await (await this.#ready()).remove(storageKeys, token, audit);
    if (!outcome.ok) {
      throw this.#conflict(firstConflict(storageKeys, outcome.conflicts, this.backend), token);
    }
  }

  /** A token-checked update of validated user keys; conflicts and absences become typed errors
   *  naming the first such key in the caller's order. */
  async #update(keys: string[], token: string, patch: RecordPatch): Promise<PoisonRecord[]> {
    const storageKeys = keys.map((k) => this.#storageKey(k));
    const outcome = await (await this.#ready()).update(storageKeys, token, patch);
    if (!outcome.ok) {
      for (const storageKey of storageKeys) {
        const holder = outcome.conflicts.find((c) => c.key === storageKey);
        if (holder) throw this.#conflict(holder, token);
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

  /** Run one public call: refuse after close, init once, bound its time, type its failures. */
  #call<T>(body: () => Promise<T>): Promise<T> {
    if (this.#closing) return Promise.reject(new StoreClosedError());
    const run = this.#withTimeout(body);
    this.#pending.add(run);
    const forget = () => this.#pending.delete(run);
    run.then(forget, forget);
    return run;
  }

  /** The driver, initialised once. Called after validation, so bad input never waits on (or
   *  touches) the backend. */
  #ready(): PoisonDriver | Promise<PoisonDriver> {
    this.#reachedBackend = true;
    // Once initialised, hand the driver back synchronously: each call saves the promise hops of
    // an async function (measurable on the in-process backends, see docs/BENCHMARKS.md).
    return this.#initDone ? this.#driver : this.#initialise();
  }

  async #initialise(): Promise<PoisonDriver> {
    if (!this.#initialised) {
      this.#initStarted = true;
      const attempt = this.#driver.init();
      this.#initialised = attempt;
      // A failed init is retried by the next call: the backend may come back.
      attempt.catch(() => {
        if (this.#initialised === attempt) this.#initialised = null;
      });
    }
    const pending = this.#initialised;
    await pending;
    if (this.#initialised === pending) this.#initDone = true;
    return this.#driver;
  }

  /** `body`, rejected with BackendUnavailableError if it has not settled within timeoutMs. */
  #bounded(what: string, body: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new BackendUnavailableError(
            this.backend,
            `${what} did not finish within ${this.#timeoutMs} ms (options.timeoutMs); its connections may stay open until the process exits`,
          ),
        );
      }, this.#timeoutMs);
      body().then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(this.#typed(error, true));
        },
      );
    });
  }

  #withTimeout<T>(body: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new BackendUnavailableError(
            this.backend,
            `no answer within ${this.#timeoutMs} ms (options.timeoutMs)`,
          ),
        );
      }, this.#timeoutMs);
      this.#reachedBackend = false;
      let running: Promise<T>;
      try {
        running = body();
      } catch (error) {
        // A body that is not async (a batch validating its keys) can throw synchronously.
        running = Promise.reject(error);
      }
      // Only the synchronous prefix of body() has run: validation, then #ready() at most.
      const reachedBackend = this.#reachedBackend;
      running.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(this.#typed(error, reachedBackend));
        },
      );
    });
  }

  /** Drivers throw typed errors for what they understand; anything else means the backend
   *  failed in a way we cannot interpret, so the outcome is unknown. Never fail open. */
  #typed(error: unknown, reachedBackend: boolean): PoisonStoreError {
    if (error instanceof PoisonStoreError) return error;
    const message = error instanceof Error ? error.message : String(error);
    if (!reachedBackend) {
      return new InvalidArgumentError("arguments", `could not be read (${message})`);
    }
    return new BackendUnavailableError(this.backend, message, error);
  }

  /** The caller's view of a refusal: `holder` (a driver record) held the key `token` asked for. */
  #conflict(holder: PoisonRecord, token: string): PoisonConflictError {
    return new PoisonConflictError(
      this.#userKey(holder.key),
      token,
      holder.token,
      this.#userRecord(holder),
    );
  }

  #now(): string {
    return this.#clock().toISOString();
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

function checkPutInfo(info: unknown): { record: Partial<PoisonRecord>; audit?: AuditActor } {
  const checked = checkObject("info", info, true);
  if (!checked) return { record: {} };
  const record: Partial<PoisonRecord> = {};
  const operation = checkOptionalString("info.operation", checked.operation, MAX_LABEL_BYTES);
  if (operation !== undefined) record.operation = operation;
  const owner = checkOptionalString("info.owner", checked.owner, MAX_LABEL_BYTES);
  if (owner !== undefined) record.owner = owner;
  const data = checkData("info.data", checked.data);
  if (data !== undefined) record.data = data;
  if (checked.audit === undefined) return { record };
  return { record, audit: checkAuditActor("info.audit", checked.audit) };
}

function checkAuditActor(argument: string, value: unknown): AuditActor {
  const checked = checkObject(argument, value, false) ?? {};
  return {
    actor: checkString(`${argument}.actor`, checked.actor, MAX_LABEL_BYTES),
    reason: checkString(`${argument}.reason`, checked.reason, MAX_TEXT_BYTES),
  };
}

function decodeAuditCursor(cursor: unknown): string | null {
  if (cursor === undefined || cursor === null) return null;
  if (typeof cursor !== "string" || !cursor.startsWith("a1.") || cursor.length === 3) {
    throw new InvalidArgumentError(
      "options.cursor",
      "must be a cursor returned by a previous page",
    );
  }
  return cursor.slice(3);
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

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
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

function firstOf<T>(items: readonly T[], backend: string): T {
  const item = items[0];
  if (item === undefined)
    throw new BackendUnavailableError(backend, "the driver returned no record");
  return item;
}

/** The conflict for the first key in the caller's order, so errors are deterministic. */
function firstConflict(
  keys: readonly string[],
  conflicts: readonly PoisonRecord[],
  backend: string,
): PoisonRecord {
  for (const key of keys) {
    const found = conflicts.find((c) => c.key === key);
    if (found) return found;
  }
  return firstOf(conflicts, backend);
}

/** `host:pid` of this process, the default `owner` of guarded operations. */
export function processOwner(): string {
  return `${hostname()}:${process.pid}`;
}
