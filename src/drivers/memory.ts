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

function newState(): MemoryState {
  return { records: new Map(), sorted: null, audit: [], nextAuditId: 1 };
}

export function memoryDriver(options: MemoryDriverOptions = {}): PoisonDriver {
  let state: MemoryState;
  if (options.name === undefined) {
    state = newState();
  } else {
    state = named.get(options.name) ?? newState();
    named.set(options.name, state);
  }

  // Callers never share a stored object. Records are flat strings but for `error` (flat too)
  // and `data` (JSON), so a spread is enough for all else; structuredClone on every call was
  // most of this driver's cost.
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
    state.sorted ??= [...state.records.keys()].sort(compareKeys);
    return state.sorted;
  };

  return withMemoryWatch(state, {
    backend: "memory",
    capabilities: { durable: false, shared: false, oneRoundTrip: true, listFilter: true },
    location: options.name === undefined ? "memory:" : `memory:${options.name}`,

    async init() {
      return true;
    },

    async put(records, audit) {
      const conflicts: PoisonRecord[] = [];
      for (const record of records) {
        const held = state.records.get(record.key);
        if (held && held.token !== record.token) conflicts.push(copy(held));
      }
      if (conflicts.length > 0) return { ok: false, conflicts };
      const result: PoisonRecord[] = [];
      const created: boolean[] = [];
      for (const record of records) {
        let held = state.records.get(record.key);
        created.push(!held);
        if (!held) {
          held = copy(record);
          state.records.set(record.key, held);
          state.sorted = null;
          appendAudit(audit, record.key, held);
        }
        result.push(copy(held));
      }
      return { ok: true, records: result, created };
    },

    async remove(keys, token, audit, expected) {
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
        removed.push(copy(held));
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
        Object.assign(held, structuredClone(patch));
        records.push(copy(held));
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

    async close() {},
  });
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
}

const feeds = new WeakMap<MemoryState, MemoryFeed>();

/**
 * The driver, with each write also published to the map's feed. The wrapped calls change the
 * map synchronously and publish in the same order as they ran (each awaits a settled promise
 * the same way), so subscribers see the changes in commit order.
 */
function withMemoryWatch(state: MemoryState, driver: PoisonDriver): PoisonDriver {
  let feed = feeds.get(state);
  if (!feed) {
    feed = { seq: 0, history: [], subscribers: new Set() };
    feeds.set(state, feed);
  }
  const shared = feed;
  const publish = (change: Omit<DriverChange, "position">) => {
    const published: DriverChange = { ...change, position: String(++shared.seq) };
    shared.history.push(published);
    if (shared.history.length > MEMORY_FEED_HISTORY) shared.history.shift();
    for (const subscriber of shared.subscribers) subscriber(published);
  };
  return {
    ...driver,

    async put(records, audit) {
      const outcome = await driver.put(records, audit);
      if (outcome.ok) {
        outcome.records.forEach((record, i) => {
          if (outcome.created[i]) publish({ type: "put", key: record.key, record });
        });
      }
      return outcome;
    },

    async remove(keys, token, audit, expected) {
      const outcome = await driver.remove(keys, token, audit, expected);
      if (outcome.ok) {
        const type = audit?.action === "force-delete" ? "force-deleted" : "deleted";
        for (const record of outcome.removed)
          publish({ type, key: record.key, record, ...(audit ? { at: audit.at } : {}) });
      }
      return outcome;
    },

    async update(keys, token, patch) {
      // Read synchronously before the (synchronous) update: whether the state changes.
      const before = keys.map((key) => state.records.get(key)?.state);
      const outcome = await driver.update(keys, token, patch);
      if (outcome.ok) {
        outcome.records.forEach((record, i) => {
          const type =
            record.state === "poisoned" && before[i] !== "poisoned" ? "poisoned" : "touched";
          publish({ type, key: record.key, record });
        });
      }
      return outcome;
    },

    async *watch({ prefix, from, signal }: DriverWatchQuery): AsyncGenerator<DriverWatchEvent> {
      // Subscribe and read the history in one synchronous step: nothing falls between them.
      const pending: DriverChange[] = [];
      let wake: (() => void) | null = null;
      const subscriber = (change: DriverChange) => {
        if (!change.key.startsWith(prefix)) return;
        pending.push(change);
        wake?.();
      };
      shared.subscribers.add(subscriber);
      const onAbort = () => wake?.();
      signal.addEventListener("abort", onAbort);
      const now = shared.seq;
      const oldest = Number(shared.history[0]?.position ?? now + 1);
      const after = from === null ? now : Number(from);
      const resumable = Number.isInteger(after) && after <= now && after >= oldest - 1;
      const replay = resumable
        ? shared.history.filter(
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
        shared.subscribers.delete(subscriber);
        signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
