/**
 * Changes for `GET /api/v1/events`, from the store's `watch()` (SPEC §7, Observability): the
 * driver's native change feed where it has one, else the store's bounded polling fallback,
 * shared by every stream of the same prefix (src/core/watch.ts, docs/OBSERVABILITY.md).
 */
import type { PoisonStoreClient } from "../core/contract.js";
import type { ChangeEvent } from "../core/watch.js";

export type { ChangeEvent, ChangeType } from "../core/watch.js";

/** Where the event stream gets its changes. */
export interface ChangeFeed {
  /** Changes of keys under `prefix`, until `signal` aborts. */
  subscribe(prefix: string, signal: AbortSignal): AsyncIterable<ChangeEvent>;
  close(): void;
}

/** The polling fallback's settings, for stores whose driver has no native change feed. */
export interface PollingOptions {
  /** Time between two polls. Default 2000 ms. */
  intervalMs?: number;
  /** Keys compared per poll; past it, changes of the keys after the first `maxKeys` (in key
   *  order) are not seen, and each poll that hits the bound sends `resync`. Default 10,000. */
  maxKeys?: number;
}

/** Every stream is one `store.watch()`, ended by its signal (the request's, or the service's
 *  close()). */
export function watchFeed(store: PoisonStoreClient, options: PollingOptions = {}): ChangeFeed {
  return {
    subscribe: (prefix, signal) =>
      store.watch({
        prefix,
        signal,
        ...(options.intervalMs === undefined ? {} : { pollIntervalMs: options.intervalMs }),
        ...(options.maxKeys === undefined ? {} : { maxKeys: options.maxKeys }),
      }),
    close() {},
  };
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
