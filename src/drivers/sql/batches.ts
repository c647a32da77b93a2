/**
 * The all-or-none calls of the SQL drivers, written once: a batch put, a batch (or audited, or
 * compare-and-) remove and a token-checked update. Each is one transaction that takes its rows
 * in key byte order (two batches over overlapping keys queue instead of deadlocking), decides
 * on what it locked, and rolls back whole when the decision says no. A dialect brings the
 * statements behind each step (src/drivers/<dialect>/statements.ts).
 */
import type {
  AuditIntent,
  PutOutcome,
  RecordPatch,
  RemoveOutcome,
  UpdateOutcome,
} from "../../core/driver.js";
import type { PoisonRecord } from "../../core/records.js";
import type { SqlClient } from "./client.js";
import {
  auditValues,
  type PutRow,
  putOutcome,
  Rollback,
  removeDecision,
  sortedByBytes,
} from "./common.js";

/** Put every record or none. `putLocked` gets the records in key byte order, inserts each absent
 *  one and answers every key's row (in any order), holders locked until the commit (so every key
 *  found held stays as found until the batch ends). */
export function putAllOrNone<C>(
  client: SqlClient<unknown, C>,
  backend: string,
  records: readonly PoisonRecord[],
  putLocked: (connection: C, sorted: readonly PoisonRecord[]) => Promise<readonly PutRow[]>,
): Promise<PutOutcome> {
  return client.transaction<PutOutcome>(async (connection) => {
    const rows = await putLocked(
      connection,
      sortedByBytes(records, (r) => r.key),
    );
    const byKey = new Map(rows.map((row) => [row.record.key, row]));
    const outcome = putOutcome(
      backend,
      records,
      records.map((r) => byKey.get(r.key)),
    );
    return outcome.ok ? outcome : new Rollback(outcome);
  });
}

export interface RemoveSteps<C> {
  /** Lock the keys' rows, in key byte order, and answer the present ones (a dialect may also
   *  delete those `token` allows here: a decision that says no rolls it back). */
  lock(connection: C, keys: readonly string[]): Promise<PoisonRecord[]>;
  /** Delete one locked row the decision removes (absent when `lock` already deleted it). */
  delete?(connection: C, record: PoisonRecord): Promise<unknown>;
  /** Write one audit row (values in the order of {@link auditValues}). */
  audit(connection: C, values: unknown[]): Promise<unknown>;
}

/** Remove the keys or none (see PoisonDriver.remove): lock, decide, delete and audit. */
export function removeAllOrNone<C>(
  client: SqlClient<unknown, C>,
  steps: RemoveSteps<C>,
  keys: readonly string[],
  token: string | null,
  audit: AuditIntent | undefined,
  expected: readonly (PoisonRecord | null)[] | undefined,
): Promise<RemoveOutcome> {
  return client.transaction<RemoveOutcome>(async (connection) => {
    const held = await steps.lock(connection, keys);
    const outcome = removeDecision(keys, held, token, expected);
    if (!outcome.ok) return new Rollback(outcome);
    for (const record of outcome.removed) {
      if (steps.delete) await steps.delete(connection, record);
      if (audit) await steps.audit(connection, auditValues(audit, record));
    }
    return outcome;
  });
}

export interface UpdateSteps<C> {
  /** Lock the keys' rows, in key byte order, and answer the present ones. */
  lock(connection: C, keys: readonly string[]): Promise<PoisonRecord[]>;
  /** Apply the patch to one locked row and answer it as written. `before` is the row as locked. */
  update(connection: C, key: string, before: PoisonRecord): Promise<PoisonRecord>;
}

/** Apply `patch` to every key, or to none when one is absent or held by another token. */
export function updateAllOrNone<C>(
  client: SqlClient<unknown, C>,
  steps: UpdateSteps<C>,
  keys: readonly string[],
  token: string,
): Promise<UpdateOutcome> {
  return client.transaction<UpdateOutcome>(async (connection) => {
    const held = new Map((await steps.lock(connection, keys)).map((r) => [r.key, r]));
    const missing = keys.filter((k) => !held.has(k));
    const conflicts = [...held.values()].filter((r) => r.token !== token);
    if (missing.length > 0 || conflicts.length > 0) {
      return new Rollback({ ok: false as const, conflicts, missing });
    }
    const records: PoisonRecord[] = [];
    for (const key of keys) {
      records.push(await steps.update(connection, key, held.get(key) as PoisonRecord));
    }
    return { ok: true as const, records };
  });
}

/** The patch's column values, in the order the SQL drivers' UPDATE binds them. */
export function patchValues(patch: RecordPatch): (string | number | null)[] {
  return [
    patch.updatedAt,
    patch.state ?? null,
    patch.error ? JSON.stringify(patch.error) : null,
    patch.heartbeatAt ?? null,
    patch.heartbeatIntervalMs ?? null,
  ];
}
