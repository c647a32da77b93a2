/**
 * `memory:` — an in-process map, for tests and demos. Nothing survives the process.
 *
 * `memory:` alone opens a private map; `memory:NAME` opens a map shared by every store of this
 * process opened with the same NAME (so two namespaces can share one backend, as on a server).
 * Atomicity comes from JavaScript itself: each call runs to completion without awaiting.
 */
import {
  type AuditIntent,
  matchesFilter,
  type PoisonDriver,
  type RecordPatch,
  sameVersion,
} from "../core/driver.js";
import { compareKeys } from "../core/keys.js";
import type { AuditEntry, PoisonRecord } from "../core/records.js";
import type { DriverChange, DriverWatchEvent, DriverWatchQuery } from "../core/watch.js";

export interface MemoryDriverOptions {
  /** Share the map with every store of this process opened with the same name. */
  name?: string;
}

interface MemoryState {
  records: Map<string, PoisonRecord>;
  /** Keys in UTF-8 byte order, rebuilt lazily after a write changed the key set. */
  sorted: string[] | null;
  audit: AuditEntry[];
  nextAuditId: number;
}

const named = new Map<string, MemoryState>();

/**
 * A key no caller can use (validation refuses NUL in keys), held in every records map so that it
 * never empties. V8 rebuilds a Map's table whenever a delete leaves it nearly empty, even when
 * the table is already at its smallest: with one key at a time (put, then delete) that was a
 * new table per delete, some 1,000 instructions and its garbage (docs/BENCHMARKS.md).
 */
const RESIDENT = "\0";

function newState(): MemoryState {
  const records = new Map<string, PoisonRecord>();
  // Never read: no call can name this key.
  records.set(RESIDENT, { key: RESIDENT } as PoisonRecord);
  return { records, sorted: null, audit: [], nextAuditId: 1 };
}

