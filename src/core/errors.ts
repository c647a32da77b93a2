/**
 * Every error the library throws on purpose extends {@link PoisonStoreError} and carries a
 * stable string `code`, so callers can branch on `err.code` without `instanceof` across
 * package copies.
 */
import type { PoisonRecord } from "./records.js";

/** Stable codes. Never renamed once published. */
export const ErrorCode = {
  PoisonConflict: "POISON_CONFLICT",
  InvalidArgument: "INVALID_ARGUMENT",
  BackendUnavailable: "BACKEND_UNAVAILABLE",
  PoisonNotFound: "POISON_NOT_FOUND",
  StoreClosed: "STORE_CLOSED",
  HolderAlive: "HOLDER_ALIVE",
  PoisonLost: "POISON_LOST",
  BackendConfiguration: "BACKEND_CONFIGURATION",
  ReadOnlyStore: "READ_ONLY_STORE",
  MissingDependency: "MISSING_DEPENDENCY",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every error poison-store throws on purpose. */
export class PoisonStoreError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * A put, delete or token-checked update met a key held by another token. Nothing was changed.
 *
 * Built without a stack trace, on purpose and not lazily (JavaScript cannot capture one later):
 * a conflict is the store's answer, not a fault, and capturing the frames of an async call chain
 * cost about half of a whole conflicting put on the in-process backends. `stack` holds the name,
 * the message and a line saying so; the holder is in `holderRecord`/`conflicts`, and the CLI's
 * `--verbose` prints that text, which names the key, both tokens and what to do.
 */
export class PoisonConflictError extends PoisonStoreError {
  /** The key the caller named (without the store's namespace). */
  readonly key: string;
  /** The token the caller presented. */
  readonly token: string;
  /** The token that holds the key. */
  readonly holder: string;
  /** The holder's whole record as it stood when the write was refused, when the runtime had it. */
  readonly holderRecord: PoisonRecord | undefined;
  /** Every key of the call held by another token, in the caller's order (a batch can meet
   *  several); the first is `key`/`holderRecord`. Empty when the runtime had no records. */
  readonly conflicts: readonly PoisonRecord[];

  constructor(
    key: string,
    token: string,
    holder: string,
    holderRecord?: PoisonRecord,
    conflicts?: readonly PoisonRecord[],
  ) {
    const limit = setStackTraceLimit(0);
    super(
      ErrorCode.PoisonConflict,
      `poison key ${JSON.stringify(key)} is held by token ${JSON.stringify(holder)}, not ${JSON.stringify(token)}; ` +
        "nothing was changed. Inspect it (`poison show KEY`) before running another operation on this resource.",
    );
    setStackTraceLimit(limit);
    // Without frames V8 wrote the stack at construction, before the subclass set its name.
    this.stack = `${this.name}: ${this.message}\n    (no stack trace: a conflict is an answer of the store, not a fault; see holderRecord)`;
    this.key = key;
    this.token = token;
    this.holder = holder;
    this.holderRecord = holderRecord;
    this.conflicts = conflicts ?? (holderRecord ? [holderRecord] : []);
  }
}

/** Set Error.stackTraceLimit, returning the previous value; a no-op where it cannot be set (a
 *  frozen realm): building an error must never throw. */
function setStackTraceLimit(limit: number | undefined): number | undefined {
  const previous = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = limit as number;
  } catch {
    // Frozen: the stack is captured as usual.
  }
  return previous;
}

/** A key, token, option or record field was rejected before anything was sent to the backend. */
export class InvalidArgumentError extends PoisonStoreError {
  /** Which argument was rejected, for example `key`, `token`, `info.data`, `url`. */
  readonly argument: string;
  /** Why, in a few words. */
  readonly reason: string;

  constructor(argument: string, reason: string) {
    super(ErrorCode.InvalidArgument, `invalid ${argument}: ${reason}`);
    this.argument = argument;
    this.reason = reason;
  }
}

/**
 * The backend could not be reached, failed, or did not answer in time. The outcome of a write is
 * unknown: it may or may not have been applied. Retrying the same call with the same token is
 * safe, because every write is idempotent under its token.
 */
export class BackendUnavailableError extends PoisonStoreError {
  /** The backend's name, for example `sqlite` or `postgres`. */
  readonly backend: string;

  constructor(backend: string, message: string, cause?: unknown) {
    super(
      ErrorCode.BackendUnavailable,
      `${backend} backend unavailable: ${message}. The outcome is unknown; retry with the same token once the backend answers.`,
      { cause },
    );
    this.backend = backend;
  }
}

/** A token-checked update (such as `markPoisoned`) named a key that is not present. */
export class PoisonNotFoundError extends PoisonStoreError {
  readonly key: string;

  constructor(key: string) {
    super(
      ErrorCode.PoisonNotFound,
      `poison key ${JSON.stringify(key)} is not present; it may have been cleared by an operator (see \`poison history KEY\`).`,
    );
    this.key = key;
  }
}

