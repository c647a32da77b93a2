/**
 * `etcd://host:port[,host:port…]` (`etcds://` for TLS, `user:password@` for etcd's auth) — etcd
 * v3 through its JSON gateway (`/v3/kv/txn`, `/v3/kv/range`) over node:http(s), in
 * ./etcd/gateway.ts: no gRPC stack to install, and each call is one HTTP request the tests can
 * count. Every write is one etcd transaction whose compares make it atomic and race-free; a
 * failed compare reads back what is there in the same transaction.
 *
 * Layout (GreptimeDB-compatible; see docs/BACKENDS-KV.md):
 * - `<namespace>K` → `{"token":"<token>"}` exactly, as GreptimeDB's metadata store writes it;
 * - `<meta>record/<namespace>K` → the rest of the record as JSON, written and deleted in the same
 *   transaction as the poison key (`<meta>` defaults to `/__poison_store/`);
 * - `<meta>audit/<unique suffix>` → one audit entry, put in the same transaction as the write it
 *   describes. Its order is the transaction's revision (the key's mod revision), so audited
 *   writes on different keys never contend on a shared counter; the log is read sorted by mod
 *   revision. (Entries of older versions, under `<meta>audit/<inverted counter id>`, read the
 *   same way.)
 * Listing a namespace skips the `<meta>` range, so it only ever returns poison keys, whatever the
 * namespace; a storage key inside `<meta>` is refused.
 */

import { randomUUID } from "node:crypto";
import { decodeRecord, encodeRecord } from "../core/codec.js";
import {
  type AuditIntent,
  type PoisonDriver,
  type PutOutcome,
  type RecordPatch,
  type RemoveOutcome,
  sameVersion,
  type UpdateOutcome,
} from "../core/driver.js";
import { BackendUnavailableError, InvalidArgumentError } from "../core/errors.js";
import { prefixUpperBound } from "../core/keys.js";
import type { AuditEntry, PoisonRecord } from "../core/records.js";
import { redactUrl } from "../core/url.js";
import {
  createEtcdGateway,
  type EtcdConnectionOptions,
  type EtcdTransport,
  parseEtcdLocation,
} from "./etcd/gateway.js";
import { etcdWatch } from "./etcd/watch.js";

export interface EtcdDriverOptions extends EtcdConnectionOptions {
  /** `etcd://[user:password@]host:port[,host:port…][?metaPrefix=P]`; `etcds://` for TLS, with
   *  `ca`, `cert`, `key` (file paths) and `maxRequestBytes` as further parameters. */
  url?: string;
  /** Where records and the audit log live. Default `/__poison_store/`. */
  metaPrefix?: string;
  /** One HTTP request without an answer after this long fails (its outcome unknown). Keep it
   *  below the store's timeoutMs. Default 4000. */
  requestTimeoutMs?: number;
  /** The server's `--max-request-bytes` (default 1.5 MiB): a larger request is refused with
   *  InvalidArgumentError before it is sent. Raise it with the server's. */
  maxRequestBytes?: number;
  /** Sends each HTTP request: `(request, send) => send(request)` by default. For tests that
   *  count or delay requests. */
  transport?: EtcdTransport;
}

export const DEFAULT_ETCD_META_PREFIX = "/__poison_store/";

/** What a key written without a record (by GreptimeDB) reads as: the time is unknown. */
export const UNKNOWN_TIME = "1970-01-01T00:00:00.000Z";

interface Kv {
  key: Buffer;
  value: Buffer;
  createRevision: string;
  modRevision: string;
}

type Compare = Record<string, string>;
type RequestOp = Record<string, Record<string, string | boolean>>;

interface TxnResult {
  succeeded: boolean;
  /** One entry per op: the kvs of a range, or the prev_kvs of a delete. */
  responses: Kv[][];
  revision: string;
}

/** One key's state as read: its poison key and its record key. */
interface Slot {
  poison: Kv | null;
  record: Kv | null;
}

interface Snapshot {
  slots: Slot[];
}

