/**
 * The PostgreSQL driver's statements, apart from the code that runs them (src/drivers/postgres.ts):
 * each text, and why it is race-free, next to the others. Table names come in quoted; every
 * statement is prepared under a name derived from its text (see {@link prepared}).
 */
import { createHash } from "node:crypto";
import { checkTableName, quoteTable } from "../sql/common.js";
import { trimStatement } from "./watch.js";

export const RECORD_COLUMNS =
  "key, token, state, created_at, updated_at, heartbeat_at, heartbeat_interval_ms, operation, owner, error, data";

/** The driver's tables (quoted), their indexes, and the channel of its change notifications. */
export interface PostgresTables {
  keys: string;
  audit: string;
  auditIndex: string;
  changes: string;
  changesIndex: string;
  /** The change log's name as given, unquoted. */
  changesName: string;
  channel: string;
}

/** The tables named by the driver's options (checked), with their defaults. */
export function postgresTables(options: {
  table?: string;
  auditTable?: string;
  changesTable?: string;
}): PostgresTables {
  const keys = quoteTable(checkTableName("options.table", options.table, "poison_keys"), '"');
  const auditName = checkTableName("options.auditTable", options.auditTable, "poison_audit");
  const changesName = checkTableName(
    "options.changesTable",
    options.changesTable,
    "poison_changes",
  );
  return {
    keys,
    audit: quoteTable(auditName, '"'),
    auditIndex: `"${auditName.split(".").at(-1)}_by_key"`,
    changes: quoteTable(changesName, '"'),
    changesIndex: `"${changesName.split(".").at(-1)}_by_xid"`,
    changesName,
    // One channel per change log; a hash keeps it a short identifier whatever the table's name.
    channel: `poison_watch_${createHash("sha1").update(changesName).digest("hex").slice(0, 16)}`,
  };
}

