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

  return {
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
  };
}
