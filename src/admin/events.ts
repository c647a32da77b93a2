/**
 * Changes for `GET /api/v1/events`. A store with `watch()` (SPEC §7, Observability) is asked
 * directly; any other store is polled: one loop per admin service, shared by every open stream,
 * running only while a stream is open. Its cost is bounded: each poll lists at most `maxKeys`
 * keys (pages of 1000, so at most ⌈maxKeys / 1000⌉ calls), once every `intervalMs`.
 */
import type { PoisonStoreClient } from "../core/contract.js";
import type { PoisonRecord } from "../core/records.js";

export type ChangeType = "put" | "poisoned" | "touched" | "deleted" | "force-deleted" | "resync";

/** One change, as `store.watch()` yields them. `resync`: changes may have been missed; reload. */
export interface ChangeEvent {
  type: ChangeType;
  key: string;
  record?: PoisonRecord;
  /** ISO-8601, when the change was seen. */
  at: string;
}

/** The `watch()` of SPEC §7, as far as the admin service uses it. */
export interface WatchableStore {
  watch(options: { prefix?: string; signal?: AbortSignal }): AsyncIterable<ChangeEvent>;
}

export function canWatch(store: object): store is WatchableStore {
  return typeof (store as { watch?: unknown }).watch === "function";
}

/** Where the event stream gets its changes. */
export interface ChangeFeed {
  /** Changes of keys under `prefix`, until `signal` aborts. */
  subscribe(prefix: string, signal: AbortSignal): AsyncIterable<ChangeEvent>;
  close(): void;
}

export interface PollingOptions {
  /** Time between two polls. Default 2000 ms. */
  intervalMs?: number;
  /** Keys compared per poll; past it, changes of the keys after the first `maxKeys` (in key
   *  order) are not seen, and each poll that hits the bound sends `resync`. Default 10,000. */
  maxKeys?: number;
}

export const DEFAULT_POLL_INTERVAL_MS = 2000;
export const DEFAULT_POLL_MAX_KEYS = 10_000;
const POLL_PAGE = 1000;
/** Events queued for one slow stream before they collapse into a single `resync`. */
const MAX_QUEUED = 1000;

export function watchFeed(store: WatchableStore): ChangeFeed {
  return {
    subscribe: (prefix, signal) => store.watch({ prefix, signal }),
    close() {},
  };
}

/** What a poll remembers of a record: enough to tell what changed. */
interface Seen {
  token: string;
  state: string;
  updatedAt: string;
  heartbeatAt: string | undefined;
}

type Listener = { prefix: string; push(events: ChangeEvent[]): void };

export class PollingFeed implements ChangeFeed {
  readonly #store: PoisonStoreClient;
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  readonly #listeners = new Set<Listener>();
  #seen: Map<string, Seen> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #polling = false;
  #closed = false;

  constructor(store: PoisonStoreClient, options: PollingOptions = {}) {
    this.#store = store;
    this.#intervalMs = options.intervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.#maxKeys = options.maxKeys ?? DEFAULT_POLL_MAX_KEYS;
  }

  subscribe(prefix: string, signal: AbortSignal): AsyncIterable<ChangeEvent> {
    const queue: ChangeEvent[] = [];
    let wake: (() => void) | null = null;
    const listener: Listener = {
      prefix,
      push: (events) => {
        for (const event of events) {
          if (event.type !== "resync" && !event.key.startsWith(prefix)) continue;
          if (queue.length >= MAX_QUEUED) {
            queue.length = 0;
            queue.push({ type: "resync", key: "", at: event.at });
            break;
          }
          queue.push(event);
        }
        wake?.();
      },
    };
    const feed = this;
    return {
      async *[Symbol.asyncIterator]() {
        feed.#add(listener);
        const onAbort = () => wake?.();
        signal.addEventListener("abort", onAbort);
        try {
          while (!signal.aborted && !feed.#closed) {
            const event = queue.shift();
            if (event) {
              yield event;
              continue;
            }
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
            wake = null;
          }
        } finally {
          signal.removeEventListener("abort", onAbort);
          feed.#remove(listener);
        }
      },
    };
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    for (const listener of this.#listeners) listener.push([]);
    this.#listeners.clear();
  }

  #add(listener: Listener): void {
    this.#listeners.add(listener);
    if (this.#listeners.size === 1 && !this.#closed) this.#schedule(0);
  }

  #remove(listener: Listener): void {
    this.#listeners.delete(listener);
    if (this.#listeners.size === 0) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = null;
      // Nobody listens: the next stream starts from a fresh snapshot.
      this.#seen = null;
    }
  }