/** Beyond this, a write that keeps losing compare races gives up (BackendUnavailableError). */
const MAX_ATTEMPTS = 16;

export function etcdDriver(options: EtcdDriverOptions): PoisonDriver {
  const connection = parseEtcdLocation(options);
  const meta =
    options.metaPrefix ?? connection.params.get("metaPrefix") ?? DEFAULT_ETCD_META_PREFIX;
  if (meta.length === 0 || meta.includes("\u0000")) {
    throw new InvalidArgumentError("metaPrefix", "must be a non-empty string without NUL");
  }
  const timeoutMs = options.requestTimeoutMs ?? 4000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new InvalidArgumentError("requestTimeoutMs", "must be a positive number of milliseconds");
  }
  const gateway = createEtcdGateway(connection, { ...options, requestTimeoutMs: timeoutMs });
  const post = gateway.post;
  const metaBytes = utf8(meta);
  const metaEnd = upperBound(metaBytes) as Buffer;
  const recordPrefix = `${meta}record/`;
  const auditPrefix = `${meta}audit/`;
  const recordKey = (storageKey: string) => utf8(recordPrefix + storageKey);
  /** A fresh audit key: unique, and outside the 16-digit names of the old counter ids. */
  const newAuditKey = (i: number) => utf8(`${auditPrefix}e-${randomUUID()}-${i}`);

  const checkKey = (storageKey: string) => {
    if (storageKey.startsWith(meta)) {
      throw new InvalidArgumentError(
        "key",
        `falls under the etcd driver's reserved prefix ${JSON.stringify(meta)}; choose another namespace or metaPrefix`,
      );
    }
    return utf8(storageKey);
  };

  const txn = async (
    compare: Compare[],
    success: RequestOp[],
    failure: RequestOp[],
  ): Promise<TxnResult> => {
    const reply = await post("/v3/kv/txn", { compare, success, failure });
    const responses = (
      (reply.responses as Record<string, Record<string, unknown>>[] | undefined) ?? []
    ).map((op) => {
      const inner = op.response_range ?? op.response_delete_range ?? op.response_put ?? {};
      const kvs = (inner.kvs ?? inner.prev_kvs ?? []) as RawKv[];
      return kvs.map(fromRawKv);
    });
    return {
      succeeded: reply.succeeded === true,
      responses,
      revision: String((reply.header as { revision?: string } | undefined)?.revision ?? "0"),
    };
  };

  /** Reads of every key's poison and record keys: a failure branch. */
  const readOps = (keys: Buffer[], storageKeys: string[]): RequestOp[] =>
    keys.flatMap((key, i) => [range(key), range(recordKey(storageKeys[i] as string))]);
  const snapshotOf = (responses: Kv[][], count: number): Snapshot => {
    const slots: Slot[] = [];
    for (let i = 0; i < count; i++) {
      slots.push({
        poison: responses[2 * i]?.[0] ?? null,
        record: responses[2 * i + 1]?.[0] ?? null,
      });
    }
    return { slots };
  };
  const read = async (keys: Buffer[], storageKeys: string[]) => {
    const result = await txn([], readOps(keys, storageKeys), []);
    return snapshotOf(result.responses, keys.length);
  };

  /** Compares that hold when nothing changed since `snapshot` was read. */
  const guards = (
    keys: Buffer[],
    storageKeys: string[],
    snapshot: Snapshot,
    withRecord: boolean,
  ) => {
    const out: Compare[] = [];
    snapshot.slots.forEach((slot, i) => {
      out.push(guard(keys[i] as Buffer, slot.poison));
      if (withRecord) out.push(guard(recordKey(storageKeys[i] as string), slot.record));
    });
    return out;
  };

  /** Audit puts for `records`, one fresh key each: no compare, no shared counter. The entry's
   *  id is given when it is read (from the revision of this transaction). */
  const auditWrites = (intent: AuditIntent, records: PoisonRecord[]): RequestOp[] =>
    records.map((record, i) => {
      const entry: Omit<AuditEntry, "id"> = {
        at: intent.at,
        action: intent.action,
        key: record.key,
        actor: intent.actor,
        reason: intent.reason,
        record,
      };
      if (intent.token !== undefined) entry.token = intent.token;
      if (intent.evenIfAlive) entry.evenIfAlive = true;
      return put(newAuditKey(i), utf8(JSON.stringify(entry)));
    });

  const recordOf = (storageKey: string, slot: Slot): PoisonRecord | null =>
    slot.poison ? decodeSlot(storageKey, slot.poison, slot.record) : null;

  const location =
    options.url !== undefined
      ? redactUrl(options.url)
      : `${connection.tls ? "etcds" : "etcd"}://${connection.endpoints.map((e) => e.replace(/^https?:\/\//, "")).join(",")}${
          meta === DEFAULT_ETCD_META_PREFIX ? "" : `?metaPrefix=${encodeURIComponent(meta)}`
        }`;

  return {
    backend: "etcd",
    location,
    // etcd's default --max-txn-ops is 128; an audited batch spends three operations per key.
    capabilities: { durable: true, shared: true, oneRoundTrip: true, maxBatchKeys: 42 },

    async init() {
      // Nothing to create: etcd keys need no schema. Fail early if no endpoint answers.
      await post("/v3/kv/range", { key: b64(utf8(meta)), count_only: true });
      return true;
    },

    async put(records, audit): Promise<PutOutcome> {
      const storageKeys = records.map((r) => r.key);
      const keys = storageKeys.map(checkKey);
      const token = (records[0] as PoisonRecord).token;
      // First attempt assumes every key is absent: the one-transaction put of the contract.
      let snapshot: Snapshot = { slots: records.map(() => ({ poison: null, record: null })) };
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const current = snapshot.slots.map((slot, i) => recordOf(storageKeys[i] as string, slot));
        const conflicts = current.filter(
          (held): held is PoisonRecord => held !== null && held.token !== token,
        );
        if (conflicts.length > 0) return { ok: false, conflicts };
        const toWrite = records.filter((_, i) => current[i] === null);
        if (toWrite.length === 0) {
          return {
            ok: true,
            records: current as PoisonRecord[],
            created: current.map(() => false),
          };
        }
        // The record key is not guarded: a stale one (its poison key deleted by another tool)
        // is overwritten.
        const compare = guards(keys, storageKeys, snapshot, false);
        const success: RequestOp[] = toWrite.flatMap((record) => [
          put(utf8(record.key), utf8(poisonValue(token))),
          put(recordKey(record.key), utf8(encodeRecord(record))),
        ]);
        if (audit) success.push(...auditWrites(audit, toWrite));
        const result = await txn(compare, success, readOps(keys, storageKeys));
        if (result.succeeded) {
          return {
            ok: true,
            records: records.map((record, i) => current[i] ?? record),
            created: current.map((held) => held === null),
          };
        }
        snapshot = snapshotOf(result.responses, keys.length);
      }
      throw contended();
    },

    async remove(keys, token, audit, expected): Promise<RemoveOutcome> {
      const storageKeys = [...keys];
      const bytes = storageKeys.map(checkKey);
      let snapshot: Snapshot | null = null;
      if (token !== null && !audit && !expected) {
        // The contract's one-transaction delete: the poison key must hold exactly our bytes.
        const result = await txn(
          bytes.map((key) => ({
            key: b64(key),
            target: "VALUE",
            result: "EQUAL",
            value: b64(utf8(poisonValue(token))),
          })),
          storageKeys.flatMap((key, i) => [
            deleteRange(bytes[i] as Buffer),
            deleteRange(recordKey(key)),
          ]),
          readOps(bytes, storageKeys),
        );
        if (result.succeeded) {
          const removed: PoisonRecord[] = [];
          storageKeys.forEach((key, i) => {
            const poison = result.responses[2 * i]?.[0];
            if (poison)
              removed.push(decodeSlot(key, poison, result.responses[2 * i + 1]?.[0] ?? null));
          });
          return { ok: true, removed };
        }
        snapshot = snapshotOf(result.responses, bytes.length);
      }
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        snapshot ??= await read(bytes, storageKeys);
        const current = snapshot.slots.map((slot, i) => recordOf(storageKeys[i] as string, slot));
        const conflicts = current.filter(
          (held): held is PoisonRecord => held !== null && token !== null && held.token !== token,
        );
        if (conflicts.length > 0) return { ok: false, conflicts };
        if (expected) {
          // A compare-and-delete: anything not as the caller read it refuses the whole call.
          const changed = current.filter((held, i) =>
            held ? !expected[i] || !sameVersion(held, expected[i] as PoisonRecord) : expected[i],
          );
          if (changed.length > 0)
            return { ok: false, conflicts: changed.filter((h): h is PoisonRecord => h !== null) };
        }
        const removed = current.filter((held): held is PoisonRecord => held !== null);
        // Every key absent: nothing to do, and the read was the linearization point.
        if (removed.length === 0) return { ok: true, removed };
        const compare = guards(bytes, storageKeys, snapshot, true);
        const success: RequestOp[] = storageKeys.flatMap((key, i) =>
          current[i] ? [deleteRange(bytes[i] as Buffer), deleteRange(recordKey(key))] : [],
        );
        if (audit) success.push(...auditWrites(audit, removed));
        const result = await txn(compare, success, readOps(bytes, storageKeys));
        if (result.succeeded) return { ok: true, removed };
        snapshot = snapshotOf(result.responses, bytes.length);
      }
      throw contended();
    },

    async update(keys, token, patch: RecordPatch): Promise<UpdateOutcome> {
      const storageKeys = [...keys];
      const bytes = storageKeys.map(checkKey);
      let snapshot = await read(bytes, storageKeys);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const current = snapshot.slots.map((slot, i) => recordOf(storageKeys[i] as string, slot));
        const missing = storageKeys.filter((_, i) => current[i] === null);
        const conflicts = current.filter(
          (held): held is PoisonRecord => held !== null && held.token !== token,
        );
        if (missing.length > 0 || conflicts.length > 0) return { ok: false, conflicts, missing };
        const updated = (current as PoisonRecord[]).map((record) => applyPatch(record, patch));
        const result = await txn(
          guards(bytes, storageKeys, snapshot, true),
          updated.map((record) => put(recordKey(record.key), utf8(encodeRecord(record)))),
          readOps(bytes, storageKeys),
        );
        if (result.succeeded) return { ok: true, records: updated };
        snapshot = snapshotOf(result.responses, bytes.length);
      }
      throw contended();
    },

    async get(key) {
      const bytes = checkKey(key);
      const snapshot = await read([bytes], [key]);
      return recordOf(key, snapshot.slots[0] as Slot);
    },

    async getToken(key) {
      // getPoison needs only the holder: one range on the poison key (linearizable, etcd's
      // default), not the two-range transaction that reads the record too.
      const reply = await post("/v3/kv/range", { key: b64(checkKey(key)) });
      const kv = (reply.kvs as RawKv[] | undefined)?.[0];
      return kv ? tokenOf(Buffer.from(kv.value ?? "", "base64")) : null;
    },

    async list({ prefix, after, limit }) {
      const prefixBytes = utf8(prefix);
      const afterBytes = after === null ? null : utf8(after);
      const low =
        afterBytes && Buffer.compare(afterBytes, prefixBytes) >= 0
          ? Buffer.concat([afterBytes, Buffer.from([0])])
          : prefixBytes;
      const high = upperBound(prefixBytes); // null: no upper bound
      // Two ranges around the reserved <meta> range, so a namespace that covers it (say "/")
      // still lists only poison keys, and a page is exactly `limit` long when keys remain.
      const ranges: Array<[Buffer, Buffer | null]> = [];
      const belowEnd = high === null || Buffer.compare(high, metaBytes) > 0 ? metaBytes : high;
      if (Buffer.compare(low, belowEnd) < 0) ranges.push([low, belowEnd]);
      const aboveStart = Buffer.compare(low, metaEnd) > 0 ? low : metaEnd;
      if (high === null || Buffer.compare(aboveStart, high) < 0) ranges.push([aboveStart, high]);
      if (ranges.length === 0) return [];
      const page = await txn(
        [],
        ranges.map(([start, end]) => range(start, end ?? Buffer.from([0]), limit)),
        [],
      );
      const poisons = page.responses.flat().slice(0, limit);
      const first = poisons[0];
      const last = poisons.at(-1);
      if (!first || !last) return [];
      // The records of exactly this page, read at the page's revision: one consistent view.
      const recordReply = await post("/v3/kv/range", {
        key: b64(recordKey(first.key.toString("utf8"))),
        range_end: b64(Buffer.concat([recordKey(last.key.toString("utf8")), Buffer.from([0])])),
        revision: page.revision,
      });
      const records = new Map<string, Kv>();
      for (const kv of ((recordReply.kvs as RawKv[] | undefined) ?? []).map(fromRawKv)) {
        records.set(kv.key.toString("utf8").slice(recordPrefix.length), kv);
      }
      return poisons.map((kv) => {
        const key = kv.key.toString("utf8");
        return decodeSlot(key, kv, records.get(key) ?? null);
      });
    },

    async audit({ prefix, key, before, limit }) {
      // Newest first is descending (revision, key): ids are `<revision>-<key suffix>`, the
      // revision zero-padded so that ids also compare as text.
      const bound = before === null ? null : parseAuditId(before);
      if (before !== null && !bound) return [];
      const out: AuditEntry[] = [];
      const start = utf8(auditPrefix);
      const end = upperBound(start) as Buffer;
      let maxRevision = bound?.revision ?? null;
      // Entries of one transaction share a revision (at most maxBatchKeys of them), so a batch
      // larger than that always ends inside a revision it can drop and ask for again whole.
      const batch = Math.max(limit, 256);
      for (;;) {
        const request: Record<string, unknown> = {
          key: b64(start),
          range_end: b64(end),
          sort_order: "DESCEND",
          sort_target: "MOD",
          limit: String(batch),
        };
        if (maxRevision !== null) request.max_mod_revision = maxRevision.toString();
        const reply = await post("/v3/kv/range", request);
        let kvs = ((reply.kvs as RawKv[] | undefined) ?? []).map(fromRawKv);
        const more = reply.more === true;
        const lowest = kvs.length > 0 ? BigInt((kvs.at(-1) as Kv).modRevision) : null;
        // A full batch may end part-way through its lowest revision: leave that revision to the
        // next request, which asks for it whole.
        const partial =
          more && lowest !== null && kvs.some((kv) => BigInt(kv.modRevision) !== lowest);
        if (partial) kvs = kvs.filter((kv) => BigInt(kv.modRevision) !== lowest);
        const entries = kvs
          .map((kv) => ({ id: auditId(kv), kv }))
          .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
        for (const { id, kv } of entries) {
          if (before !== null && id >= before) continue;
          const entry = parseAuditEntry(id, kv.value.toString("utf8"));
          if (!entry) continue;
          if (key !== undefined ? entry.key === key : entry.key.startsWith(prefix)) {
            out.push(entry);
            if (out.length >= limit) return out;
          }
        }
        if (!more || lowest === null) return out;
        maxRevision = partial ? lowest : lowest - 1n;
        if (maxRevision < 1n) return out;
      }
    },

    watch: etcdWatch(gateway, { meta, recordPrefix, auditPrefix }),

    async close() {
      await gateway.close();
    },
  };
}

