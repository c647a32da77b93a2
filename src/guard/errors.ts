/** The errors PoisonGuard throws on purpose. Each extends PoisonStoreError with a stable code. */
import { PoisonStoreError } from "../core/errors.js";
import { describeLiveness, livenessOf } from "../core/liveness.js";
import type { PoisonRecord } from "../core/records.js";
import { type StoreWhere, shellQuote, storeFlags } from "../core/shell.js";
import { safeString } from "../core/store.js";

export { shellQuote };

/** Stable codes of the guard's errors. Never renamed once published. */
export const GuardErrorCode = {
  ResourcePoisoned: "RESOURCE_POISONED",
  OperationPoisoned: "OPERATION_POISONED",
  PoisonCleanupFailed: "POISON_CLEANUP_FAILED",
  RunSettled: "RUN_SETTLED",
} as const;
export type GuardErrorCode = (typeof GuardErrorCode)[keyof typeof GuardErrorCode];

/** Why a run was refused. */
export type RefusalReason =
  /** Another token holds the key (running now, or died, or failed and left it). */
  | "held-by-another-token"
  /** This token left the key `poisoned`; only a run with `resumePoisoned: true` may go over it. */
  | "poisoned-by-this-token"
  /** `assertHealthy`: any present key refuses, whoever holds it. */
  | "present";

/**
 * A run (or `assertHealthy`) was refused before anything ran, because a poison key quarantines
 * the resource. Nothing was written by the refused call. `record` is the holder's whole record.
 */
export class ResourcePoisonedError extends PoisonStoreError {
  /** The first refusing key, in the caller's order. */
  readonly key: string;
  /** The holder's record as it stood when the run was refused. */
  readonly record: PoisonRecord;
  /** Every refusing key's record, in the caller's order (`record` is the first): an operation
   *  that needs several keys is recovered key by key, or all at once by token. */
  readonly holders: readonly PoisonRecord[];
  /** The caller's token, or null for `assertHealthy`. */
  readonly token: string | null;
  readonly reason: RefusalReason;

  /** `where`: the store's namespace (a string, as before) or its location and namespace, so
   *  the CLI commands in the message go to that store when copied as they are. `holders`: every
   *  refusing record (default: `record` alone). */
  constructor(
    record: PoisonRecord,
    token: string | null,
    reason: RefusalReason,
    where: string | (StoreWhere & { holders?: readonly PoisonRecord[]; now?: Date }) = {},
  ) {
    const place = typeof where === "string" ? { namespace: where } : where;
    const holders = place.holders && place.holders.length > 0 ? place.holders : [record];
    super(
      GuardErrorCode.ResourcePoisoned,
      refusalMessage(holders, token, reason, place, place.now ?? new Date()),
    );
    this.key = record.key;
    this.record = record;
    this.holders = holders;
    this.token = token;
    this.reason = reason;
  }
}

/**
 * The body failed in a way that may have left the resources inconsistent: the keys stay, each
 * record turned `poisoned` with the error, and every new run on them is refused until an
 * operator repairs the resources and clears the keys. `cause` is the body's error.
 */
export class OperationPoisonedError extends PoisonStoreError {
  readonly keys: readonly string[];
  readonly token: string;
  readonly operation: string | undefined;
  /** How many times the body ran, the first included. */
  readonly attempts: number;
  /** The records as they now stand, when the failure could be recorded. */
  readonly records: readonly PoisonRecord[];
  /** Why the failure could not be recorded (the keys then stay as they were, still refusing
   *  other runs), or undefined when it was. */
  readonly recordFailure: unknown;

  constructor(init: {
    keys: readonly string[];
    token: string;
    operation: string | undefined;
    attempts: number;
    cause: unknown;
    records: readonly PoisonRecord[];
    recordFailure?: unknown;
    /** The store's namespace, named in the CLI commands when it is not the default. */
    namespace?: string;
    /** The store's location, named in the CLI commands as `--store`. */
    location?: string;
  }) {
    const what = init.operation ? `operation ${JSON.stringify(init.operation)}` : "operation";
    const failure = describeThrown(init.cause);
    const recorded =
      init.recordFailure === undefined
        ? "left its keys poisoned"
        : `left its keys in place, but the failure could not be recorded (${describeThrown(init.recordFailure)})`;
    const first = init.keys[0] ?? "KEY";
    const ns = storeFlags({ location: init.location, namespace: init.namespace });
    const all =
      init.keys.length > 1
        ? `; or all of this operation's keys at once: poison clear --all-of-token ${shellQuote(init.token)} --force --reason "what was repaired"${ns}`
        : "";
    super(
      GuardErrorCode.OperationPoisoned,
      `${what} with token ${JSON.stringify(init.token)} failed after ${init.attempts} attempt(s) and ${recorded}: ${failure}. ` +
        `Keys: ${init.keys.map((k) => JSON.stringify(k)).join(", ")}. Every new operation on them is refused until an operator ` +
        `inspects and repairs the resource (poison show ${shellQuote(first)}${ns}), then clears each key ` +
        `(poison clear ${shellQuote(first)} --token ${shellQuote(init.token)} --reason "what was repaired"${ns})${all}.`,
      { cause: init.cause },
    );
    this.keys = init.keys;
    this.token = init.token;
    this.operation = init.operation;
    this.attempts = init.attempts;
    this.records = init.records;
    this.recordFailure = init.recordFailure;
  }
}

/** What the run had done when its cleanup failed. */
export type CleanupOutcome =
  /** The body resolved; `result` holds its value. */
  | "succeeded"
  /** The body threw an error marked `cleanPoisons`; `bodyError` holds it. */
  | "error-marked-clean";