export function memoryDriver(options: MemoryDriverOptions = {}): PoisonDriver {
  let state: MemoryState;
  if (options.name === undefined) {
    state = newState();
  } else {
    state = named.get(options.name) ?? newState();
    named.set(options.name, state);
  }
  const feed = feedOf(state);

  // Callers never share a stored object. Records are flat strings but for `error` (flat too)
  // and `data` (JSON), so a spread is enough for all else; structuredClone on every call was
  // most of this driver's cost. What a call hands back is either the caller's own input or a
  // copy, or a record no longer stored (a removed one): never the map's object.
  const copy = (record: PoisonRecord): PoisonRecord => {
    const out = { ...record };
    if (record.error) out.error = { ...record.error };
    if (record.data !== undefined) out.data = structuredClone(record.data);
    return out;
  };

  const appendAudit = (intent: AuditIntent | undefined, key: string, record: PoisonRecord) => {
    if (!intent) return;
    state.audit.push({ id: String(state.nextAuditId++), ...intent, key, record: copy(record) });
  };

  const sortedKeys = (): string[] => {
    state.sorted ??= [...state.records.keys()].filter((key) => key !== RESIDENT).sort(compareKeys);
    return state.sorted;
  };

  /** Store a new record (a copy: the caller keeps its object) and tell the feed. */
  const create = (record: PoisonRecord, audit: AuditIntent | undefined) => {
    const stored = copy(record);
    state.records.set(record.key, stored);
    state.sorted = null;
    appendAudit(audit, record.key, stored);
    publish(feed, { type: "put", key: record.key, record });
  };

  // Every method changes the map synchronously, inside one call of an async function: no other
  // call runs in between, which is the whole of this driver's atomicity. The feed is told in
  // the same synchronous step, so it sees the changes in the order they were made.
  return {
    backend: "memory",
    capabilities: {
      durable: false,
      shared: false,
      oneRoundTrip: true,
      listFilter: true,
      inProcess: true,
    },
    location: options.name === undefined ? "memory:" : `memory:${options.name}`,

    async init() {
      return true;
    },

    async put(records, audit) {
      if (records.length === 1) {
        // The common case without the arrays of a batch.
        const record = records[0] as PoisonRecord;
        const held = state.records.get(record.key);
        if (!held) {
          create(record, audit);
          return { ok: true, records: [record], created: [true] };
        }
        if (held.token !== record.token) return { ok: false, conflicts: [copy(held)] };
        return { ok: true, records: [copy(held)], created: [false] };
      }
      const conflicts: PoisonRecord[] = [];
      for (const record of records) {
        const held = state.records.get(record.key);
        if (held && held.token !== record.token) conflicts.push(copy(held));
      }
      if (conflicts.length > 0) return { ok: false, conflicts };
      const result: PoisonRecord[] = [];
      const created: boolean[] = [];
      for (const record of records) {
        const held = state.records.get(record.key);
        created.push(!held);
        if (held) {
          result.push(copy(held));
        } else {
          create(record, audit);
          result.push(record);
        }
      }
      return { ok: true, records: result, created };
    },

    async remove(keys, token, audit, expected) {
      if (keys.length === 1 && !expected) {
        const key = keys[0] as string;
        const held = state.records.get(key);
        if (!held) return { ok: true, removed: [] };
        if (token !== null && held.token !== token) return { ok: false, conflicts: [copy(held)] };
        // Removed from the map: from now on the caller's alone.
        state.records.delete(key);
        state.sorted = null;
        appendAudit(audit, key, held);
        publishRemoval(feed, held, audit);
        return { ok: true, removed: [held] };
      }
      const conflicts: PoisonRecord[] = [];
      let changed = false;
      keys.forEach((key, i) => {
        const held = state.records.get(key);
        if (held && token !== null && held.token !== token) conflicts.push(copy(held));
        if (expected) {
          const seen = expected[i] ?? null;
          if (held ? !seen || !sameVersion(held, seen) : seen) {
            changed = true;
            if (held) conflicts.push(copy(held));
          }
        }
      });
      if (conflicts.length > 0 || changed) return { ok: false, conflicts };
      const removed: PoisonRecord[] = [];
      for (const key of keys) {
        const held = state.records.get(key);
        if (!held) continue;
        state.records.delete(key);
        state.sorted = null;
        appendAudit(audit, key, held);
        publishRemoval(feed, held, audit);
        removed.push(held);
      }
      return { ok: true, removed };
    },

    async update(keys, token, patch: RecordPatch) {
      const conflicts: PoisonRecord[] = [];
      const missing: string[] = [];
      for (const key of keys) {
        const held = state.records.get(key);
        if (!held) missing.push(key);
        else if (held.token !== token) conflicts.push(copy(held));
      }
      if (conflicts.length > 0 || missing.length > 0) return { ok: false, conflicts, missing };
      const records: PoisonRecord[] = [];
      for (const key of keys) {
        const held = state.records.get(key) as PoisonRecord;
        const before = held.state;
        Object.assign(held, patch);
        // The patch's error is flat: a spread keeps the caller's object out of the map.
        if (patch.error) held.error = { ...patch.error };
        const record = copy(held);
        records.push(record);
        const type = record.state === "poisoned" && before !== "poisoned" ? "poisoned" : "touched";
        publish(feed, { type, key, record });
      }
      return { ok: true, records };
    },

    async get(key) {
      const held = state.records.get(key);
      return held ? copy(held) : null;
    },

    async getToken(key) {
      return state.records.get(key)?.token ?? null;
    },

    async list({ prefix, after, limit, filter }) {
      const keys = sortedKeys();
      const from = after !== null && compareKeys(after, prefix) >= 0 ? after : prefix;
      // First index whose key is > `after` (or >= prefix on the first page).
      let lo = 0;
      let hi = keys.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const c = compareKeys(keys[mid] as string, from);
        if (c < 0 || (c === 0 && from === after)) lo = mid + 1;
        else hi = mid;
      }
      const page: PoisonRecord[] = [];
      for (let i = lo; i < keys.length && page.length < limit; i++) {
        const key = keys[i] as string;
        if (!key.startsWith(prefix)) break;
        const held = state.records.get(key);
        if (held && matchesFilter(held, filter)) page.push(copy(held));
      }
      return page;
    },

    async audit({ prefix, key, before, limit }) {
      const entries: AuditEntry[] = [];
      const beforeId = before === null ? Number.POSITIVE_INFINITY : Number(before);
      for (let i = state.audit.length - 1; i >= 0 && entries.length < limit; i--) {
        const entry = state.audit[i] as AuditEntry;
        if (Number(entry.id) >= beforeId) continue;
        if (key !== undefined ? entry.key !== key : !entry.key.startsWith(prefix)) continue;
        entries.push(structuredClone(entry));
      }
      return entries;
    },

    watch: (query) => watchFeed(feed, query),

    async close() {},
  };
}