function contended(): BackendUnavailableError {
  return new BackendUnavailableError(
    "etcd",
    `the keys kept changing under ${MAX_ATTEMPTS} attempts of one transaction`,
  );
}

/** GreptimeDB's poison value, byte for byte (serde_json's compact form of `{token}`). */
export function poisonValue(token: string): string {
  return JSON.stringify({ token });
}

/** The record of a poison key: its own record key when that belongs to this poison key (written
 *  in the same or a later revision), else a conservative stand-in for a key written by another
 *  tool (GreptimeDB): state `poisoned`, times unknown. The poison key's token always wins. */
function decodeSlot(storageKey: string, poison: Kv, record: Kv | null): PoisonRecord {
  const token = tokenOf(poison.value);
  if (record && BigInt(record.modRevision) >= BigInt(poison.createRevision)) {
    const decoded = decodeRecord(storageKey, record.value.toString("utf8"), {
      token,
      at: UNKNOWN_TIME,
    });
    return { ...decoded, token };
  }
  return {
    key: storageKey,
    token,
    state: "poisoned",
    createdAt: UNKNOWN_TIME,
    updatedAt: UNKNOWN_TIME,
  };
}

/** The token in a poison value; a value that is not `{"token": string}` is its own token, so it
 *  still conflicts and can still be cleared by force. */
