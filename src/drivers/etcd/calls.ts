/**
 * The etcd driver's write calls as decisions: given what was read of the call's keys (a
 * {@link Snapshot}, or nothing yet), each function says what to do — answer now, read first, or
 * commit one transaction whose compares hold only if nothing changed since the read. The driver
 * runs them in src/core/retry.ts's `optimistic` loop: a failed compare's failure branch reads the
 * keys again in the same transaction, and the next pass decides on that.
 *
 * No I/O here: every function is pure over its arguments, so each call's rules read in one place.
 */

import { encodeRecord } from "../../core/codec.js";
import type {
  AuditIntent,
  PutOutcome,
  RecordPatch,
  RemoveOutcome,
  UpdateOutcome,
} from "../../core/driver.js";
import { sameVersion } from "../../core/driver.js";
import type { PoisonRecord } from "../../core/records.js";
import {
  applyPatch,
  auditEntry,
  type Compare,
  decodeSlot,
  deleteOp,
  poisonValue,
  putOp,
  type RequestOp,
  rangeOp,
  type Snapshot,
  type TxnResult,
  unchangedSince,
  utf8,
  valueEquals,
} from "./codec.js";

/** Where the driver keeps what a call writes besides the poison key. */
export interface CallLayout {
  /** `<meta>record/<storage key>`. */
  recordKey(storageKey: string): Buffer;
  /** A fresh, unique audit key for the `i`th entry of one transaction. */
  newAuditKey(i: number): Buffer;
}

/** The keys of one call: as the runtime names them, and as etcd stores them. */
export interface CallKeys {
  storageKeys: readonly string[];
  bytes: readonly Buffer[];
}

/** What one pass decided. */
export type Step<T> =
  /** The answer, from what was read: nothing to write. */
  | { kind: "done"; value: T }
  /** Nothing read yet, and nothing to send blind: read the keys, then decide again. */
  | { kind: "read" }
  /** One transaction; its answer if the compares held. */
  | {
      kind: "commit";
      compare: Compare[];
      success: RequestOp[];
      onCommit(result: TxnResult): T;
    };

/** Reads of every key's poison and record keys: the failure branch of every write, and the
 *  read of a pass that has no snapshot. */
export function readOps(layout: CallLayout, keys: CallKeys): RequestOp[] {
  return keys.bytes.flatMap((key, i) => [
    rangeOp(key),
    rangeOp(layout.recordKey(keys.storageKeys[i] as string)),
  ]);
}

/** The records of a snapshot, null where a key is absent. */
function recordsOf(keys: CallKeys, snapshot: Snapshot): (PoisonRecord | null)[] {
  return snapshot.slots.map((slot, i) =>
    slot.poison ? decodeSlot(keys.storageKeys[i] as string, slot.poison, slot.record) : null,
  );
}

/** Compares that hold when nothing changed since `snapshot` was read. */
function unchanged(
  layout: CallLayout,
  keys: CallKeys,
  snapshot: Snapshot,
  withRecord: boolean,
): Compare[] {
  const out: Compare[] = [];
  snapshot.slots.forEach((slot, i) => {
    out.push(unchangedSince(keys.bytes[i] as Buffer, slot.poison));
    if (withRecord)
      out.push(unchangedSince(layout.recordKey(keys.storageKeys[i] as string), slot.record));
  });
  return out;
}

/** Audit puts for `records`, one fresh key each: no compare, no shared counter. The entry's id
 *  is given when it is read (from the revision of this transaction). */
function auditWrites(
  layout: CallLayout,
  intent: AuditIntent,
  records: PoisonRecord[],
): RequestOp[] {
  return records.map((record, i) =>
    putOp(layout.newAuditKey(i), utf8(JSON.stringify(auditEntry(intent, record)))),
  );
}

/**
 * `put`: write every absent key (poison key, record, audit), unless one is held by another token.
 * The first pass is given every key as absent: the one-transaction put of the contract.
 */
export function decidePut(
  layout: CallLayout,
  keys: CallKeys,
  records: readonly PoisonRecord[],
  audit: AuditIntent | undefined,
  snapshot: Snapshot,
): Step<PutOutcome> {
  const token = (records[0] as PoisonRecord).token;
  const current = recordsOf(keys, snapshot);
  const conflicts = current.filter(
    (held): held is PoisonRecord => held !== null && held.token !== token,
  );
  if (conflicts.length > 0) return { kind: "done", value: { ok: false, conflicts } };
  const toWrite = records.filter((_, i) => current[i] === null);
  if (toWrite.length === 0) {
    const value = {
      ok: true as const,
      records: current as PoisonRecord[],
      created: current.map(() => false),
    };
    return { kind: "done", value };
  }
  const success: RequestOp[] = toWrite.flatMap((record) => [
    putOp(utf8(record.key), utf8(poisonValue(token))),
    putOp(layout.recordKey(record.key), utf8(encodeRecord(record))),
  ]);
  if (audit) success.push(...auditWrites(layout, audit, toWrite));
  return {
    kind: "commit",
    // The record key is not guarded: a stale one (its poison key deleted by another tool) is
    // overwritten.
    compare: unchanged(layout, keys, snapshot, false),
    success,
    onCommit: () => ({
      ok: true,
      records: records.map((record, i) => current[i] ?? record),
      created: current.map((held) => held === null),
    }),
  };
}

