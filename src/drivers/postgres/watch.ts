/**
 * The PostgreSQL driver's native change feed (`store.watch()`, the DriverWatch contract in
 * src/core/watch.ts): a change log written by each change's own statement, LISTEN/NOTIFY to
 * learn of new rows at once, and transaction snapshots as positions.
 *
 * Why snapshots, not log ids: ids come from a sequence when a row is inserted, not when its
 * transaction commits, so id 11 may commit before id 10. A reader that moved past 11 would skip
 * 10 for good. Each row carries its writer's transaction id instead, and a position is a
 * snapshot (`txid_current_snapshot()`: which transactions had committed). "What is new since
 * position P" is then exact: the rows whose transaction P did not see as committed and the
 * reading statement does. No gap to guess about, no wait for slow writers, no lost row.
 *
 * NOTIFY is not durable (a listener that is not connected misses it): it only wakes the reader.
 * The writers send it right after their commit, not inside it (src/drivers/postgres.ts,
 * `logArm`, says why); the log row is what counts, and it is in the change's transaction.
 * What is delivered always comes from the log, so changes made while the watch was disconnected
 * are read when it resubscribes from its last position (LISTEN first, then read: nothing falls
 * between). The log is trimmed to about its newest {@link CHANGES_KEPT} rows; a trim leaves a
 * `horizon` row (the transaction id below which rows may be gone), and a watch resuming from a
 * position older than the horizon yields `resync`.
 *
 * A watch holds one connection of its own (LISTEN needs a session; never a pooled one) and
 * closes it when it ends. It creates nothing: before the first write there is no log to read,
 * and the rows it will hold are all newer than any position.
 */
import { fromColumns, type RecordColumns } from "../../core/codec.js";
import type {
  DriverChange,
  DriverWatch,
  DriverWatchEvent,
  DriverWatchQuery,
} from "../../core/watch.js";

/** Rows the trim keeps (at least); a watch that was away for more changes than this resyncs. */
export const CHANGES_KEPT = 10_000;
/** Logged changes per trim, on average (each write trims with a chance of its changes / TRIM_EVERY). */
export const TRIM_EVERY = 1_000;
/** Least time between two NOTIFYs of one store: the writes in between share the next one, so a
 *  watch hears of a busy writer's change at most this much later. */
export const NOTIFY_SPACING_MS = 10;
/** Without any notification, a watch still reads the log this often: it proves the connection
 *  alive (a dead one fails the read, and the runtime reconnects) and advances the position. */
export const WATCH_HEARTBEAT_MS = 10_000;

