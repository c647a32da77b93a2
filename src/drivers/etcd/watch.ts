/**
 * The etcd driver's native change feed (`PoisonDriver.watch`, contract in src/core/watch.ts):
 * one etcd watch, through the JSON gateway's streaming `POST /v3/watch`.
 *
 * What is watched: ONE range, the smallest that holds the watched poison keys
 * (`<namespace><prefix>…`), their record keys (`<meta>record/<namespace><prefix>…`) and the audit
 * log (`<meta>audit/…`). One watcher, because etcd orders the events of one watcher by revision
 * and never splits a revision across messages, while several watchers on a stream are not
 * ordered against each other as they catch up. So the poison key (the truth, also written by
 * GreptimeDB), its record (written in the same transaction by this driver, alone by an update)
 * and the audit entry that marks a delete as forced arrive together, per revision. The cost: keys
 * of other applications that sort between those prefixes cross the wire and are dropped here. In
 * the GreptimeDB layout (`/__poison_store/` and `/__procedure_poison/`) that range is narrow.
 *
 * Positions are etcd revisions (the mod revision of each change): resuming from R watches from
 * R + 1. A revision etcd has compacted away cannot be resumed: the feed says `resync` and
 * watches from the current revision.
 */
import { decodeRecord } from "../../core/codec.js";
import { BackendConfigurationError, BackendUnavailableError } from "../../core/errors.js";
import type { AuditEntry, PoisonRecord } from "../../core/records.js";
import type {
  DriverChange,
  DriverWatch,
  DriverWatchEvent,
  DriverWatchQuery,
} from "../../core/watch.js";
import { standIn, tokenOf as tokenOfBytes, UNKNOWN_TIME, upperBound } from "./codec.js";
import type { EtcdGateway } from "./gateway.js";

/** The token of a poison value as the gateway sends it (base64). */
const tokenOf = (value: string | undefined) => tokenOfBytes(Buffer.from(value ?? "", "base64"));

/** Where the driver keeps its records and audit log. */
export interface EtcdWatchLayout {
  /** `<meta>`: the range watched. */
  meta: string;
  /** `<meta>record/`. */
  recordPrefix: string;
  /** `<meta>audit/`. */
  auditPrefix: string;
}

interface RawEvent {
  type?: string;
  kv?: { key?: string; value?: string; mod_revision?: string };
  prev_kv?: { value?: string };
}

interface WatchMessage {
  header?: { revision?: string };
  created?: boolean;
  canceled?: boolean;
  cancel_reason?: string;
  compact_revision?: string;
  events?: RawEvent[];
}

export function etcdWatch(gateway: EtcdGateway, layout: EtcdWatchLayout): DriverWatch {
  /** The one range holding the poison keys under `prefix`, their records and the audit log. */
  const rangeOf = (prefix: string) => {
    const poisonStart = Buffer.from(prefix, "utf8");
    const poisonEnd = upperBound(poisonStart);
    const metaStart = Buffer.from(layout.auditPrefix, "utf8");
    const metaEnd = upperBound(Buffer.from(layout.recordPrefix + prefix, "utf8"));
    const lowest = Buffer.compare(poisonStart, metaStart) < 0 ? poisonStart : metaStart;
    // etcd refuses an empty key: "\0" is the first key there is.
    const start = lowest.length === 0 ? Buffer.from([0]) : lowest;
    // No upper bound (an empty prefix): every key from `start` ("\0" as range_end).
    const end =
      poisonEnd === null || metaEnd === null
        ? Buffer.from([0])
        : Buffer.compare(poisonEnd, metaEnd) > 0
          ? poisonEnd
          : metaEnd;
    return { key: start.toString("base64"), range_end: end.toString("base64") };
  };
  const probeKey = Buffer.from(layout.meta, "utf8").toString("base64");

  /** Whether etcd still has every revision after `from` (a range at `from` fails once it is
   *  compacted, or when this etcd never had it: a new cluster). */
  const resumable = async (from: string): Promise<boolean> => {
    try {
      await gateway.post("/v3/kv/range", { key: probeKey, count_only: true, revision: from });
      return true;
    } catch (error) {
      if (/compacted|future revision/i.test((error as Error).message)) return false;
      throw error;
    }
  };

  return async function* watch({
    prefix,
    from,
    signal,
  }: DriverWatchQuery): AsyncGenerator<DriverWatchEvent> {
    const range = rangeOf(prefix);
    let after: string | null = from;
    let resync = false;
    if (after !== null && !/^\d+$/.test(after)) after = null;
    if (from !== null && (after === null || !(await resumable(after)))) {
      after = null;
      resync = true;
    }
    while (!signal.aborted) {
      const create: Record<string, unknown> = { ...range, prev_kv: true };
      if (after !== null) create.start_revision = (BigInt(after) + 1n).toString();
      let compacted = false;
      for await (const raw of gateway.stream("/v3/watch", { create_request: create }, signal)) {
        const message = raw as WatchMessage;
        if (message.created) {
          if (message.canceled) throw canceled(message);
          // Subscribed: every change after this revision follows (or after `from`, resumed).
          const position = after ?? message.header?.revision ?? "0";
          yield { type: resync ? "resync" : "ready", position };
          resync = false;
          continue;
        }
        if (message.compact_revision && message.compact_revision !== "0") {
          // The history after `after` is gone: start again from now and say so.
          compacted = true;
          break;
        }
        if (message.canceled) throw canceled(message);
        for (const change of changesOf(message.events ?? [], prefix, layout)) {
          after = change.position;
          yield change;
        }
      }
      if (signal.aborted) return;
      if (!compacted) throw new BackendUnavailableError("etcd", "the watch stream ended");
      after = null;
      resync = true;
    }
  };
}