/**
 * The body finished in a way that should delete the keys, but the delete did not go through
 * (the backend could not be reached, or did not answer): the keys may still be present,
 * `in-progress` under the run's token, refusing other runs. A later `run` with the same token
 * finishes the cleanup (so does `store.deletePoisons(keys, token)`). `cause` is the store's error.
 */
export class PoisonCleanupError extends PoisonStoreError {
  readonly keys: readonly string[];
  readonly token: string;
  readonly outcome: CleanupOutcome;
  /** The body's value when `outcome` is `succeeded`. */
  readonly result: unknown;
  /** The body's error when `outcome` is `error-marked-clean`. */
  readonly bodyError: unknown;

  constructor(init: {
    keys: readonly string[];
    token: string;
    outcome: CleanupOutcome;
    result?: unknown;
    bodyError?: unknown;
    cause: unknown;
  }) {
    const what =
      init.outcome === "succeeded"
        ? "the operation succeeded"
        : `the operation failed with an error marked cleanPoisons (${describeThrown(init.bodyError)})`;
    super(
      GuardErrorCode.PoisonCleanupFailed,
      `${what}, but deleting its poison keys failed (${describeThrown(init.cause)}); the keys may still be present ` +
        `under token ${JSON.stringify(init.token)}: ${init.keys.map((k) => JSON.stringify(k)).join(", ")}. ` +
        "A later run with the same token finishes the cleanup.",
      { cause: init.cause },
    );
    this.keys = init.keys;
    this.token = init.token;
    this.outcome = init.outcome;
    this.result = init.result;
    this.bodyError = init.bodyError;
  }
}

/**
 * A method of a GuardContext was called after its attempt settled (a stray branch of the body
 * finishing late). Nothing was changed: once an attempt is over, its context can no longer
 * release, check or touch the run's keys.
 */
export class RunSettledError extends PoisonStoreError {
  /** The method that was refused, for example `markConsistent`. */
  readonly method: string;

  constructor(method: string, token: string) {
    super(
      GuardErrorCode.RunSettled,
      `ctx.${method}() was called after its attempt of the run with token ${JSON.stringify(token)} had settled; nothing was changed. ` +
        "Await every branch of the body before it returns or throws.",
    );
    this.method = method;
  }
}

/** `Name: message` of anything thrown; never throws, whatever the value (a revoked Proxy…). */
export function describeThrown(value: unknown): string {
  try {
    if (value instanceof Error) return `${value.name}: ${value.message}`;
    if (typeof value === "object" && value !== null) {
      const bag = value as { name?: unknown; message?: unknown };
      if (typeof bag.message === "string")
        return `${typeof bag.name === "string" ? bag.name : "Error"}: ${bag.message}`;
    }
  } catch {
    // A hostile value (a Proxy whose traps throw): describe it without reading it.
  }
  return safeString(value);
}

function refusalMessage(
  holders: readonly PoisonRecord[],
  token: string | null,
  reason: RefusalReason,
  where: StoreWhere,
  now: Date,
): string {
  const flags = storeFlags(where);
  const first = holders[0] as PoisonRecord;
  const lines: string[] = [];
  const head =
    holders.length > 1
      ? `${holders.length} of the resources are quarantined by poison keys`
      : reason === "poisoned-by-this-token"
        ? `resource ${JSON.stringify(first.key)} is poisoned by this run's own token ${JSON.stringify(first.token)}`
        : `resource ${JSON.stringify(first.key)} is quarantined by a poison key held by token ${JSON.stringify(first.token)}`;
  lines.push(
    `${head}; ${token === null ? "the read was refused" : `the run with token ${JSON.stringify(token)} was refused before it started`}.`,
  );
  const indent = holders.length > 1 ? "    " : "  ";
  for (const record of holders) {
    if (holders.length > 1)
      lines.push(`  ${JSON.stringify(record.key)}: held by token ${JSON.stringify(record.token)}`);
    const since =
      record.state === "poisoned" ? (record.error?.at ?? record.updatedAt) : record.createdAt;
    let state = `${indent}state: ${record.state} since ${since}`;
    if (record.operation) state += `, operation ${JSON.stringify(record.operation)}`;
    if (record.owner) state += `, owner ${record.owner}`;
    lines.push(state);
    if (record.state === "in-progress") {
      lines.push(
        record.heartbeatAt
          ? `${indent}last heartbeat: ${record.heartbeatAt} (${describeLiveness(record, now)}; ${
              livenessOf(record, now).live
                ? "the operation is alive: let it finish"
                : "an old heartbeat means the owner may have died; the key never expires by itself"
            })`
          : `${indent}no heartbeat recorded: the operation may still be running, or its owner died mid-way`,
      );
    }
    lines.push(
      record.error
        ? `${indent}recorded error: ${record.error.name}: ${record.error.message} (at ${record.error.at})`
        : `${indent}recorded error: none`,
    );
  }
  const key = shellQuote(first.key);
  lines.push(`  inspect it:  poison show ${key}${flags}`);
  lines.push(
    `  once the resource is repaired, clear it as the owner:  poison clear ${key} --token ${shellQuote(first.token)} --reason "what was repaired"${flags}`,
  );
  lines.push(
    `  or as an operator:  poison clear ${key} --force --reason "what was repaired"${flags}`,
  );
  const tokens = [...new Set(holders.map((record) => record.token))];
  if (holders.length > 1 && tokens.length === 1) {
    lines.push(
      `  or every key of that operation at once:  poison clear --all-of-token ${shellQuote(first.token)} --force --reason "what was repaired"${flags}`,
    );
  }
  if (!flags.includes("--store"))
    lines.push("  (add --store URL when the store is not the CLI's default)");
  if (reason === "poisoned-by-this-token") {
    lines.push(
      "  repair code may run over it with the same token by passing resumePoisoned: true to guard.run",
    );
  }
  return lines.join("\n");
}