// ---- the native change feed (store.watch): the reference implementation of DriverWatch -------

/** Changes kept to resume a watch from an earlier position; older positions get `resync`. */
const MEMORY_FEED_HISTORY = 256;

/** The change feed of one map, shared by every driver opened on it (`memory:NAME`). */
interface MemoryFeed {
  /** Position of the last change published. */
  seq: number;
  /** The last changes, oldest first; each `position` is its sequence number. */
  history: DriverChange[];
  subscribers: Set<(change: DriverChange) => void>;
  /** A watch was opened on this map once. Until then no one holds a position to resume from,
   *  so changes are not recorded: a map nobody watches pays nothing for the feed. */
  watched: boolean;
}

const feeds = new WeakMap<MemoryState, MemoryFeed>();

function feedOf(state: MemoryState): MemoryFeed {
  let feed = feeds.get(state);
  if (!feed) {
    feed = { seq: 0, history: [], subscribers: new Set(), watched: false };
    feeds.set(state, feed);
  }
  return feed;
}

/** Record a change and hand it to the open watches, in the step that made it. */
function publish(feed: MemoryFeed, change: Omit<DriverChange, "position">): void {
  if (!feed.watched) return;
  const published: DriverChange = { ...change, position: String(++feed.seq) };
  feed.history.push(published);
  if (feed.history.length > MEMORY_FEED_HISTORY) feed.history.shift();
  for (const subscriber of feed.subscribers) subscriber(published);
}

function publishRemoval(
  feed: MemoryFeed,
  record: PoisonRecord,
  audit: AuditIntent | undefined,
): void {
  if (!feed.watched) return;
  const type = audit?.action === "force-delete" ? "force-deleted" : "deleted";
  publish(feed, { type, key: record.key, record, ...(audit ? { at: audit.at } : {}) });
}

async function* watchFeed(
  feed: MemoryFeed,
  { prefix, from, signal }: DriverWatchQuery,
): AsyncGenerator<DriverWatchEvent> {
  // Subscribe and read the history in one synchronous step: nothing falls between them.
  feed.watched = true;
  const pending: DriverChange[] = [];
  let wake: (() => void) | null = null;
  const subscriber = (change: DriverChange) => {
    if (!change.key.startsWith(prefix)) return;
    pending.push(change);
    wake?.();
  };
  feed.subscribers.add(subscriber);
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort);
  const now = feed.seq;
  const oldest = Number(feed.history[0]?.position ?? now + 1);
  const after = from === null ? now : Number(from);
  const resumable = Number.isInteger(after) && after <= now && after >= oldest - 1;
  const replay = resumable
    ? feed.history.filter(
        (change) => Number(change.position) > after && change.key.startsWith(prefix),
      )
    : [];
  try {
    yield resumable
      ? { type: "ready", position: String(after) }
      : { type: "resync", position: String(now) };
    for (const change of replay) {
      if (signal.aborted) return;
      yield change;
    }
    while (!signal.aborted) {
      const change = pending.shift();
      if (change) {
        yield change;
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = null;
    }
  } finally {
    feed.subscribers.delete(subscriber);
    signal.removeEventListener("abort", onAbort);
  }
}
