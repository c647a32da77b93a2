/**
 * `redis://…` — Redis through ioredis 5, atomic steps as server-side Lua scripts.
 *
 * Every write is one script (src/drivers/redis/*.lua, each after the shared prelude.lua, defined
 * with ioredis `defineCommand` and run with EVALSHA), so each call of the core contract is one
 * round trip and Redis runs it without interleaving any other command: put-if-absent,
 * delete-if-token and batches are race-free.
 *
 * Layout under the key prefix P (default `{poison-store}:`; the braces are a cluster hash tag so
 * every key of a store lives on one slot):
 * - `P` + `r:` + storage key: a hash, one field per record column (token, state, created_at…);
 * - `P` + `index`: a sorted set of storage keys, all scored 0, listed with ZRANGEBYLEX on raw
 *   bytes (never SCAN MATCH, so `*`, `?` and `[` in keys are plain characters);
 * - `P` + `audit`: a stream of audit entries, appended by the same script as the write;
 * - `P` + `changes`: a stream of every change (type, key, record), appended by the same script as
 *   the change and trimmed to about 10,000 entries: store.watch's native feed (`watchChanges`).
 *
 * What Redis does not promise: replication is asynchronous, so a poison key acknowledged by a
 * primary can vanish when a replica without it is promoted (see docs/BACKENDS-KV.md).
 */
import { readFile } from "node:fs/promises";
import type { Redis, RedisOptions } from "ioredis";
import {
  type AuditColumns,
  fromAuditColumns,
  fromColumns,
  RECORD_COLUMN_NAMES,
  type RecordColumns,
  toColumns,
} from "../core/codec.js";
import type { AuditIntent, PoisonDriver, RecordPatch } from "../core/driver.js";
import {
  BackendConfigurationError,
  BackendUnavailableError,
  InvalidArgumentError,
} from "../core/errors.js";
import { prefixUpperBound } from "../core/keys.js";
import type { AuditEntry, PoisonRecord } from "../core/records.js";
import { redactUrl } from "../core/url.js";
import { checkDuration } from "../core/validation.js";
import type { DriverChange, DriverWatchEvent, DriverWatchQuery } from "../core/watch.js";
import {
  explainConnectFailure,
  RedisErrorLog,
  redisFailure,
  redisTls,
  redisTlsSources,
} from "./redis-connection.js";
import type { TlsOptions, TlsSources } from "./tls.js";

/**
 * An ioredis 5 client (`new Redis(…)` from "ioredis"), named by the few members every one has,
 * so that the package's types compile without ioredis installed. The driver uses it as the
 * ioredis `Redis` it is.
 */
export interface RedisClientLike {
  readonly status: string;
  quit(): Promise<unknown>;
  disconnect(reconnect?: boolean): void;
}

export interface RedisDriverOptions {
  /** `redis://[user:password@]host[:port][/db][?keyPrefix=P]`; `rediss://` for TLS, with
   *  `ca`, `cert`, `key` (file paths) as further parameters. */
  url?: string;
  /** TLS for a `rediss://` URL (PEM text or file paths); verification is on unless
   *  `rejectUnauthorized` is false (UNSAFE). */
  tls?: TlsOptions;
  /** An ioredis client to use instead of a URL. The caller owns it: close() leaves it open, and
   *  its offline queue and timeouts are the caller's choice (see docs/BACKENDS-KV.md). The
   *  driver defines its scripts on it (`defineCommand`, commands named `poisonStore_*`). */
  client?: RedisClientLike;
  /** Prefixed to every Redis key this driver writes. Default `{poison-store}:`. */
  keyPrefix?: string;
  /** A command without a reply after this long fails, and the connection is dropped and
   *  re-made (its state is unknown). Keep it below the store's timeoutMs. Default 4000. */
  commandTimeoutMs?: number;
  /** Bound on establishing a connection. Default 4000. */
  connectTimeoutMs?: number;
  /** Accept a server whose `maxmemory-policy` may evict keys without a TTL (`allkeys-*`): an
   *  evicted poison key silently frees its resource. Default false: such a server is refused
   *  with BackendConfigurationError. URL form: `?allowEviction=true`. */
  allowEviction?: boolean;
}

export const DEFAULT_REDIS_KEY_PREFIX = "{poison-store}:";

const SCRIPT_NAMES = ["put", "remove", "update", "list", "audit", "changes"] as const;
type ScriptName = (typeof SCRIPT_NAMES)[number];