/** The statements of the core calls, by name. */
export function postgresStatements({ keys, audit, changes, channel }: PostgresTables) {
  /**
   * The change-log arm of a write statement: one row per row `source` returns (filtered by
   * `where`), in the statement's own transaction, with the writer's transaction id (what a watch
   * orders by snapshot: src/drivers/postgres/watch.ts). The NOTIFY that wakes watches is sent
   * right after the commit (see `logged`), not in this transaction: PostgreSQL serializes the
   * commits of notifying transactions behind one lock held across their WAL flush, which cost
   * put+delete at concurrency 32 about 60% of its throughput (docs/OBSERVABILITY.md).
   */
  const logArm = (source: string, type: string, at: string, where = "") =>
    `INSERT INTO ${changes} (xid, key, type, at, record)
      SELECT txid_current(), ${source}.key, ${type}, ${at}, row_to_json(${source})::text
      FROM ${source}${where}`;
  /*
   * Put-if-absent of one key, one statement that answers a conflict read-only. `ins` inserts
   * the row unless the key exists: ON CONFLICT checks the unique index (waiting for an
   * in-flight writer of that key to finish), not the snapshot, so two puts can never both
   * insert. The first arm says we inserted (the row is the record as sent); the second, only
   * when we inserted nothing, the holder as of the statement's snapshot, with no write and no
   * lock, as one JSON column (cheaper to hand back than eleven). Race-free:
   * - inserted: the row is ours, visible from our commit on;
   * - holder seen: it held the key at the snapshot, a moment within the call, and a put that
   *   changes nothing can take effect at that moment (a later delete or re-put is after us);
   * - no row at all: the conflicting row was committed after our snapshot, so neither arm sees
   *   it and nothing was written; the caller asks again, with a new snapshot that sees it.
   */
  const putStatement = (more: string) => `WITH ins AS (
      INSERT INTO ${keys} (${RECORD_COLUMNS})
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
      ON CONFLICT (key) DO NOTHING
      RETURNING ${RECORD_COLUMNS}
    ), logged AS (
      ${logArm("ins", "'put'", "ins.updated_at")}
    )${more}
    SELECT NULL::text AS holder, true AS inserted FROM ins
    UNION ALL
    SELECT row_to_json(held)::text, false FROM ${keys} held
    WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM ins)`;

  /** A listing of keys in [$1, $2) (or ($1, $2)), at most $3; `filtered` adds conditions on
   *  token ($4), state ($5) and operation ($6), a NULL value matching every row. */
  const listing = (lowerBound: ">" | ">=", filtered: boolean) =>
    `SELECT * FROM ${keys} WHERE key ${lowerBound} $1 AND key < $2${
      filtered
        ? ` AND ($4::text IS NULL OR token = $4) AND ($5::text IS NULL OR state = $5)
      AND ($6::text IS NULL OR operation = $6)`
        : ""
    } ORDER BY key LIMIT $3`;

  return {
    put: putStatement(""),
    /* The same with the audit entry of a manual put (`info.audit`), written only by an insert:
     * `audited` reads `ins`. Two texts rather than one with a NULL-guarded arm: the common put
     * carries eleven parameters instead of seventeen and touches no audit table. */
    putAudited: putStatement(`, audited AS (
      INSERT INTO ${audit} (at, action, key, actor, reason, token, record)
      SELECT $12, $13, ins.key, $14, $15, $16, $17 FROM ins
    )`),
    /*
     * Put-if-absent of every key of a batch, in one statement inside the batch's transaction:
     * $1..$11 are arrays, one element per record, in key byte order (the order the rows are
     * inserted and locked in, so two batches over overlapping keys queue instead of
     * deadlocking). INSERT … ON CONFLICT DO UPDATE either inserts a row or, when the key exists,
     * waits for any concurrent writer of that row, locks the latest committed version and
     * "updates" it to itself, so RETURNING hands back the holder as it stands now. The lock is
     * what a batch needs: every key it found held stays as found until the batch commits or rolls
     * back, so the batch is all-or-none. `xmax = 0` holds only for a freshly inserted tuple, so
     * only a real insert is audited ($12..$16 the entry, $17 each record's JSON) and logged.
     */
    putMany: `WITH put AS (
      INSERT INTO ${keys} AS p (${RECORD_COLUMNS})
      SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[],
        $6::text[], $7::integer[], $8::text[], $9::text[], $10::text[], $11::text[])
      ON CONFLICT (key) DO UPDATE SET token = p.token
      RETURNING ${RECORD_COLUMNS}, (p.xmax = 0) AS inserted
    ), audited AS (
      INSERT INTO ${audit} (at, action, key, actor, reason, token, record)
      SELECT $12, $13, put.key, $14, $15, $16, sent.record
      FROM put JOIN unnest($1::bytea[], $17::text[]) AS sent (key, record) ON sent.key = put.key
      WHERE put.inserted AND $13::text IS NOT NULL
    ), logged AS (
      ${logArm("put", "'put'", "put.updated_at", " WHERE put.inserted")}
    )
    SELECT * FROM put`,
    /*
     * Delete-if-token-matches, one statement and no lock taken before the decision. `removed`
     * deletes the row only when its token matches ($2 NULL: any token, the operator's
     * force-delete); under READ COMMITTED a row changed by a concurrent writer is re-checked on
     * its latest version (a heartbeat keeps the token: still ours), and one deleted meanwhile is
     * skipped. The first arm returns the row deleted; the second, only when nothing was, the row
     * as of the statement's snapshot, read without a lock; each as one JSON column (cheaper to
     * hand back than eleven). The caller decides:
     * - deleted: the row is gone with our commit;
     * - another token seen: the key was held by it at the snapshot, a moment within the call,
     *   and a delete that changes nothing takes effect then (conflict, the holder's record);
     * - our token seen but nothing deleted: a concurrent delete removed that row after our
     *   snapshot; ours takes effect just after it, on an absent key;
     * - no row: absent at the snapshot (a later put is after us).
     */
    remove: `WITH removed AS (
      DELETE FROM ${keys}
      WHERE key = $1 AND ($2::text IS NULL OR token = $2::text)
      RETURNING ${RECORD_COLUMNS}
    ), logged AS (
      ${logArm("removed", "$3::text", "$4::text")}
    )
    SELECT row_to_json(removed)::text AS record, true AS removed FROM removed
    UNION ALL
    SELECT row_to_json(held)::text, false FROM ${keys} held
    WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM removed)`,
    // Reads select `*`: they also serve tables of an older layout, which only a write migrates.
    get: `SELECT * FROM ${keys} WHERE key = $1`,
    // getPoison: the token alone, the one column it needs (no record to decode).
    getToken: `SELECT token FROM ${keys} WHERE key = $1`,
    lockMany: `SELECT ${RECORD_COLUMNS} FROM ${keys} WHERE key = ANY($1::bytea[]) ORDER BY key FOR UPDATE`,
    // A batch's delete of a locked row, logged as $2 (deleted / force-deleted) at $3.
    deleteOne: `WITH removed AS (
      DELETE FROM ${keys} WHERE key = $1 RETURNING ${RECORD_COLUMNS}
    )
    ${logArm("removed", "$2::text", "$3::text")}`,
    // An update of a locked row, logged as $7 (poisoned / touched: the caller read the state).
    update: `WITH updated AS (
      UPDATE ${keys} SET updated_at = $2, state = coalesce($3, state),
        error = coalesce($4, error), heartbeat_at = coalesce($5, heartbeat_at),
        heartbeat_interval_ms = coalesce($6, heartbeat_interval_ms)
      WHERE key = $1 RETURNING ${RECORD_COLUMNS}
    ), logged AS (
      ${logArm("updated", "$7::text", "updated.updated_at")}
    )
    SELECT * FROM updated`,
    audit: `INSERT INTO ${audit} (at, action, key, actor, reason, token, record, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    listFirst: listing(">=", false),
    listAfter: listing(">", false),
    listFirstFiltered: listing(">=", true),
    listAfterFiltered: listing(">", true),
    // `a.id`, qualified: a bare ORDER BY id would sort by the output column `id`, which is text
    // (so "9" came before "10" and pages skipped entries).
    // `a.*` then `id` again as text: pg keeps the last column of a name, the text one (a bigint
    // would come back as a string anyway; this keeps it exact and explicit).
    auditByPrefix: `SELECT a.*, a.id::text AS id FROM ${audit} a
    WHERE key >= $1 AND key < $2 AND a.id < $3::bigint ORDER BY a.id DESC LIMIT $4`,
    auditByKey: `SELECT a.*, a.id::text AS id FROM ${audit} a
    WHERE key = $1 AND a.id < $2::bigint ORDER BY a.id DESC LIMIT $3`,
    trimChanges: trimStatement(changes),
    // No payload: a watch reads what is new from the log, whatever woke it.
    notify: `SELECT pg_notify('${channel}', '')`,
  };
}

/** The tables of layout 3, for `CREATE TABLE IF NOT EXISTS` (the driver's init adds the
 *  indexes and the columns of older layouts, asking first: see src/drivers/postgres.ts). */
export function postgresSchema({ keys, audit, changes }: PostgresTables) {
  return {
    keys: `CREATE TABLE IF NOT EXISTS ${keys} (
      key bytea PRIMARY KEY,
      token text NOT NULL,
      state text NOT NULL,
      created_at text NOT NULL,
      updated_at text NOT NULL,
      heartbeat_at text,
      operation text,
      owner text,
      error text,
      data text
    )`,
    audit: `CREATE TABLE IF NOT EXISTS ${audit} (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      at text NOT NULL,
      action text NOT NULL,
      key bytea NOT NULL,
      actor text NOT NULL,
      reason text NOT NULL,
      token text,
      record text
    )`,
    changes: `CREATE TABLE IF NOT EXISTS ${changes} (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      xid bigint NOT NULL,
      key bytea NOT NULL,
      type text NOT NULL,
      at text NOT NULL,
      record text
    )`,
  };
}

/** A statement of the driver: its text, and its name when prepared statements are on. */
export interface Statement {
  name?: string;
  text: string;
}

/**
 * Each statement's name is derived from its text (a hash: the text holds the table names), so
 * two drivers on one pool with different tables never share a name for different texts, which
 * `pg` refuses, and the same driver re-created reuses what a connection already prepared.
 */
export function prepared<K extends string>(
  texts: Record<K, string>,
  prepare: boolean,
): Record<K, Statement> {
  const out = {} as Record<K, Statement>;
  for (const [key, text] of Object.entries(texts) as [K, string][]) {
    out[key] = prepare
      ? { name: `poison_${createHash("sha1").update(text).digest("hex").slice(0, 20)}`, text }
      : { text };
  }
  return out;
}
