/**
 * `store.watch()` (SPEC §7, Observability): a live feed of changes to poison keys.
 *
 * Two sources, one shape. A driver with a native change feed (`PoisonDriver.watch`, contract
 * below) is asked directly and resumed from the last position it reported after a failure. Every
 * other driver is watched by the runtime's polling fallback: successive listings are compared,
 * with a bounded cost (docs/OBSERVABILITY.md has the delays and costs of each backend).
 *
 * What a consumer may rely on, whatever the source:
 * - Once `ready` resolved true, every change committed afterwards under the prefix is delivered,
 *   or a `resync` says some may have been missed (then re-list: `listPoisons`).
 * - Events of one key arrive in the order of the changes.
 * - Aborting the signal, calling `close()`, leaving a `for await` loop, or closing the store ends
 *   the iteration and releases the watch's timers and connections.
 */
import { setMaxListeners } from "node:events";
import type { PoisonStoreClient } from "./contract.js";
import type { PoisonDriver } from "./driver.js";
import { sameVersion } from "./driver.js";
import {
  BackendConfigurationError,
  BackendUnavailableError,
  InvalidArgumentError,
  PoisonStoreError,
  StoreClosedError,
} from "./errors.js";
import { compareKeys } from "./keys.js";
import type { AuditEntry, PoisonRecord } from "./records.js";
import { backoffDelay, sleep } from "./retry.js";
import {
  checkCount,
  checkDuration,
  checkObject,
  checkString,
  MAX_PAGE_SIZE,
} from "./validation.js";

/** What happened to a key. `resync`: changes may have been missed; re-list what you need. */
export type ChangeType = "put" | "poisoned" | "touched" | "deleted" | "force-deleted" | "resync";

/** One change, as `store.watch()` yields them. */
export interface ChangeEvent {
  type: ChangeType;
  /** The key (without the namespace); `""` on `resync`. */
  key: string;
  /**
   * The record after the change (`put`, `poisoned`, `touched`); the record removed on
   * `force-deleted` (as its audit entry kept it) and on `deleted` when the source knows it (a
   * native feed does; the polling fallback does not). Absent on `resync`.
   */
  record?: PoisonRecord;
  /** ISO-8601 UTC: when the change was made, by the writer's clock (the record's `updatedAt`,
   *  the audit entry's time), or, when the source cannot tell, when the watch saw it. */
  at: string;
}

/** Options of `store.watch()`. */
export interface WatchOptions {
  /** Only keys that start with this string (matched literally). Default: every key. */
  prefix?: string;
  /** Aborting it ends the iteration and releases everything the watch holds. */
  signal?: AbortSignal;
  /** Polling fallback only: time between two listings, 1..2³¹−1 ms. Default 2000. */
  pollIntervalMs?: number;
  /** Polling fallback only: keys compared per poll (1..10,000,000). Past it, keys after the
   *  first `maxKeys` (in key order) are not watched and every poll that hits the bound yields
   *  `resync`. Default 10,000. */
  maxKeys?: number;
  /** Called with each failure the watch recovers from by itself (it retries, with backoff, until
   *  the backend answers again). A misconfigured backend is not retried: the iteration rejects. */
  onError?: (error: PoisonStoreError) => void;
}

/** What `store.watch()` returns: iterate it once (one consumer). */
export interface ChangeStream extends AsyncIterable<ChangeEvent> {
  /** Resolves true once the watch is established (the native feed subscribed, or the polling
   *  fallback's first listing taken): every change from then on is delivered. Resolves false if
   *  the watch ended first. Never rejects. */
  readonly ready: Promise<boolean>;
  /** `native`: the driver's own change feed; `polling`: the runtime compares listings. */
  readonly source: "native" | "polling";
  /** End the watch now (as aborting its signal does). */
  close(): void;
}

// ---- the driver contract ---------------------------------------------------------------------

