/**
 * `etcd://host:port[,host:port…]` (`etcds://` for TLS, `user:password@` for etcd's auth) — etcd
 * v3 through its JSON gateway (`/v3/kv/txn`, `/v3/kv/range`) over node:http(s), in
 * ./etcd/gateway.ts: no gRPC stack to install, and each call is one HTTP request the tests can
 * count. Every write is one etcd transaction whose compares make it atomic and race-free; a
 * failed compare reads back what is there in the same transaction.
 *
 * The driver is the call runner; the parts are in ./etcd/: gateway.ts (HTTP, failover, TLS, auth),
 * codec.ts (the wire shapes and the stored values), calls.ts (one decision function per write,
 * run here by core/retry.ts's `optimistic` loop) and watch.ts (the native change feed).
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
import type { PoisonDriver, PutOutcome, RemoveOutcome, UpdateOutcome } from "../core/driver.js";
import { BackendUnavailableError, InvalidArgumentError } from "../core/errors.js";
import type { AuditEntry } from "../core/records.js";
import { optimistic } from "../core/retry.js";
import { redactUrl } from "../core/url.js";
import {
  type CallKeys,
  type CallLayout,
  decidePut,
  decideRemove,
  decideUpdate,
  readOps,
  removeFastPath,
  type Step,
} from "./etcd/calls.js";
import {
  absentSnapshot,
  auditId,
  b64,
  decodeSlot,
  fromRawKv,
  type Kv,
  parseAuditEntry,
  parseAuditId,
  parseTxnReply,
  type RawKv,
  rangeOp,
  type Snapshot,
  snapshotOf,
  type TxnRequest,
  type TxnResult,
  tokenOf,
  upperBound,
  utf8,
} from "./etcd/codec.js";
import {
  createEtcdGateway,
  type EtcdConnectionOptions,
  type EtcdTransport,
  parseEtcdLocation,
} from "./etcd/gateway.js";
import { etcdWatch } from "./etcd/watch.js";

export { applyPatch, poisonValue, UNKNOWN_TIME } from "./etcd/codec.js";

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
  const layout: CallLayout = {
    recordKey: (storageKey) => utf8(recordPrefix + storageKey),
    // Unique, and outside the 16-digit names of the old counter ids.
    newAuditKey: (i) => utf8(`${auditPrefix}e-${randomUUID()}-${i}`),
  };
  const recordKey = layout.recordKey;

  /** The call's keys, checked: a storage key inside `<meta>` is refused. */
  const keysOf = (storageKeys: readonly string[]): CallKeys => ({
    storageKeys,
    bytes: storageKeys.map((storageKey) => {
      if (storageKey.startsWith(meta)) {
        throw new InvalidArgumentError(
          "key",
          `falls under the etcd driver's reserved prefix ${JSON.stringify(meta)}; choose another namespace or metaPrefix`,
        );
      }
      return utf8(storageKey);
    }),
  });

  const txn = async (request: TxnRequest): Promise<TxnResult> =>
    parseTxnReply(await post("/v3/kv/txn", request));

  /**
   * One write call: decide on what was read (`first`, or nothing), commit the decision with its
   * compares, and on a lost compare decide again on what the failure branch read, in the same
   * transaction. At most `maxAttempts` transactions.
   */
  const run = <T>(
    keys: CallKeys,
    first: Snapshot | null,
    decide: (snapshot: Snapshot | null) => Step<T>,
    maxAttempts = MAX_ATTEMPTS,
  ): Promise<T> => {
    let snapshot = first;
    const failure = readOps(layout, keys);
    return optimistic<T>(
      maxAttempts,
      async () => {
        let step = decide(snapshot);
        if (step.kind === "read") {
          const read = await txn({ compare: [], success: failure, failure: [] });
          snapshot = snapshotOf(read.responses, keys.bytes.length);
          step = decide(snapshot);
        }
        if (step.kind === "done") return { done: true, value: step.value };
        if (step.kind === "read") throw new Error("a decision asked for a read it was given");
        const result = await txn({ compare: step.compare, success: step.success, failure });
        if (result.succeeded) return { done: true, value: step.onCommit(result) };
        snapshot = snapshotOf(result.responses, keys.bytes.length);
        return { done: false };
      },
      contended,
    );
  };

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

    put(records, audit): Promise<PutOutcome> {
      const keys = keysOf(records.map((record) => record.key));
      // The first pass assumes every key is absent: the one-transaction put of the contract.
      return run(keys, absentSnapshot(records.length), (snapshot) =>
        decidePut(layout, keys, records, audit, snapshot ?? absentSnapshot(records.length)),
      );
    },

    remove(storageKeys, token, audit, expected): Promise<RemoveOutcome> {
      const keys = keysOf([...storageKeys]);
      // The blind one-transaction delete, when taken, is one pass more than the read-decide ones.
      const attempts = MAX_ATTEMPTS + (removeFastPath(token, audit, expected) ? 1 : 0);
      return run(
        keys,
        null,
        (snapshot) => decideRemove(layout, keys, token, audit, expected, snapshot),
        attempts,
      );
    },

    update(storageKeys, token, patch): Promise<UpdateOutcome> {
      const keys = keysOf([...storageKeys]);
      return run(keys, null, (snapshot) => decideUpdate(layout, keys, token, patch, snapshot));
    },

    async get(key) {
      const keys = keysOf([key]);
      const read = await txn({ compare: [], success: readOps(layout, keys), failure: [] });
      const slot = snapshotOf(read.responses, 1).slots[0];
      return slot?.poison ? decodeSlot(key, slot.poison, slot.record) : null;
    },

    async getToken(key) {
      // getPoison needs only the holder: one range on the poison key (linearizable, etcd's
      // default), not the two-range transaction that reads the record too.
      const reply = await post("/v3/kv/range", { key: b64(keysOf([key]).bytes[0] as Buffer) });
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
      const page = await txn({
        compare: [],
        success: ranges.map(([start, end]) => rangeOp(start, end ?? Buffer.from([0]), limit)),
        failure: [],
      });
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
