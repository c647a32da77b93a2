/** The guard's typed events, and how they reach listeners and an optional logger. */
import { channel } from "node:diagnostics_channel";
import type { PoisonStoreClient } from "../core/contract.js";
import type { PoisonLostError } from "../core/errors.js";
import type { PoisonRecord } from "../core/records.js";
import type { RefusalReason } from "./errors.js";

interface RunFields {
  /** ISO-8601 UTC time the event was emitted. */
  at: string;
  keys: readonly string[];
  /** The run's token (null for `assertHealthy`). */
  token: string | null;
  operation: string | undefined;
}

export type GuardEvent =
  /** The keys are held (all of them), the body is about to run for the first time. `resumed`:
   *  at least one key was already held by this token (a crashed or failed earlier run). */
  | (RunFields & { type: "started"; resumed: boolean; records: readonly PoisonRecord[] })
  /** A run or `assertHealthy` was refused; nothing was written. `holders`: every refusing key's
   *  record (`holder` is the first). */
  | (RunFields & {
      type: "refused";
      key: string;
      holder: PoisonRecord;
      holders: readonly PoisonRecord[];
      reason: RefusalReason;
    })
  /** An attempt failed with an error marked `retryable`; the next attempt starts after `delayMs`. */
  | (RunFields & { type: "retried"; attempt: number; delayMs: number; error: unknown })
  /** The keys were deleted. */
  | (RunFields & {
      type: "cleaned";
      reason: "succeeded" | "error-marked-clean" | "marked-consistent";
    })
  /** The body resolved and the keys are gone; `run` resolves next. */
  | (RunFields & { type: "succeeded"; attempts: number })
  /** The run rejects with the body's error as is, without poisoning (marked `cleanPoisons`, or
   *  after `markConsistent`). */
  | (RunFields & { type: "failed"; attempts: number; error: unknown })
  /** The keys stay and were marked `poisoned` (unless `recordFailure` says why not). */
  | (RunFields & { type: "poisoned"; attempts: number; error: unknown; recordFailure?: unknown })
  /** The cleanup delete failed; the keys may still be present. */
  | (RunFields & { type: "cleanup-failed"; error: unknown })
  /** A heartbeat was written. */
  | (RunFields & { type: "heartbeat"; heartbeatAt: string })
  /** A heartbeat could not be written (the store did not answer); the run goes on. */
  | (RunFields & { type: "heartbeat-failed"; error: unknown })
  /** A key of the run was found absent (`holder` null) or held by another token: `ctx.signal`
   *  aborts with `error`, and the run rejects with it once the body settles. */
  | (RunFields & {
      type: "lost";
      key: string;
      holder: PoisonRecord | null;
      error: PoisonLostError;
    });

export type GuardEventType = GuardEvent["type"];
export type GuardEventOf<T extends GuardEventType> = Extract<GuardEvent, { type: T }>;
export type GuardListener<T extends GuardEventType = GuardEventType> = (
  event: GuardEventOf<T>,
) => void;

/** Anything with these methods, `console` included. Every method is optional. */
export interface GuardLogger {
  debug?(message: string, event: GuardEvent): void;
  info?(message: string, event: GuardEvent): void;
  warn?(message: string, event: GuardEvent): void;
  error?(message: string, event: GuardEvent): void;
}

const LEVEL: Record<GuardEventType, keyof GuardLogger> = {
  started: "info",
  refused: "warn",
  retried: "warn",
  cleaned: "debug",
  succeeded: "info",
  failed: "warn",
  poisoned: "error",
  "cleanup-failed": "error",
  heartbeat: "debug",
  "heartbeat-failed": "warn",
  lost: "error",
};

/** A listener registry. A listener or logger that throws is ignored: observers never change the
 *  outcome of a run. */
export class GuardEvents {
  readonly #listeners = new Map<GuardEventType | "*", Set<(event: GuardEvent) => void>>();
  readonly #logger: GuardLogger | undefined;