/** What the runtime asks a driver's native watch for. */
export interface DriverWatchQuery {
  /** Storage-key prefix (namespace included), matched literally. */
  prefix: string;
  /** Resume just after this position (from an earlier event of this driver), or null: from now. */
  from: string | null;
  /** Aborted when the watch ends: the driver ends its iteration and releases its connection. */
  signal: AbortSignal;
}

/** A change as a driver's native feed reports it. Keys and records carry storage keys. */
export interface DriverChange {
  type: Exclude<ChangeType, "resync">;
  key: string;
  /** After the change; for deletes, the record removed when the feed knows it. */
  record?: PoisonRecord;
  /** When the change was made, if the feed knows it (else the runtime uses the record's
   *  `updatedAt`, or the time it saw the change). */
  at?: string;
  /** Opaque: passing it back as `from` resumes just after this change. */
  position: string;
}

/**
 * What a native watch yields. Its first event is `ready` (subscribed: every change committed
 * after `position` follows, none before) or `resync` (it could not resume from `from`, for
 * example the history was compacted; it now watches from `position`, and the consumer re-lists).
 */
export type DriverWatchEvent =
  | DriverChange
  | { type: "ready"; position: string }
  | { type: "resync"; position: string };

/**
 * The optional native change feed of a driver (`PoisonDriver.watch`). The contract, which the
 * runtime relies on and tests/conformance checks:
 *
 * 1. Called after `init({ create: false })` resolved. It yields `ready` (or `resync`) once
 *    subscribed; **no change committed after that position may be lost**: subscribe first, then
 *    report the position (etcd: the revision of the subscription; a change log: its last id).
 * 2. Changes under `prefix`, in commit order per key (globally when the backend can), each with
 *    a `position` that resumes just after it. `put` for a new record, `poisoned` when the state
 *    became `poisoned`, `touched` for any other update, `deleted` / `force-deleted` (an
 *    operator's forced delete: the write carried an audit intent `force-delete`).
 * 3. Aborting `signal` ends the iteration promptly (return, do not throw) and releases the
 *    connection. A failure (disconnect, server restart) throws: the runtime calls `watch` again
 *    with the last position it saw, after a backoff.
 * 4. Called with a `from` it can no longer resume from, it yields `resync` first, never a
 *    silent gap. A position is only meaningful to the driver that produced it.
 */
export type DriverWatch = (query: DriverWatchQuery) => AsyncIterable<DriverWatchEvent>;

// ---- the runtime ---------------------------------------------------------------------------

export const DEFAULT_WATCH_POLL_INTERVAL_MS = 2000;
export const DEFAULT_WATCH_MAX_KEYS = 10_000;
const MAX_WATCH_KEYS = 10_000_000;
/** Events held for a consumer that does not keep up; past it they collapse into one `resync`. */
export const MAX_QUEUED_CHANGES = 10_000;
/** Audit entries read (newest first) to tell force-deletes from deletes, per poll at most. */
const AUDIT_PAGE = 100;
const MAX_AUDIT_PAGES = 10;
/** Reconnection backoff of a native feed. */
const RECONNECT = { maxAttempts: Number.POSITIVE_INFINITY, minDelayMs: 100, maxDelayMs: 10_000 };

/** What the store runtime hands the watch. */
export interface WatchSource {
  backend: string;
  namespace: string;
  driver: PoisonDriver & { watch?: DriverWatch };
  /** The public listing and audit log: the polling fallback reads through them (bounded by the
   *  store's timeout, observed like any call). */
  store: Pick<PoisonStoreClient, "listPoisons" | "auditLog">;
  /** Resolves once the driver may be used for reads (init, creating nothing). */
  prepare(): Promise<unknown>;
  clock: () => Date;
}

/** One per store: its watches, and the polling loops they share. */
export class WatchHub {
  readonly #source: WatchSource;
  /** Aborted when the store closes. */
  readonly #closed = new AbortController();
  /** Polling loops by prefix and settings: concurrent watches of the same prefix share one. */
  readonly #pollers = new Map<string, Poller>();