function tokenOf(value: Buffer): string {
  const text = value.toString("utf8");
  try {
    const doc = JSON.parse(text) as { token?: unknown } | null;
    if (doc && typeof doc === "object" && typeof doc.token === "string") return doc.token;
  } catch {
    // fall through
  }
  return text;
}

/** A record with a token-checked update's fields applied. */
export function applyPatch(record: PoisonRecord, patch: RecordPatch): PoisonRecord {
  const out: PoisonRecord = { ...record, updatedAt: patch.updatedAt };
  if (patch.state !== undefined) out.state = patch.state;
  if (patch.error !== undefined) out.error = patch.error;
  if (patch.heartbeatAt !== undefined) out.heartbeatAt = patch.heartbeatAt;
  if (patch.heartbeatIntervalMs !== undefined) out.heartbeatIntervalMs = patch.heartbeatIntervalMs;
  return out;
}

/** An entry's id from where it is stored: its revision (20 digits) and its key's suffix. */
function auditId(kv: Kv): string {
  const name = kv.key.toString("utf8");
  return `${kv.modRevision.padStart(20, "0")}-${name.slice(name.lastIndexOf("/") + 1)}`;
}

function parseAuditId(id: string): { revision: bigint } | null {
  const match = /^(\d{20})-[^/]+$/.exec(id);
  return match ? { revision: BigInt(match[1] as string) } : null;
}