/**
 * Script sources, read once per process from the .lua files beside this module (copied into
 * dist by `npm run build`), each with prelude.lua (the helpers several scripts share) prepended:
 * what Redis runs is the prelude followed by the script.
 */
let sources: Promise<Record<ScriptName, string>> | null = null;
function loadSources(): Promise<Record<ScriptName, string>> {
  sources ??= (async () => {
    const read = (name: string) =>
      readFile(new URL(`./redis/${name}.lua`, import.meta.url), "utf8");
    const prelude = await read("prelude");
    const entries = await Promise.all(
      SCRIPT_NAMES.map(async (name) => [name, `${prelude}\n${await read(name)}`] as const),
    );
    return Object.fromEntries(entries) as Record<ScriptName, string>;
  })();
  sources.catch(() => {
    sources = null;
  });
  return sources;
}

/** The name under which a script is defined on a client (ioredis `defineCommand`). Prefixed, as
 *  the client may be the caller's and have commands of its own. */
const commandName = (name: ScriptName) => `poisonStore_${name}`;
const COMMAND_NAMES = Object.fromEntries(
  SCRIPT_NAMES.map((name) => [name, commandName(name)]),
) as Record<ScriptName, string>;

/** A client with our scripts defined: `command(numberOfKeys, ...keys, ...args)`. */
type ScriptedRedis = Record<
  string,
  (...args: (string | number | Buffer | (string | Buffer)[])[]) => Promise<unknown>
>;

/**
 * Define the scripts on a client, once. ioredis then sends each as EVALSHA, and as EVAL the
 * first time on each connection and after a NOSCRIPT answer (a restarted server, SCRIPT FLUSH):
 * a lost script cache costs one extra round trip for the call that meets it, never an error.
 */
const scripted = new WeakSet<object>();
function defineScripts(redis: Redis, text: Record<ScriptName, string>): void {
  if (scripted.has(redis)) return;
  for (const name of SCRIPT_NAMES) redis.defineCommand(commandName(name), { lua: text[name] });
  scripted.add(redis);
}

/**
 * The first element of every write script's reply. `conflict` is what the runtime turns into
 * ErrorCode.PoisonConflict (PoisonConflictError, with the records returned) or, for update's
 * absent keys, ErrorCode.PoisonNotFound; the header of each .lua file says what follows.
 */
const REPLY = { ok: 1, conflict: 0, resync: 2 } as const;

/** How long one XREAD of the change stream waits before it is sent again (an idle watch costs
 *  one command per this interval), and how many entries one read takes. */
const WATCH_BLOCK_MS = 10_000;
const WATCH_BATCH = 256;

const CHANGE_TYPES = new Set<string>(["put", "poisoned", "touched", "deleted", "force-deleted"]);

/** `<run_id>/<stream id>` into its two parts (a position from elsewhere reads as nothing). */
function splitPosition(position: string | null): [string, string] {
  const at = position?.lastIndexOf("/") ?? -1;
  if (position === null || at < 0) return ["", "0-0"];
  const id = position.slice(at + 1);
  return [position.slice(0, at), /^\d+-\d+$/.test(id) ? id : "0-0"];
}

/** A change-stream entry as a change (without its position), or null when it is not under
 *  `prefix` or not one of ours. */
function changeOf(
  id: string,
  flat: readonly Reply[],
  prefix: string,
): Omit<DriverChange, "position"> | null {
  const fields = pairs(flat);
  const key = fields.get("k");
  const type = fields.get("t");
  if (key === undefined || type === undefined || !CHANGE_TYPES.has(type)) return null;
  if (!key.startsWith(prefix)) return null;
  const change: Omit<DriverChange, "position"> = {
    type: type as DriverChange["type"],
    key,
  };
  if (fields.has("token")) change.record = fromColumns(key, columnsOf(fields));
  const at = fields.get("at");
  if (at !== undefined) change.at = at;
  else if (type === "deleted" || type === "force-deleted") {
    // When it was removed: the stream id's time (the server's clock), not the record's.
    change.at = new Date(Number(id.split("-")[0])).toISOString();
  }
  return change;
}

/** A Lua reply: nested arrays of strings and integers. */
type Reply = string | number | null | Reply[];