/** Whether `remove` may start with the contract's one-transaction delete: a plain
 *  token-checked delete (no audit, no expected versions). */
export function removeFastPath(
  token: string | null,
  audit: AuditIntent | undefined,
  expected: readonly (PoisonRecord | null)[] | undefined,
): token is string {
  return token !== null && !audit && !expected;
}

/**
 * `remove`: delete the keys, unless one is held by another token (or, with `expected`, is not as
 * the caller read it). With no snapshot, a plain token-checked delete is sent blind (the poison
 * key must hold exactly the token's bytes); anything else reads first.
 */
export function decideRemove(
  layout: CallLayout,
  keys: CallKeys,
  token: string | null,
  audit: AuditIntent | undefined,
  expected: readonly (PoisonRecord | null)[] | undefined,
  snapshot: Snapshot | null,
): Step<RemoveOutcome> {
  if (!snapshot) {
    if (!removeFastPath(token, audit, expected)) return { kind: "read" };
    const value = utf8(poisonValue(token));
    return {
      kind: "commit",
      compare: keys.bytes.map((key) => valueEquals(key, value)),
      success: keys.storageKeys.flatMap((key, i) => [
        deleteOp(keys.bytes[i] as Buffer),
        deleteOp(layout.recordKey(key)),
      ]),
      onCommit: (result) => {
        const removed: PoisonRecord[] = [];
        keys.storageKeys.forEach((key, i) => {
          const poison = result.responses[2 * i]?.[0];
          if (poison)
            removed.push(decodeSlot(key, poison, result.responses[2 * i + 1]?.[0] ?? null));
        });
        return { ok: true, removed };
      },
    };
  }
  const current = recordsOf(keys, snapshot);
  const conflicts = current.filter(
    (held): held is PoisonRecord => held !== null && token !== null && held.token !== token,
  );
  if (conflicts.length > 0) return { kind: "done", value: { ok: false, conflicts } };
  if (expected) {
    // A compare-and-delete: anything not as the caller read it refuses the whole call.
    const changed = current.filter((held, i) =>
      held ? !expected[i] || !sameVersion(held, expected[i] as PoisonRecord) : expected[i],
    );
    if (changed.length > 0) {
      const value = {
        ok: false as const,
        conflicts: changed.filter((h): h is PoisonRecord => h !== null),
      };
      return { kind: "done", value };
    }
  }
  const removed = current.filter((held): held is PoisonRecord => held !== null);
  // Every key absent: nothing to do, and the read was the linearization point.
  if (removed.length === 0) return { kind: "done", value: { ok: true, removed } };
  const success: RequestOp[] = keys.storageKeys.flatMap((key, i) =>
    current[i] ? [deleteOp(keys.bytes[i] as Buffer), deleteOp(layout.recordKey(key))] : [],
  );
  if (audit) success.push(...auditWrites(layout, audit, removed));
  return {
    kind: "commit",
    compare: unchanged(layout, keys, snapshot, true),
    success,
    onCommit: () => ({ ok: true, removed }),
  };
}

/** `update`: rewrite the records of keys all held by `token`; reads first. */
export function decideUpdate(
  layout: CallLayout,
  keys: CallKeys,
  token: string,
  patch: RecordPatch,
  snapshot: Snapshot | null,
): Step<UpdateOutcome> {
  if (!snapshot) return { kind: "read" };
  const current = recordsOf(keys, snapshot);
  const missing = keys.storageKeys.filter((_, i) => current[i] === null);
  const conflicts = current.filter(
    (held): held is PoisonRecord => held !== null && held.token !== token,
  );
  if (missing.length > 0 || conflicts.length > 0)
    return { kind: "done", value: { ok: false, conflicts, missing } };
  const updated = (current as PoisonRecord[]).map((record) => applyPatch(record, patch));
  return {
    kind: "commit",
    compare: unchanged(layout, keys, snapshot, true),
    success: updated.map((record) =>
      putOp(layout.recordKey(record.key), utf8(encodeRecord(record))),
    ),
    onCommit: () => ({ ok: true, records: updated }),
  };
}