  constructor(logger: GuardLogger | undefined) {
    this.#logger = logger;
  }

  /** Listeners registered now (removed ones no longer count). */
  #count = 0;

  /** Whether an event would reach anyone: a listener or a logger. */
  get observed(): boolean {
    return this.#count > 0 || this.#logger !== undefined;
  }

  on(type: GuardEventType | "*", listener: (event: GuardEvent) => void): () => void {
    let set = this.#listeners.get(type);
    if (!set) {
      set = new Set();
      this.#listeners.set(type, set);
    }
    // The same function twice is one listener (a Set), counted once.
    const size = set.size;
    set.add(listener);
    this.#count += set.size - size;
    return () => {
      if (set.delete(listener)) this.#count--;
    };
  }

  emit(event: GuardEvent): void {
    for (const type of [event.type, "*"] as const) {
      for (const listener of this.#listeners.get(type) ?? []) {
        try {
          listener(event);
        } catch {
          // Observers must not change what the run does.
        }
      }
    }
    const log = this.#logger?.[LEVEL[event.type]];
    if (log) {
      try {
        log.call(this.#logger, summarize(event), event);
      } catch {
        // Same as listeners.
      }
    }
  }
}

function summarize(event: GuardEvent): string {
  const what = `${event.operation ?? "operation"} [${event.keys.join(", ")}] token ${event.token ?? "-"}`;
  switch (event.type) {
    case "started":
      return `poison guard: ${what} started${event.resumed ? " (resumed)" : ""}`;
    case "refused":
      return `poison guard: ${what} refused: ${event.key} held by ${event.holder.token} (${event.holder.state})`;
    case "retried":
      return `poison guard: ${what} attempt ${event.attempt} failed, retrying in ${event.delayMs} ms`;
    case "cleaned":
      return `poison guard: ${what} keys deleted (${event.reason})`;
    case "succeeded":
      return `poison guard: ${what} succeeded after ${event.attempts} attempt(s)`;
    case "failed":
      return `poison guard: ${what} failed without poisoning`;
    case "poisoned":
      return `poison guard: ${what} failed and left its keys poisoned`;
    case "cleanup-failed":
      return `poison guard: ${what} could not delete its keys; they may still be present`;
    case "heartbeat":
      return `poison guard: ${what} heartbeat`;
    case "heartbeat-failed":
      return `poison guard: ${what} heartbeat failed`;
    case "lost":
      return `poison guard: ${what} lost key ${event.key} (${event.holder ? `now held by ${event.holder.token}` : "cleared"}); the run is aborted`;
  }
}

/** How a `guard.run` ended: `succeeded` (keys deleted), `poisoned` (OperationPoisonedError: the
 *  keys stay), `refused` (ResourcePoisonedError: nothing ran), `lost` (PoisonLostError),
 *  `cleanup-failed` (PoisonCleanupError), `failed` (any other rejection: the body's error marked
 *  clean or after markConsistent, a store error on the first put, a bad argument). */
export type GuardRunOutcome =
  | "succeeded"
  | "poisoned"
  | "refused"
  | "lost"
  | "cleanup-failed"
  | "failed";

export const GUARD_RUN_OUTCOMES: readonly GuardRunOutcome[] = [
  "succeeded",
  "poisoned",
  "refused",
  "lost",
  "cleanup-failed",
  "failed",
];

/** One settled `guard.run`, published on {@link GUARD_RUN_CHANNEL}. */
export interface GuardRunSettled {
  store: PoisonStoreClient;
  operation: string | undefined;
  outcome: GuardRunOutcome;
  durationMs: number;
}

/** The node:diagnostics_channel every guard publishes its settled runs on, whichever guard
 *  object ran them: `collectMetrics` counts a store's runs without being handed the guards. */
export const GUARD_RUN_CHANNEL = "poison-store:guard-run";
export const guardRunChannel = channel(GUARD_RUN_CHANNEL);