  #schedule(delayMs: number): void {
    if (this.#timer || this.#polling || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#poll();
    }, delayMs);
    this.#timer.unref();
  }

  async #poll(): Promise<void> {
    this.#polling = true;
    try {
      const events = await this.#diff();
      if (events.length > 0) for (const listener of this.#listeners) listener.push(events);
    } catch {
      // The store did not answer: keep the last snapshot and compare again next time, so the
      // changes meanwhile are reported then (as their net effect).
    } finally {
      this.#polling = false;
      if (this.#listeners.size > 0) this.#schedule(this.#intervalMs);
    }
  }

  async #diff(): Promise<ChangeEvent[]> {
    const at = new Date().toISOString();
    const current = new Map<string, Seen>();
    const records = new Map<string, PoisonRecord>();
    let cursor: string | null = null;
    let truncated = false;
    do {
      const limit = Math.min(POLL_PAGE, this.#maxKeys - current.size);
      if (limit <= 0) {
        truncated = true;
        break;
      }
      const page = await this.#store.listPoisons({ limit, cursor });
      for (const record of page.records) {
        current.set(record.key, {
          token: record.token,
          state: record.state,
          updatedAt: record.updatedAt,
          heartbeatAt: record.heartbeatAt,
        });
        records.set(record.key, record);
      }
      cursor = page.cursor;
    } while (cursor !== null);

    const previous = this.#seen;
    this.#seen = current;
    if (previous === null) return [];
    const events: ChangeEvent[] = [];
    for (const [key, now] of current) {
      const before = previous.get(key);
      const record = records.get(key);
      let type: ChangeType | null = null;
      if (!before || before.token !== now.token) type = "put";
      else if (before.state !== "poisoned" && now.state === "poisoned") type = "poisoned";
      else if (before.updatedAt !== now.updatedAt || before.heartbeatAt !== now.heartbeatAt)
        type = "touched";
      if (type) events.push(record ? { type, key, record, at } : { type, key, at });
    }
    const gone = [...previous.entries()].filter(
      ([key]) => !current.has(key) && !(truncated && key > lastKey(current)),
    );
    if (gone.length > 0) {
      const forced = await this.#forceDeleted(gone);
      for (const [key] of gone)
        events.push({ type: forced.has(key) ? "force-deleted" : "deleted", key, at });
    }
    if (truncated) events.push({ type: "resync", key: "", at });
    return events;
  }

  /** Which of the vanished keys an operator force-deleted: the newest audit entries name them,
   *  with the record last seen (same token, not older than the last update seen). */
  async #forceDeleted(gone: Array<[string, Seen]>): Promise<Set<string>> {
    const forced = new Set<string>();
    try {
      const { entries } = await this.#store.auditLog({ limit: 100 });
      const lastSeen = new Map(gone);
      for (const entry of entries) {
        const seen = lastSeen.get(entry.key);
        if (
          entry.action === "force-delete" &&
          seen &&
          entry.record?.token === seen.token &&
          entry.at >= seen.updatedAt
        )
          forced.add(entry.key);
      }
    } catch {
      // The audit log did not answer: report them as plain deletions.
    }
    return forced;
  }
}

function lastKey(map: Map<string, Seen>): string {
  let last = "";
  for (const key of map.keys()) last = key;
  return last;
}

/**
 * The Server-Sent Events body: a comment at once (so proxies pass the headers on), then one
 * `data:` line of JSON per change, and a comment every `keepAliveMs` so idle connections are not
 * cut. Ends when `signal` aborts or the reader cancels; `onEnd` is called once either way.
 */
export function eventStream(
  feed: ChangeFeed,
  prefix: string,
  signal: AbortSignal,
  keepAliveMs: number,
  onEnd: () => void = () => {},
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  let keepAlive: NodeJS.Timeout | null = null;
  let id = 0;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (text: string) => {
        try {
          controller.enqueue(encoder.encode(text));
        } catch {
          stop.abort();
        }
      };
      send("retry: 3000\n: connected\n\n");
      keepAlive = setInterval(() => send(": keep-alive\n\n"), keepAliveMs);
      keepAlive.unref();
      void (async () => {
        try {
          for await (const event of feed.subscribe(prefix, stop.signal)) {
            if (stop.signal.aborted) break;
            send(`id: ${++id}\ndata: ${JSON.stringify(event)}\n\n`);
          }
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          send(
            `data: ${JSON.stringify({ type: "resync", key: "", at: new Date().toISOString(), error: message })}\n\n`,
          );
        } finally {
          if (keepAlive) clearInterval(keepAlive);
          signal.removeEventListener("abort", onAbort);
          onEnd();
          try {
            controller.close();
          } catch {
            // Already cancelled by the reader.
          }
        }
      })();
    },
    cancel() {
      if (keepAlive) clearInterval(keepAlive);
      stop.abort();
    },
  });
}