function canceled(message: WatchMessage): Error {
  // Not allowed to read the range: retrying cannot help (the runtime ends the watch on it).
  if (/permission denied/i.test(message.cancel_reason ?? "")) {
    return new BackendConfigurationError(
      "etcd",
      "permissions",
      `etcd refused the watch (${message.cancel_reason}): grant the user's role read on the namespace and the meta prefix, and on the keys between them (one watch covers both)`,
    );
  }
  return new BackendUnavailableError(
    "etcd",
    `etcd canceled the watch${message.cancel_reason ? `: ${message.cancel_reason}` : ""}`,
  );
}

/** What one revision did to one key: its poison key's event and its record key's event. */
interface Touched {
  key: string;
  revision: string;
  poison?: RawEvent;
  record?: RawEvent;
}

/** The changes of one watch message (one or more whole revisions), in order. */
function changesOf(events: RawEvent[], prefix: string, layout: EtcdWatchLayout): DriverChange[] {
  const recordStart = layout.recordPrefix + prefix;
  // Audit entries of deletes (put in the same revision): forced ones are known by theirs, and
  // its time is the writer's.
  const audited = new Map<string, AuditEntry>();
  // Per revision and key, in the order first seen (a transaction's operations are in order).
  const touched = new Map<string, Touched>();
  const slot = (key: string, revision: string) => {
    const id = `${revision}/${key}`;
    let found = touched.get(id);
    if (!found) {
      found = { key, revision };
      touched.set(id, found);
    }
    return found;
  };
  for (const event of events) {
    const name = decodeKey(event);
    const revision = event.kv?.mod_revision ?? "0";
    if (name.startsWith(layout.meta)) {
      if (name.startsWith(recordStart)) {
        slot(name.slice(layout.recordPrefix.length), revision).record = event;
      } else if (name.startsWith(layout.auditPrefix) && event.type !== "DELETE") {
        const entry = parseEntry(event.kv?.value);
        if (entry?.action === "force-delete" || entry?.action === "delete")
          audited.set(`${revision}/${entry.key}`, entry);
      }
    } else if (name.startsWith(prefix)) {
      slot(name, revision).poison = event;
    }
  }
  const out: DriverChange[] = [];
  for (const { key, revision, poison, record } of touched.values()) {
    const position = revision;
    if (poison?.type === "DELETE" || (!poison && record?.type === "DELETE")) {
      // A record deleted without its poison key is a leftover cleared: nothing to report.
      if (!poison) continue;
      const entry = audited.get(`${revision}/${key}`);
      const removed = record?.prev_kv
        ? recordOf(key, record.prev_kv.value, tokenOf(poison.prev_kv?.value))
        : poison.prev_kv
          ? standIn(key, tokenOf(poison.prev_kv.value))
          : undefined;
      const change: DriverChange = {
        type: entry?.action === "force-delete" ? "force-deleted" : "deleted",
        key,
        position,
        // The writer's clock when the delete was audited; else when the watch saw it.
        at: entry?.at ?? new Date().toISOString(),
      };
      if (removed) change.record = removed;
      out.push(change);
      continue;
    }
    if (poison) {
      // A poison key written: a new holder, with its record when this driver wrote it (same
      // revision), else (another tool) the conservative stand-in the driver reads it as.
      const token = tokenOf(poison.kv?.value);
      const held = record ? recordOf(key, record.kv?.value, token) : standIn(key, token);
      const before = poison.prev_kv ? tokenOf(poison.prev_kv.value) : null;
      const change: DriverChange = {
        type: before === null || before !== token ? "put" : "touched",
        key,
        record: held,
        position,
      };
      if (!record) change.at = new Date().toISOString();
      out.push(change);
      continue;
    }
    if (!record) continue;
    // The record alone: an update of the holder's record (markPoisoned, heartbeat).
    const after = recordOf(key, record.kv?.value, undefined);
    const before = record.prev_kv ? recordOf(key, record.prev_kv.value, undefined) : null;
    const wasPoisoned = before ? before.state === "poisoned" : true; // a stand-in is poisoned
    out.push({
      type: after.state === "poisoned" && !wasPoisoned ? "poisoned" : "touched",
      key,
      record: after,
      position,
    });
  }
  return out;
}

function decodeKey(event: RawEvent): string {
  return Buffer.from(event.kv?.key ?? "", "base64").toString("utf8");
}

/** A record key's value; the poison key's token wins when known. */
function recordOf(key: string, value: string | undefined, token: string | undefined): PoisonRecord {
  const text = Buffer.from(value ?? "", "base64").toString("utf8");
  const record = decodeRecord(key, text, { token: token ?? "", at: UNKNOWN_TIME });
  return token === undefined ? record : { ...record, token };
}

function parseEntry(value: string | undefined): AuditEntry | null {
  try {
    const entry = JSON.parse(Buffer.from(value ?? "", "base64").toString("utf8")) as AuditEntry;
    return entry && typeof entry.key === "string" ? entry : null;
  } catch {
    return null;
  }
}