  constructor(source: WatchSource) {
    this.#source = source;
    // One listener per open watch (the admin service opens up to 100): not a leak.
    setMaxListeners(0, this.#closed.signal);
  }

  /** A new watch. Invalid options and a closed store make its iteration reject. */
  open(options: WatchOptions | undefined, storeClosed: boolean): ChangeStream {
    const source = this.#source.driver.watch ? "native" : "polling";
    let settings: CheckedWatchOptions;
    try {
      settings = checkWatchOptions(options);
    } catch (error) {
      return failedStream(error, source);
    }
    if (storeClosed || this.#closed.signal.aborted)
      return failedStream(new StoreClosedError(), source);
    const watch = new Watch(source, [settings.signal, this.#closed.signal], settings.onError);
    if (watch.ended) return watch;
    if (this.#source.driver.watch) {
      void this.#runNative(watch, this.#source.driver.watch.bind(this.#source.driver), settings);
    } else {
      this.#joinPoller(watch, settings);
    }
    return watch;
  }

  /** The store closes: every watch ends, every poller stops. */
  close(): void {
    this.#closed.abort();
    for (const poller of this.#pollers.values()) poller.stop();
    this.#pollers.clear();
  }

  async #runNative(watch: Watch, feed: DriverWatch, settings: CheckedWatchOptions): Promise<void> {
    const { namespace, clock } = this.#source;
    const storagePrefix = namespace + settings.prefix;
    let position: string | null = null;
    let failures = 0;
    while (!watch.ended) {
      try {
        await this.#source.prepare();
        for await (const event of feed({
          prefix: storagePrefix,
          from: position,
          signal: watch.signal,
        })) {
          if (watch.ended) break;
          position = event.position;
          failures = 0;
          if (event.type === "ready") {
            watch.established();
            continue;
          }
          if (event.type === "resync") {
            watch.push({ type: "resync", key: "", at: clock().toISOString() });
            watch.established();
            continue;
          }
          if (!event.key.startsWith(storagePrefix)) continue;
          const change: ChangeEvent = {
            type: event.type,
            key: event.key.slice(namespace.length),
            at: event.at ?? event.record?.updatedAt ?? clock().toISOString(),
          };
          if (event.record) change.record = { ...event.record, key: change.key };
          watch.push(change);
        }
        if (watch.ended) return;
        throw new BackendUnavailableError(this.#source.backend, "the change feed ended");
      } catch (error) {
        if (watch.ended) return;
        const typed = typedWatchError(this.#source.backend, error);
        if (isFatal(typed)) return watch.fail(typed);
        watch.report(typed);
        failures++;
        if (!(await sleep(backoffDelay(RECONNECT, failures), watch.signal))) return;
      }
    }
  }

  #joinPoller(watch: Watch, settings: CheckedWatchOptions): void {
    const id = JSON.stringify([settings.prefix, settings.pollIntervalMs, settings.maxKeys]);
    let poller = this.#pollers.get(id);
    if (!poller) {
      poller = new Poller(this.#source, settings, () => this.#pollers.delete(id));
      this.#pollers.set(id, poller);
    }
    poller.add(watch);
  }
}

interface CheckedWatchOptions {
  prefix: string;
  signal: AbortSignal | undefined;
  pollIntervalMs: number;
  maxKeys: number;
  onError: ((error: PoisonStoreError) => void) | undefined;
}

function checkWatchOptions(options: WatchOptions | undefined): CheckedWatchOptions {
  const checked = checkObject("options", options, true) ?? {};
  const prefix =
    checked.prefix === undefined ? "" : checkString("options.prefix", checked.prefix, 1024, true);
  const signal = checked.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new InvalidArgumentError("options.signal", "must be an AbortSignal");
  const maxKeys = checkCount(
    "options.maxKeys",
    checked.maxKeys,
    DEFAULT_WATCH_MAX_KEYS,
    MAX_WATCH_KEYS,
  );
  const onError = checked.onError;
  if (onError !== undefined && typeof onError !== "function")
    throw new InvalidArgumentError("options.onError", "must be a function");
  return {
    prefix,
    signal: signal as AbortSignal | undefined,
    pollIntervalMs: checkDuration(
      "options.pollIntervalMs",
      checked.pollIntervalMs,
      DEFAULT_WATCH_POLL_INTERVAL_MS,
    ),
    maxKeys,
    onError: onError as CheckedWatchOptions["onError"],
  };
}

/** Errors retrying cannot fix end the watch; the rest are reported and retried. */
function isFatal(error: PoisonStoreError): boolean {
  return (
    error instanceof BackendConfigurationError ||
    error instanceof StoreClosedError ||
    error instanceof InvalidArgumentError
  );
}

function typedWatchError(backend: string, error: unknown): PoisonStoreError {
  if (error instanceof PoisonStoreError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new BackendUnavailableError(backend, `the watch failed: ${message}`, error);
}

/** A stream that rejects its first `next()` with `error`. */
function failedStream(error: unknown, source: "native" | "polling"): ChangeStream {
  const watch = new Watch(source, [], undefined);
  watch.fail(error);
  return watch;
}

/**
 * One watch: a bounded queue between its source and its consumer. Ends on the first of its
 * signals, `close()`, `return()` (a `for await` left early), or a fatal failure.
 */
class Watch implements ChangeStream, AsyncIterator<ChangeEvent> {
  readonly source: "native" | "polling";
  readonly ready: Promise<boolean>;
  readonly #controller = new AbortController();
  readonly #onError: ((error: PoisonStoreError) => void) | undefined;
  readonly #queue: ChangeEvent[] = [];
  #failure: { error: unknown } | null = null;
  #wake: (() => void) | null = null;
  #settleReady: (established: boolean) => void = () => {};
  readonly #cleanups: Array<() => void> = [];

  constructor(
    source: "native" | "polling",
    signals: ReadonlyArray<AbortSignal | undefined>,
    onError: ((error: PoisonStoreError) => void) | undefined,
  ) {
    this.source = source;
    this.#onError = onError;
    this.ready = new Promise((resolve) => {
      this.#settleReady = resolve;
    });
    for (const signal of signals) {
      if (!signal) continue;
      if (signal.aborted) {
        this.close();
        break;
      }
      const onAbort = () => this.close();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#cleanups.push(() => signal.removeEventListener("abort", onAbort));
    }
  }

  /** Aborted when the watch ends: its source stops. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get ended(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Run `cleanup` when the watch ends (at once if it has). */
  onEnd(cleanup: () => void): void {
    if (this.ended) cleanup();
    else this.#cleanups.push(cleanup);
  }

  established(): void {
    this.#settleReady(true);
  }

  push(event: ChangeEvent): void {
    if (this.ended) return;
    if (this.#queue.length >= MAX_QUEUED_CHANGES) {
      // The consumer fell behind: what it missed is unknown to it, so it must re-list.
      this.#queue.length = 0;
      this.#queue.push({ type: "resync", key: "", at: event.at });
    } else {
      this.#queue.push(event);
    }
    this.#wakeUp();
  }

  report(error: PoisonStoreError): void {
    try {
      this.#onError?.(error);
    } catch {
      // An observer must not stop the watch.
    }
  }

  /** End with an error: the consumer's next `next()` rejects with it (after queued events). */
  fail(error: unknown): void {
    if (this.ended) return;
    this.#failure = { error };
    this.close();
  }

  close(): void {
    if (this.#controller.signal.aborted) return;
    this.#controller.abort();
    this.#settleReady(false);
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
    this.#wakeUp();
  }

  [Symbol.asyncIterator](): AsyncIterator<ChangeEvent> {
    return this;
  }

  async next(): Promise<IteratorResult<ChangeEvent>> {
    for (;;) {
      const event = this.#queue.shift();
      if (event) return { value: event, done: false };
      if (this.ended) {
        const failure = this.#failure;
        this.#failure = null;
        if (failure) throw failure.error;
        return { value: undefined, done: true };
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = null;
    }
  }

  async return(): Promise<IteratorResult<ChangeEvent>> {
    this.#queue.length = 0;
    this.#failure = null;
    this.close();
    return { value: undefined, done: true };
  }

  #wakeUp(): void {
    this.#wake?.();
  }
}

// ---- the polling fallback ------------------------------------------------------------------

/** What a poll remembers of a record: enough to tell what changed, not its data. */
interface Seen {
  token: string;
  state: string;
  createdAt: string;
  updatedAt: string;
  heartbeatAt: string | undefined;
}

function seenOf(record: PoisonRecord): Seen {
  return {
    token: record.token,
    state: record.state,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    heartbeatAt: record.heartbeatAt,
  };
}

/** A record that is gone (or replaced): which incarnation, to find its force-delete. */
interface Gone {
  key: string;
  seen: Seen;
}

/**
 * The polling fallback for one prefix: lists up to `maxKeys` keys every `pollIntervalMs` and
 * compares with the previous listing. Shared by every watch of the same prefix and settings;
 * runs only while one is open. A failed poll keeps the previous listing, so the next successful
 * one reports the net change.
 */
class Poller {
  readonly #source: WatchSource;
  readonly #settings: CheckedWatchOptions;
  readonly #onIdle: () => void;
  readonly #watches = new Set<Watch>();
  #seen: Map<string, Seen> | null = null;
  /** The newest audit entry id read, to know where to stop reading it next time. */
  #auditMark: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  #polling = false;
  #stopped = false;

  constructor(source: WatchSource, settings: CheckedWatchOptions, onIdle: () => void) {
    this.#source = source;
    this.#settings = settings;
    this.#onIdle = onIdle;
  }

  add(watch: Watch): void {
    this.#watches.add(watch);
    watch.onEnd(() => this.#remove(watch));
    if (watch.ended) return;
    // A poller that already has a listing serves it as the newcomer's starting point.
    if (this.#seen !== null) watch.established();
    this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #remove(watch: Watch): void {
    this.#watches.delete(watch);
    if (this.#watches.size === 0) {
      this.stop();
      this.#onIdle();
    }
  }

  #schedule(delayMs: number): void {
    if (this.#timer || this.#polling || this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#poll();
    }, delayMs);
  }

  async #poll(): Promise<void> {
    this.#polling = true;
    try {
      const events = await this.#diff();
      for (const watch of this.#watches) {
        for (const event of events) watch.push(event);
        watch.established();
      }
    } catch (error) {
      const typed = typedWatchError(this.#source.backend, error);
      for (const watch of [...this.#watches]) {
        if (isFatal(typed)) watch.fail(typed);
        else watch.report(typed);
      }
    } finally {
      this.#polling = false;
      if (this.#watches.size > 0) this.#schedule(this.#settings.pollIntervalMs);
    }
  }

  async #diff(): Promise<ChangeEvent[]> {
    const { store, clock } = this.#source;
    const { prefix, maxKeys } = this.#settings;
    const baseline = this.#seen === null;
    // The audit mark is taken before the listing: a force-delete between the two is then read
    // (as newer than the mark) when its key is found gone.
    const mark = baseline ? await this.#newestAuditId() : null;
    const current = new Map<string, Seen>();
    const records = new Map<string, PoisonRecord>();
    let cursor: string | null = null;
    let truncated = false;
    do {
      const limit = Math.min(MAX_PAGE_SIZE, maxKeys - current.size);
      if (limit <= 0) {
        truncated = true;
        break;
      }
      const page = await store.listPoisons({ prefix, limit, cursor });
      for (const record of page.records) {
        current.set(record.key, seenOf(record));
        records.set(record.key, record);
      }
      cursor = page.cursor;
    } while (cursor !== null);
    const seenAt = clock().toISOString();

    const previous = this.#seen;
    if (previous === null) {
      this.#seen = current;
      this.#auditMark = mark;
      return [];
    }
    const lastListed = lastKey(current);
    const watched = (key: string) =>
      !truncated || (lastListed !== null && compareKeys(key, lastListed) <= 0);

    const gone: Gone[] = [];
    for (const [key, seen] of previous) {
      const now = current.get(key);
      if (now ? now.token !== seen.token || now.createdAt !== seen.createdAt : watched(key))
        gone.push({ key, seen });
    }
    const removal =
      gone.length > 0 ? await this.#classify(gone) : { forced: new Map(), sure: true };

    // Events in key order; a key deleted and put again yields its removal first.
    const events: ChangeEvent[] = [];
    const keys = [...new Set([...previous.keys(), ...current.keys()])].sort(compareKeys);
    const goneKeys = new Set(gone.map((g) => g.key));
    for (const key of keys) {
      if (goneKeys.has(key)) {
        const entry = removal.forced.get(key);
        events.push(
          entry
            ? {
                type: "force-deleted",
                key,
                at: entry.at,
                ...(entry.record ? { record: entry.record } : {}),
              }
            : { type: "deleted", key, at: seenAt },
        );
      }
      const now = records.get(key);
      if (!now) continue;
      const before = goneKeys.has(key) ? undefined : previous.get(key);
      let type: ChangeType | null = null;
      if (!before) type = "put";
      else if (before.state !== "poisoned" && now.state === "poisoned") type = "poisoned";
      else if (!sameVersion(seenAsRecord(before, key), now)) type = "touched";
      if (type) events.push({ type, key, record: now, at: now.updatedAt });
    }
    if (truncated || !removal.sure) events.push({ type: "resync", key: "", at: seenAt });
    this.#seen = current;
    return events;
  }

  async #newestAuditId(): Promise<string | null> {
    const { entries } = await this.#source.store.auditLog({ limit: 1 });
    return entries[0]?.id ?? null;
  }

  /**
   * Which of the vanished records an operator force-deleted: their audit entries, read newest
   * first back to the newest entry of the previous read (bounded). `sure` is false when the
   * bound stopped the reading before every record was accounted for.
   */
  async #classify(gone: Gone[]): Promise<{ forced: Map<string, AuditEntry>; sure: boolean }> {
    const forced = new Map<string, AuditEntry>();
    const open = new Map(gone.map((g) => [g.key, g.seen]));
    let cursor: string | null = null;
    let newest: string | null = null;
    let reachedMark = false;
    for (let page = 0; page < MAX_AUDIT_PAGES && open.size > 0; page++) {
      const result = await this.#source.store.auditLog({ limit: AUDIT_PAGE, cursor });
      for (const entry of result.entries) {
        newest ??= entry.id;
        if (entry.id === this.#auditMark) {
          reachedMark = true;
          break;
        }
        const seen = open.get(entry.key);
        if (
          seen &&
          entry.action === "force-delete" &&
          entry.record?.token === seen.token &&
          entry.record.createdAt === seen.createdAt
        ) {
          forced.set(entry.key, entry);
          open.delete(entry.key);
        }
      }
      cursor = result.cursor;
      if (reachedMark || cursor === null) {
        reachedMark = true;
        break;
      }
    }
    if (newest !== null) this.#auditMark = newest;
    return { forced, sure: open.size === 0 || reachedMark };
  }
}

function seenAsRecord(seen: Seen, key: string): PoisonRecord {
  const record: PoisonRecord = {
    key,
    token: seen.token,
    state: seen.state === "poisoned" ? "poisoned" : "in-progress",
    createdAt: seen.createdAt,
    updatedAt: seen.updatedAt,
  };
  if (seen.heartbeatAt !== undefined) record.heartbeatAt = seen.heartbeatAt;
  return record;
}

function lastKey(map: Map<string, Seen>): string | null {
  let last: string | null = null;
  for (const key of map.keys()) last = key;
  return last;
}