/**
 * The record columns, one hash field each. The scripts answer records as the HMGET of these
 * fields in exactly this order (values only: half the reply of HGETALL, read by position), so
 * the Lua `COLUMNS` table must list the same names in the same order.
 */
const COLUMNS: readonly (keyof RecordColumns)[] = RECORD_COLUMN_NAMES;

export function redisDriver(options: RedisDriverOptions): PoisonDriver {
  const settings = parseOptions(options);
  const prefix = settings.keyPrefix;
  const indexKey = `${prefix}index`;
  const auditKey = `${prefix}audit`;
  const changesKey = `${prefix}changes`;
  const recordPrefix = `${prefix}r:`;
  const recordKey = (storageKey: string) => recordPrefix + storageKey;
  let client: Redis | null = (options.client as Redis | undefined) ?? null;
  const ownsClient = options.client === undefined;
  let initialized = false;
  const errorLog = new RedisErrorLog();

  const ready = (): Redis => {
    if (!client) throw new BackendUnavailableError("redis", "not connected");
    return client;
  };

  /** One script: one round trip (EVALSHA; see defineScripts for a lost script cache). */
  const run = (name: ScriptName, keys: string[], args: (string | Buffer)[]): Promise<Reply> => {
    try {
      const redis = ready() as unknown as ScriptedRedis;
      const command = redis[COMMAND_NAMES[name]];
      if (!initialized || !command)
        throw new BackendUnavailableError("redis", "scripts not defined");
      // ioredis flattens its arguments: the arrays are passed as they are, not copied.
      return guard(command.call(redis, keys.length, keys, args)) as Promise<Reply>;
    } catch (error) {
      return Promise.reject(error);
    }
  };

  /** A command that timed out leaves its connection in an unknown state (a late reply would be
   *  taken for the next command's): drop it so ioredis connects afresh. The error is then
   *  classified (redis-connection.ts): what to fix, or the connection's real cause. */
  const afterFailure = (error: unknown): unknown => {
    if (ownsClient && error instanceof Error && /timed out/i.test(error.message)) {
      client?.disconnect(true);
    }
    return redisFailure(error, ownsClient ? errorLog : null, settings.tls !== null);
  };
  // Not an async function: one promise fewer per call.
  const fail = (error: unknown): never => {
    throw afterFailure(error);
  };
  const guard = <T>(promise: Promise<T>): Promise<T> => promise.catch(fail);

  /**
   * store.watch's native feed: the change stream `P changes`, appended by the same script as
   * each change, read on a dedicated connection (XREAD BLOCK holds it) that the abort closes.
   * Positions are `<server run_id>/<stream id>`: a stream id resumes only on the server
   * incarnation that wrote it, unless that entry is still there (persistence kept it).
   */
  async function* watchChanges({
    prefix: watched,
    from,
    signal,
  }: DriverWatchQuery): AsyncGenerator<DriverWatchEvent> {
    const redis = ready();
    const text = await loadSources();
    const log = new RedisErrorLog();
    const conn = redis.duplicate({
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // A failure ends this call; the runtime calls again from the last position (backoff).
      retryStrategy: () => null,
      // XREAD BLOCK waits up to WATCH_BLOCK_MS for its answer: allow for it.
      commandTimeout: WATCH_BLOCK_MS + settings.commandTimeoutMs,
    });
    conn.on("error", (error: Error) => log.record(error));
    const close = () => conn.disconnect(false);
    signal.addEventListener("abort", close, { once: true });
    const failed = (error: unknown) => redisFailure(error, log, settings.tls !== null);
    try {
      if (signal.aborted) return;
      await conn.connect();
      defineScripts(conn, text);
      const runId = /^run_id:(\S+)/m.exec(await conn.info("server"))?.[1] ?? "";
      const read = async (after: string) =>
        (await (conn as unknown as ScriptedRedis)[commandName("changes")]?.call(
          conn,
          1,
          changesKey,
          after,
          String(WATCH_BATCH),
        )) as [number, string, Reply[]?];
      // Where to start: from now, or from `from` if this server can still serve it.
      const [fromRun, fromId] = splitPosition(from);
      const asked = from === null ? "" : fromRun !== runId && fromId === "0-0" ? null : fromId;
      const first = asked === null ? ([REPLY.resync, ""] as const) : await read(asked);
      let last = first[0] === REPLY.resync ? (await read(""))[1] : first[1];
      const position = (id: string) => `${runId}/${id}`;
      yield {
        type: first[0] === REPLY.resync ? "resync" : "ready",
        position: position(last),
      };
      let pending: Reply[] = first[0] === REPLY.resync ? [] : (first[2] ?? []);
      while (!signal.aborted) {
        for (const entry of pending) {
          const [id, fields] = entry as [string, Reply[]];
          last = id;
          const change = changeOf(id, fields, watched);
          if (change) yield { ...change, position: position(id) };
        }
        if (signal.aborted) return;
        if (pending.length === 0) {
          // Wait for anything newer than `last` (at once if it is there already); the entries
          // are then read with the trim check, so that a gap is a resync, never silent. A wait
          // that times out (null) is simply sent again: an idle watch costs one command per wait.
          const woken = await conn.xread(
            "COUNT",
            1,
            "BLOCK",
            WATCH_BLOCK_MS,
            "STREAMS",
            changesKey,
            last,
          );
          if (woken === null) continue;
        }
        const next = await read(last);
        if (next[0] === REPLY.resync) {
          last = (await read(""))[1];
          yield { type: "resync", position: position(last) };
          pending = [];
        } else {
          pending = next[2] ?? [];
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      throw failed(error);
    } finally {
      signal.removeEventListener("abort", close);
      conn.disconnect(false);
    }
  }

  /** The driver's own client, connected. Once, however many inits run at the same time (a
   *  read-only probe and a creating init may): a second client would never be closed. */
  let connecting: Promise<Redis> | null = null;
  const connectClient = async (): Promise<Redis> => {
    const { Redis: RedisClient } = await import("ioredis");
    const created = new RedisClient(settings.url, {
      ...settings.redis,
      ...(settings.tls ? { tls: await redisTls(settings.tls) } : {}),
      lazyConnect: true,
      // Fail at once while disconnected instead of queueing: a call must never hang or be
      // replayed later behind the caller's back.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      // The ready check must stay on: with it off, ioredis 5 marks a connection "ready" once
      // its CLIENT SETINFO calls settle, even if that connection has already dropped, and
      // then refuses to reconnect ("already connected") forever. The check (one INFO per
      // connect) is tied to its connection. SETINFO itself is not needed.
      enableReadyCheck: true,
      disableClientInfo: true,
      commandTimeout: settings.commandTimeoutMs,
      connectTimeout: settings.connectTimeoutMs,
      // Keep reconnecting in the background, at most once a second, so the same store works
      // again when the server comes back.
      retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    });
    // Connection errors surface through the calls (classified with the latest of them);
    // without a listener ioredis logs them.
    created.on("error", (error: Error) => errorLog.record(error));
    created.on("ready", () => errorLog.clear());
    try {
      await created.connect();
    } catch (error) {
      created.disconnect(false);
      throw await explainConnectFailure(error, errorLog, settings);
    }
    return created;
  };

  return {
    backend: "redis",
    capabilities: { durable: true, shared: true, oneRoundTrip: true },
    location:
      options.url === undefined ? "redis (a client passed by the caller)" : redactUrl(options.url),

    async init() {
      if (initialized) return true;
      const text = await loadSources();
      if (!client) {
        // A failed attempt is forgotten, so the next init tries again.
        connecting ??= connectClient().catch((error: unknown) => {
          connecting = null;
          throw error;
        });
        client = await connecting;
      }
      const redis = client;
      await checkEviction(redis, settings.allowEviction);
      defineScripts(redis, text);
      initialized = true;
      return true;
    },

    async put(records, audit) {
      const first = records[0] as PoisonRecord;
      const n = records.length;
      // KEYS: index, audit, changes, one hash per key; ARGV: token, the record as one JSON
      // argument, the storage keys, then the audit pairs if any (see put.lua).
      const keys: string[] = [indexKey, auditKey, changesKey];
      const args: string[] = [first.token, recordJson(first)];
      for (let i = 0; i < n; i++) {
        const key = (records[i] as PoisonRecord).key;
        keys.push(recordPrefix + key);
        args.push(key);
      }
      if (audit) args.push(...auditFields(audit));
      const reply = (await run("put", keys, args)) as [number, Reply[]?];
      if (reply[0] === REPLY.conflict) {
        const storageKeys = records.map((record) => record.key);
        return { ok: false, conflicts: numberedRecords(reply[1] ?? [], storageKeys, fromHash) };
      }
      const held = reply[1];
      // The common case: every key was absent and is now exactly the record sent.
      if (!held) return { ok: true, records: [...records], created: records.map(() => true) };
      const found = new Map<number, Reply[]>();
      for (let j = 0; j + 1 < held.length; j += 2)
        found.set(Number(held[j]), held[j + 1] as Reply[]);
      return {
        ok: true,
        records: records.map((record, i) => {
          const pairs = found.get(i + 1);
          return pairs ? fromHash(record.key, pairs) : record;
        }),
        created: records.map((_, i) => !found.has(i + 1)),
      };
    },

    async remove(keys, token, audit, expected) {
      // KEYS: index, audit, changes, one hash per key; ARGV: token, the storage keys, and only
      // for a forced or audited delete the change type, its time, the expected versions and the
      // audit pairs (see remove.lua).
      const redisKeys: string[] = [indexKey, auditKey, changesKey];
      const args: string[] = [token ?? ""];
      for (const key of keys) {
        redisKeys.push(recordPrefix + key);
        args.push(key);
      }
      if (audit || expected || token === null) {
        args.push(
          audit?.action === "force-delete" ? "force-deleted" : "deleted",
          audit?.at ?? "",
          ...expectedFields(expected),
          ...auditFields(audit),
        );
      }
      const reply = (await run("remove", redisKeys, args)) as [number, Reply[]];
      const found = numberedRecords(reply[1], keys, fromHash);
      return reply[0] === REPLY.conflict
        ? { ok: false, conflicts: found }
        : { ok: true, removed: found };
    },

    async update(keys, token, patch: RecordPatch) {
      const reply = (await run(
        "update",
        [changesKey, ...keys.map(recordKey)],
        [token, recordPrefix, ...patchFields(patch)],
      )) as [1, Reply[]] | [0, Reply[], number[]];
      if (reply[0] === REPLY.ok) {
        return {
          ok: true,
          records: keys.map((key, i) => fromValues(key, reply[1][i] as Reply[])),
        };
      }
      return {
        ok: false,
        conflicts: numberedRecords(reply[1], keys, fromValues),
        missing: reply[2].map((i) => keys[i - 1] as string),
      };
    },

    getToken(key) {
      // Not async: the most frequent call saves a promise and a hop.
      try {
        return guard(ready().hget(recordPrefix + key, "token"));
      } catch (error) {
        return Promise.reject(error);
      }
    },

    async get(key) {
      const hash = await guard(ready().hgetall(recordKey(key)));
      if (Object.keys(hash).length === 0) return null;
      return fromColumns(key, columnsOf(hash));
    },

    async list({ prefix: keyPrefix, after, limit }) {
      const prefixBytes = Buffer.from(keyPrefix, "utf8");
      const afterBytes = after === null ? null : Buffer.from(after, "utf8");
      // A cursor below the prefix (from another listing) must not widen the range.
      const min =
        afterBytes && Buffer.compare(afterBytes, prefixBytes) >= 0
          ? Buffer.concat([Buffer.from("("), afterBytes])
          : Buffer.concat([Buffer.from("["), prefixBytes]);
      const upper = prefixUpperBound(prefixBytes);
      const max = upper ? Buffer.concat([Buffer.from("("), upper]) : Buffer.from("+");
      const reply = (await run(
        "list",
        [indexKey],
        [min, max, String(limit), recordPrefix],
      )) as Reply[];
      const out: PoisonRecord[] = [];
      for (let i = 0; i < reply.length; i += 2) {
        out.push(fromHash(reply[i] as string, reply[i + 1] as Reply[]));
      }
      return out;
    },

    async audit({ prefix: keyPrefix, key, before, limit }) {
      if (before !== null && !/^\d+-\d+$/.test(before)) return [];
      const reply = (await run(
        "audit",
        [auditKey],
        [before === null ? "+" : `(${before}`, String(limit), keyPrefix, key ?? ""],
      )) as Reply[];
      const out: AuditEntry[] = [];
      for (let i = 0; i < reply.length; i += 2) {
        out.push(fromStreamEntry(reply[i] as string, reply[i + 1] as Reply[]));
      }
      return out;
    },

    watch: (query) => watchChanges(query),

    async close() {
      if (client && ownsClient) {
        const closing = client;
        client = null;
        connecting = null;
        // Resolve once the socket is really closed, not when QUIT is answered: close() promises
        // that the connection is released.
        const ended = new Promise<void>((resolve) => closing.once("end", () => resolve()));
        try {
          await closing.quit();
        } catch {
          // Between reconnect attempts there is no socket: QUIT fails at once (no offline queue).
          closing.disconnect(false);
        }
        // There disconnect() only cancels the next attempt and never emits "end" (ioredis 5):
        // nothing is left to wait for.
        if (closing.status !== "end" && closing.status !== "reconnecting") await ended;
      }
    },
  };
}

function parseOptions(options: RedisDriverOptions) {
  let keyPrefix = options.keyPrefix;
  let allowEviction = options.allowEviction;
  let url = options.url ?? "redis://127.0.0.1:6379";
  const redis: RedisOptions = {};
  let tls: TlsSources | null = null;
  let host = "127.0.0.1";
  let port = 6379;
  if (options.url === undefined) tls = redisTlsSources(null, options.tls);
  if (options.url !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new InvalidArgumentError("url", "not a valid redis:// URL");
    }
    tls = redisTlsSources(parsed, options.tls);
    host = parsed.hostname.replace(/^\[(.*)\]$/, "$1") || host;
    port = parsed.port ? Number(parsed.port) : port;
    const fromUrl = parsed.searchParams.get("keyPrefix");
    if (fromUrl !== null && keyPrefix === undefined) keyPrefix = fromUrl;
    parsed.searchParams.delete("keyPrefix");
    const eviction = parsed.searchParams.get("allowEviction");
    if (eviction !== null && allowEviction === undefined) {
      if (eviction !== "true" && eviction !== "false")
        throw new InvalidArgumentError("url", "?allowEviction must be true or false");
      allowEviction = eviction === "true";
    }
    parsed.searchParams.delete("allowEviction");
    url = parsed.toString();
  }
  keyPrefix ??= DEFAULT_REDIS_KEY_PREFIX;
  if (typeof keyPrefix !== "string" || keyPrefix.includes("\u0000")) {
    throw new InvalidArgumentError("keyPrefix", "must be a string without NUL characters");
  }
  return {
    url,
    keyPrefix,
    redis,
    tls,
    host,
    port,
    commandTimeoutMs: checkDuration("commandTimeoutMs", options.commandTimeoutMs, 4000),
    connectTimeoutMs: checkDuration("connectTimeoutMs", options.connectTimeoutMs, 4000),
    allowEviction: allowEviction === true,
  };
}

/** Policies that never evict a key without a TTL (poison keys have none). */
const SAFE_EVICTION = /^(noeviction|volatile-[a-z]+)$/;

/**
 * Refuse a server that may evict poison keys to make room (`allkeys-*`): an acknowledged key
 * would vanish silently and free its resource. The policy covers every key of the store alike
 * (records, index, audit and change streams): none has a TTL, so `volatile-*` never takes them. Read from INFO, which managed Redis services
 * keep even where CONFIG is disabled.
 */
async function checkEviction(redis: Redis, allowed: boolean): Promise<void> {
  if (allowed) return;
  const info = (await redis.info("memory")) as string;
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  if (policy === undefined || SAFE_EVICTION.test(policy)) return;
  throw new BackendConfigurationError(
    "redis",
    "maxmemory-policy",
    `the server's maxmemory-policy is ${policy}, which evicts keys without a TTL when memory runs out: an acknowledged poison key could vanish and free its resource. Set maxmemory-policy to noeviction (or a volatile-* policy) on this server, or accept the risk with ?allowEviction=true (allowEviction: true)`,
  );
}

/** The record as put.lua's one argument: a JSON array of its hash field/value pairs, absent
 *  optional fields left out (what the hash then holds: one field per column). */
function recordJson(record: PoisonRecord): string {
  const columns = toColumns(record);
  const out: string[] = [];
  for (const column of COLUMNS) {
    const value = columns[column];
    if (value !== null && value !== undefined) out.push(column, String(value));
  }
  return JSON.stringify(out);
}

function patchFields(patch: RecordPatch): string[] {
  const out = ["updated_at", patch.updatedAt];
  if (patch.state !== undefined) out.push("state", patch.state);
  if (patch.error !== undefined) out.push("error", JSON.stringify(patch.error));
  if (patch.heartbeatAt !== undefined) out.push("heartbeat_at", patch.heartbeatAt);
  if (patch.heartbeatIntervalMs !== undefined)
    out.push("heartbeat_interval_ms", String(patch.heartbeatIntervalMs));
  return out;
}

/** The expected version of each key for a compare-and-delete: five values per key (present,
 *  token, state, updated_at, heartbeat_at), see remove.lua. */
function expectedFields(expected: readonly (PoisonRecord | null)[] | undefined): string[] {
  if (!expected) return ["0"];
  const out = [String(expected.length * 5)];
  for (const record of expected) {
    if (!record) out.push("", "", "", "", "");
    else out.push("1", record.token, record.state, record.updatedAt, record.heartbeatAt ?? "");
  }
  return out;
}

function auditFields(audit: AuditIntent | undefined): string[] {
  if (!audit) return [];
  const out = [
    "at",
    audit.at,
    "action",
    audit.action,
    "actor",
    audit.actor,
    "reason",
    audit.reason,
  ];
  if (audit.token !== undefined) out.push("token", audit.token);
  if (audit.evenIfAlive) out.push("evenIfAlive", "1");
  return out;
}

function pairs(flat: readonly Reply[]): Map<string, string> {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(String(flat[i]), String(flat[i + 1]));
  return map;
}

/** Hash fields into columns; a field missing from a hand-written hash reads conservatively. */
function columnsOf(hash: Record<string, string> | Map<string, string>): RecordColumns {
  const get = (name: string): string | null =>
    (hash instanceof Map ? hash.get(name) : hash[name]) ?? null;
  return {
    token: get("token") ?? "",
    state: get("state") ?? "poisoned",
    created_at: get("created_at") ?? "",
    updated_at: get("updated_at") ?? get("created_at") ?? "",
    heartbeat_at: get("heartbeat_at"),
    heartbeat_interval_ms: get("heartbeat_interval_ms"),
    operation: get("operation"),
    owner: get("owner"),
    error: get("error"),
    data: get("data"),
  };
}

/** A record from its hash's field/value pairs (HGETALL): scripts answer records this way. Read
 *  by {@link columnsOf}, from a plain object (no Map built). */
function fromHash(key: string, flat: readonly Reply[]): PoisonRecord {
  const hash: Record<string, string> = Object.create(null);
  for (let i = 0; i + 1 < flat.length; i += 2) hash[String(flat[i])] = String(flat[i + 1]);
  return fromColumns(key, columnsOf(hash));
}

/** A record as the scripts answer it: the HMGET of {@link COLUMNS}, in that order (null for a
 *  field not stored). Read by {@link columnsOf}. */
function fromValues(key: string, values: readonly Reply[]): PoisonRecord {
  const hash: Record<string, string> = Object.create(null);
  COLUMNS.forEach((column, i) => {
    const value = values[i];
    if (value !== null && value !== undefined) hash[column] = String(value);
  });
  return fromColumns(key, columnsOf(hash));
}

/** `{i, record, …}` as the scripts answer several records: a 1-based index into `keys`, then
 *  the record in the form `decode` reads. */
function numberedRecords(
  flat: readonly Reply[],
  keys: readonly string[],
  decode: (key: string, reply: readonly Reply[]) => PoisonRecord,
): PoisonRecord[] {
  const out: PoisonRecord[] = [];
  for (let j = 0; j + 1 < flat.length; j += 2) {
    const key = keys[Number(flat[j]) - 1];
    if (key !== undefined) out.push(decode(key, flat[j + 1] as Reply[]));
  }
  return out;
}

function fromStreamEntry(id: string, flat: readonly Reply[]): AuditEntry {
  const fields = pairs(flat);
  const recordFieldsOf = new Map<string, string>();
  for (const [name, value] of fields) {
    if (name.startsWith("r:")) recordFieldsOf.set(name.slice(2), value);
  }
  const key = fields.get("key") ?? "";
  const columns: AuditColumns = {
    at: fields.get("at") ?? "",
    action: fields.get("action") ?? "",
    actor: fields.get("actor") ?? "",
    reason: fields.get("reason") ?? "",
    token: fields.get("token") ?? null,
    record: null,
  };
  // The removed record is stored as hash fields, not JSON: `record` is filled from them.
  const entry = fromAuditColumns(id, key, columns);
  if (fields.get("evenIfAlive") === "1") entry.evenIfAlive = true;
  if (recordFieldsOf.size > 0) entry.record = fromColumns(key, columnsOf(recordFieldsOf));
  return entry;
}