/** The store was closed; open a new one. */
export class StoreClosedError extends PoisonStoreError {
  constructor() {
    super(
      ErrorCode.StoreClosed,
      "the poison store is closed; open a new one with openPoisonStore()",
    );
  }
}

/**
 * A forced delete met a holder that is alive: its heartbeat is recent (SPEC §7), so the operation
 * is most likely still running on the resource. Nothing was changed. Stop the operation first, or
 * override with `evenIfAlive: true` (the audit entry records the override).
 */
export class HolderAliveError extends PoisonStoreError {
  readonly key: string;
  /** The live holder's record, as it stood when the delete was refused. */
  readonly record: PoisonRecord;

  constructor(key: string, record: PoisonRecord, detail: string) {
    super(
      ErrorCode.HolderAlive,
      `poison key ${JSON.stringify(key)} is held by a live operation (token ${JSON.stringify(record.token)}` +
        `${record.owner ? `, owner ${record.owner}` : ""}; ${detail}); nothing was changed. ` +
        "Stop the operation first, or force it with evenIfAlive (CLI: --even-if-alive): its run then loses the key and aborts.",
    );
    this.key = key;
    this.record = record;
  }
}

/**
 * A guarded run found one of its keys absent or held by another token (an operator cleared it, or
 * it was taken over): the run no longer protects that resource. `ctx.signal` aborts with this
 * error and the run rejects with it; the key is never written again by the run.
 */
export class PoisonLostError extends PoisonStoreError {
  readonly key: string;
  /** The run's token. */
  readonly token: string;
  /** The record now stored under the key, or null when the key is absent. */
  readonly holder: PoisonRecord | null;

  constructor(key: string, token: string, holder: PoisonRecord | null) {
    super(
      ErrorCode.PoisonLost,
      `the run with token ${JSON.stringify(token)} lost poison key ${JSON.stringify(key)}: ` +
        (holder
          ? `it is now held by token ${JSON.stringify(holder.token)}`
          : "it was removed (an operator cleared it)") +
        "; the run was aborted and no longer touches that key. Check the resource before running again.",
    );
    this.key = key;
    this.token = token;
    this.holder = holder;
  }
}

/**
 * The backend answered, but is set up so that the store cannot be used as configured: a wrong
 * password, a database that does not exist, an untrusted certificate, a Redis eviction policy that
 * may drop keys. Retrying does not help; `setting` names what to fix.
 */
export class BackendConfigurationError extends PoisonStoreError {
  readonly backend: string;
  /** What to fix, for example `password`, `database`, `tls.ca`, `maxmemory-policy`. */
  readonly setting: string;

  constructor(backend: string, setting: string, message: string, cause?: unknown) {
    super(
      ErrorCode.BackendConfiguration,
      `${backend} backend misconfigured (${setting}): ${message}`,
      { cause },
    );
    this.backend = backend;
    this.setting = setting;
  }
}

/**
 * A write on a store that does not allow it: nothing was changed. The `greptimedb` layout opens
 * read-only (it changes another system's metadata), so every put, delete, mark or touch is refused
 * until the store is opened with `allowWrite: true` (URL `?allowWrite=true`, CLI `--allow-write`).
 * Some writes are refused even then (`byAllowWrite` false): the layout never puts poison keys
 * into GreptimeDB's MySQL table, where GreptimeDB's own transactions could overwrite them.
 */
export class ReadOnlyStoreError extends PoisonStoreError {
  readonly backend: string;
  /** The refused call's kind: `put`, `delete` or `update` (mark, touch). */
  readonly operation: "put" | "delete" | "update";
  /** True when opening the store with `allowWrite: true` permits this write. */
  readonly byAllowWrite: boolean;

  constructor(
    backend: string,
    operation: "put" | "delete" | "update",
    byAllowWrite: boolean,
    message: string,
  ) {
    super(ErrorCode.ReadOnlyStore, message);
    this.backend = backend;
    this.operation = operation;
    this.byAllowWrite = byAllowWrite;
  }
}

/** An optional peer dependency a feature needs is not installed (`collectMetrics` needs
 *  prom-client): install it next to poison-store. */
export class MissingDependencyError extends PoisonStoreError {
  /** The npm package to install, for example `prom-client`. */
  readonly dependency: string;

  constructor(dependency: string, feature: string, cause?: unknown) {
    super(
      ErrorCode.MissingDependency,
      `${feature} needs the npm package ${dependency}, which is not installed: run \`npm install ${dependency}\` next to poison-store`,
      { cause },
    );
    this.dependency = dependency;
  }
}

/** True when `value` is an error thrown on purpose by this library. */
export function isPoisonStoreError(value: unknown): value is PoisonStoreError {
  return value instanceof PoisonStoreError;
}