/** The dedicated connection of a watch: the part of a `pg` Client it uses. */
export interface PgListenClient {
  query(
    query: string | { name?: string; text: string; values?: unknown[] },
  ): Promise<{ rows: unknown[] }>;
  on(event: "notification", listener: (message: { channel: string }) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  end(): Promise<void>;
}

export interface PostgresWatchSetup {
  /** The change log, quoted. */
  changesTable: string;
  /** The NOTIFY channel the writes use. */
  channel: string;
  /** Name the read statements (prepared once on the watch's connection). */
  prepare: boolean;
  /** A new connected client, used by this watch alone. */
  connect(): Promise<PgListenClient>;
  /** The byte range of the keys under a prefix: its bytes, and the exclusive upper bound. */
  range(prefix: string): [Buffer, Buffer];
  /** A failure to report as the driver does (configuration errors typed). */
  classify(error: unknown): unknown;
  heartbeatMs?: number;
}

/** `txid_current_snapshot()` as text: `xmin:xmax:xip,xip,…`. */
const SNAPSHOT = /^\d{1,20}:\d{1,20}:(\d{1,20}(,\d{1,20})*)?$/;

interface ChangeRow {
  snap: string;
  id: string | null;
  key: Buffer | null;
  type: string | null;
  at: string | null;
  record: string | null;
}

/**
 * The trim, one statement: the transaction id of the oldest of the newest CHANGES_KEPT changes
 * is the new horizon; rows of older transactions go (older horizon rows too), and a horizon row
 * records it when anything went. (Horizon rows carry an old xid: they are not changes, and must
 * not hold the horizon back.)
 */
export function trimStatement(changesTable: string): string {
  return `WITH h AS (
      SELECT min(xid) AS hx FROM (
        SELECT xid FROM ${changesTable} WHERE type <> 'horizon' ORDER BY id DESC LIMIT ${CHANGES_KEPT}
      ) newest
    ), gone AS (
      DELETE FROM ${changesTable} WHERE xid < (SELECT hx FROM h) RETURNING 1
    )
    INSERT INTO ${changesTable} (xid, key, type, at)
    SELECT hx, '\\x'::bytea, 'horizon', now()::text FROM h WHERE EXISTS (SELECT 1 FROM gone)`;
}

export function postgresWatch(setup: PostgresWatchSetup): DriverWatch {
  const { changesTable, channel } = setup;
  const named = (name: string, text: string) =>
    setup.prepare ? { name: `poison_watch_${name}`, text } : { text };
  // The rows the position `$1` had not seen committed (and this statement's snapshot does),
  // under the prefix, in log order; one row with only `snap` when there are none. The xid index
  // bounds the scan to transactions not older than the position's oldest running one.
  const read = named(
    "read",
    `WITH s AS (SELECT txid_current_snapshot() AS snap)
    SELECT s.snap::text AS snap, c.id::text AS id, c.key, c.type, c.at, c.record
    FROM s LEFT JOIN ${changesTable} c
      ON c.xid >= txid_snapshot_xmin($1::txid_snapshot)
      AND NOT txid_visible_in_snapshot(c.xid, $1::txid_snapshot)
      AND c.key >= $2 AND c.key < $3 AND c.type <> 'horizon'
    ORDER BY c.id`,
  );
  const horizon = named(
    "horizon",
    `SELECT coalesce(max(xid), 0)::text AS horizon, txid_current_snapshot()::text AS snap
    FROM ${changesTable} WHERE type = 'horizon'`,
  );
  const heartbeatMs = setup.heartbeatMs ?? WATCH_HEARTBEAT_MS;

  return async function* watch({
    prefix,
    from,
    signal,
  }: DriverWatchQuery): AsyncGenerator<DriverWatchEvent> {
    if (signal.aborted) return;
    const [low, high] = setup.range(prefix);
    let notified = false;
    let failure: unknown = null;
    let wake: (() => void) | null = null;
    const poke = () => wake?.();
    let client: PgListenClient | null = null;
    // Aborting closes the connection at once, even under a pending read.
    const onAbort = () => {
      poke();
      void client?.end().catch(() => undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      client = await setup.connect();
      const connected = client;
      connected.on("notification", (message) => {
        if (message.channel !== channel) return;
        notified = true;
        poke();
      });
      connected.on("error", (error) => {
        failure ??= error;
        poke();
      });
      connected.on("end", () => {
        failure ??= new Error("the watch's connection closed");
        poke();
      });
      if (signal.aborted) return;
      // Subscribed before the position is taken: a change committed after it is notified.
      await connected.query(`LISTEN "${channel}"`);
      const start = await startingPoint(connected, from);
      let position = start.position;
      yield start.resync ? { type: "resync", position } : { type: "ready", position };
      // Resuming: what was committed while away is read at once.
      let due = from !== null && !start.resync;
      while (!signal.aborted) {
        if (failure) throw failure;
        if (due || notified) {
          due = false;
          notified = false;
          const rows = await readSince(connected, position, low, high);
          if (rows === null) continue; // no log yet: nothing written, the position stands
          const snap = (rows[0] as ChangeRow).snap;
          const changes = rows.filter((row) => row.id !== null);
          for (const [i, row] of changes.entries()) {
            if (signal.aborted) return;
            // Mid-batch, a position resumes at the batch's start (its rows come again: at least
            // once); after the last row, just after it.
            yield toChange(row, i === changes.length - 1 ? snap : position);
          }
          // Nothing under the prefix: still move on, so a later resume reads a short range.
          if (changes.length === 0 && snap !== position) yield { type: "ready", position: snap };
          position = snap;
          continue;
        }
        const timedOut = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(true), heartbeatMs);
          wake = () => {
            clearTimeout(timer);
            resolve(false);
          };
        });
        wake = null;
        if (timedOut) due = true;
      }
    } catch (error) {
      if (signal.aborted) return;
      throw setup.classify(error);
    } finally {
      signal.removeEventListener("abort", onAbort);
      await client?.end().catch(() => undefined);
    }
  };

  /** Where the watch starts: from `from` if the log still holds everything after it, else
   *  (`resync`) from now. */
  async function startingPoint(
    client: PgListenClient,
    from: string | null,
  ): Promise<{ position: string; resync: boolean }> {
    let answer: { horizon: string; snap: string } | null;
    try {
      answer = (await client.query(horizon)).rows[0] as { horizon: string; snap: string };
    } catch (error) {
      if (!isMissingTable(error)) throw error;
      answer = null; // never written: nothing was trimmed
    }
    const now =
      answer?.snap ??
      (
        (await client.query("SELECT txid_current_snapshot()::text AS snap")).rows[0] as {
          snap: string;
        }
      ).snap;
    if (from === null) return { position: now, resync: false };
    if (!SNAPSHOT.test(from)) return { position: now, resync: true };
    const oldestUnseen = BigInt(from.split(":")[0] as string);
    const trimmedBelow = BigInt(answer?.horizon ?? "0");
    return trimmedBelow <= oldestUnseen
      ? { position: from, resync: false }
      : { position: now, resync: true };
  }

  async function readSince(
    client: PgListenClient,
    position: string,
    low: Buffer,
    high: Buffer,
  ): Promise<ChangeRow[] | null> {
    try {
      return (await client.query({ ...read, values: [position, low, high] })).rows as ChangeRow[];
    } catch (error) {
      if (isMissingTable(error)) return null;
      throw error;
    }
  }
}

/** A log row as the runtime takes it. The record is the row's columns as `row_to_json` wrote
 *  them (the names of RecordColumns), decoded like a row of the keys table. */
function toChange(row: ChangeRow, position: string): DriverChange {
  const key = (row.key as Buffer).toString("utf8");
  const change: DriverChange = { type: changeType(row.type), key, position };
  if (row.at !== null) change.at = row.at;
  if (row.record !== null) change.record = fromColumns(key, recordColumns(row.record));
  return change;
}

function changeType(type: string | null): DriverChange["type"] {
  switch (type) {
    case "put":
    case "poisoned":
    case "touched":
    case "deleted":
    case "force-deleted":
      return type;
    default:
      // Written by a newer version: something changed the key; a consumer re-reads it.
      return "touched";
  }
}

function recordColumns(text: string): RecordColumns {
  const value = JSON.parse(text) as Partial<Record<keyof RecordColumns, unknown>>;
  const str = (field: keyof RecordColumns) =>
    typeof value[field] === "string" ? (value[field] as string) : null;
  return {
    token: str("token") ?? "",
    state: str("state") ?? "poisoned",
    created_at: str("created_at") ?? "",
    updated_at: str("updated_at") ?? "",
    heartbeat_at: str("heartbeat_at"),
    heartbeat_interval_ms:
      typeof value.heartbeat_interval_ms === "number" ? value.heartbeat_interval_ms : null,
    operation: str("operation"),
    owner: str("owner"),
    error: str("error"),
    data: str("data"),
  };
}

function isMissingTable(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "42P01";
}