function parseAuditEntry(id: string, text: string): AuditEntry | null {
  try {
    const entry = JSON.parse(text) as AuditEntry;
    if (!entry || typeof entry.key !== "string") return null;
    return { ...entry, id };
  } catch {
    return null;
  }
}

interface RawKv {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
}

function fromRawKv(raw: RawKv): Kv {
  return {
    key: Buffer.from(raw.key ?? "", "base64"),
    value: Buffer.from(raw.value ?? "", "base64"),
    createRevision: raw.create_revision ?? "0",
    modRevision: raw.mod_revision ?? "0",
  };
}

const utf8 = (text: string) => Buffer.from(text, "utf8");

/** prefixUpperBound as a Buffer (it returns a plain Uint8Array), or null for an empty prefix. */
function upperBound(prefix: Buffer): Buffer | null {
  const bound = prefixUpperBound(prefix);
  return bound ? Buffer.from(bound) : null;
}
const b64 = (bytes: Buffer) => bytes.toString("base64");

function range(key: Buffer, end?: Buffer, limit?: number): RequestOp {
  const request: Record<string, string> = { key: b64(key) };
  if (end) request.range_end = b64(end);
  if (limit !== undefined) request.limit = String(limit);
  return { request_range: request };
}

function put(key: Buffer, value: Buffer): RequestOp {
  return { request_put: { key: b64(key), value: b64(value) } };
}

function deleteRange(key: Buffer): RequestOp {
  return { request_delete_range: { key: b64(key), prev_kv: true } };
}

/** Unchanged since read: same mod revision, or still absent. */
function guard(key: Buffer, seen: Kv | null): Compare {
  return seen
    ? { key: b64(key), target: "MOD", result: "EQUAL", mod_revision: seen.modRevision }
    : { key: b64(key), target: "CREATE", result: "EQUAL", create_revision: "0" };
}
