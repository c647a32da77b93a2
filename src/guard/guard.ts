/**
 * PoisonGuard (SPEC §5): run an operation under poison keys. The keys are written, all or none,
 * before the body runs; deleted when it succeeds (or the body proves the resource consistent);
 * left and marked `poisoned` when it fails in a way that may leave the resource inconsistent.
 * A key never expires: old heartbeats only inform an operator.
 */
import type { PoisonStoreClient } from "../core/contract.js";
import {
  BackendUnavailableError,
  InvalidArgumentError,
  PoisonConflictError,
  PoisonNotFoundError,
} from "../core/errors.js";
import type { PoisonRecord, PutPoisonInfo, PutPoisonsResult } from "../core/records.js";
import { processOwner } from "../core/store.js";
import {
  checkKeys,
  checkObject,
  checkOptionalString,
  checkToken,
  MAX_LABEL_BYTES,
} from "../core/validation.js";
import {
  OperationPoisonedError,
  PoisonCleanupError,
  type RefusalReason,
  ResourcePoisonedError,
} from "./errors.js";
import {
  type GuardEvent,
  GuardEvents,
  type GuardEventType,
  type GuardListener,
  type GuardLogger,
} from "./events.js";
import { isMarkedCleanPoisons, isMarkedRetryable } from "./marks.js";

/** Exponential backoff with jitter. */
export interface RetryOptions {
  /** Executions in all, the first included; 1 means never retry. */
  maxAttempts?: number;
  /** The first delay, and the floor of every delay. */
  minDelayMs?: number;
  /** The ceiling of every delay. */
  maxDelayMs?: number;
}

export const DEFAULT_RETRY: Required<RetryOptions> = {
  maxAttempts: 3,
  minDelayMs: 100,
  maxDelayMs: 5000,
};
/** The guard's own store writes (put, cleanup, marking) retried on BackendUnavailableError. */
export const DEFAULT_STORE_RETRY: Required<RetryOptions> = {
  maxAttempts: 3,
  minDelayMs: 50,
  maxDelayMs: 1000,
};
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;

export interface PoisonGuardOptions {
  /** Retries of a body that throws an error marked `retryable`. Default 3 attempts, 100..5000 ms. */
  retry?: RetryOptions;
  /** Retries of the guard's own store writes when the backend is unavailable (safe: every write
   *  is idempotent under the token). Default 3 attempts, 50..1000 ms. */
  storeRetry?: RetryOptions;
  /** How often a running body's keys get a fresh `heartbeatAt`; `false` turns heartbeats off.
   *  Default 10 000 ms. */
  heartbeatIntervalMs?: number | false;
  /** Written as each record's `owner`. Default `host:pid` of this process. */
  owner?: string;
  /** Called with every event, in order. */
  onEvent?: (event: GuardEvent) => void;
  /** Receives every event with a one-line summary (`console` works). Default: nothing is logged. */
  logger?: GuardLogger;
  /** The jitter source, in [0, 1). Default `Math.random`. */
  random?: () => number;
}

/** What `run` guards. */
export interface GuardedRun {
  /** The resources, one poison key each; distinct, at most 1000. */
  keys: readonly string[];
  /** The operation's identity (a procedure id): the same token resumes after a crash. */
  token: string;
  /** What runs, recorded in each record (for example `alter-table`). */
  operation?: string;
  /** JSON kept in each record for a later repair (at most 64 KiB). */
  data?: unknown;
  /** Aborts `ctx.signal` and any backoff wait. */
  signal?: AbortSignal;
  /** Let this token run over keys it left `poisoned` (for repair code). Default false: refused. */
  resumePoisoned?: boolean;
}

/** What the body receives. */
export interface GuardContext {
  readonly keys: readonly string[];
  readonly token: string;
  /** 1 for the first execution. */
  readonly attempt: number;
  /** Aborts when the caller's `signal` aborts. */
  readonly signal: AbortSignal;
  /** True when at least one key was already held by this token before the run (a resume). */
  readonly resumed: boolean;
  /** The records as they stood once the run held its keys. */
  readonly records: readonly PoisonRecord[];
  /** Delete the keys now: the resource is known consistent from here on, so a later failure
   *  does not poison. Idempotent. Rejects (keys kept) if the store cannot be reached. */
  markConsistent(): Promise<void>;
}

interface CheckedRun {
  keys: string[];
  token: string;
  operation: string | undefined;
  info: PutPoisonInfo;
  signal: AbortSignal | undefined;
  resumePoisoned: boolean;
}

/** Mutable state of one run, shared by the body's context, the heartbeat and the ending. */
interface RunState {
  readonly run: CheckedRun;
  /** True while the keys are (as far as we know) held by the run. */
  held: boolean;
  releasing: Promise<void> | null;
}

export class PoisonGuard {
  readonly store: PoisonStoreClient;
  readonly #retry: Required<RetryOptions>;
  readonly #storeRetry: Required<RetryOptions>;
  readonly #heartbeatMs: number | false;
  readonly #owner: string;
  readonly #random: () => number;
  readonly #events: GuardEvents;

  constructor(store: PoisonStoreClient, options: PoisonGuardOptions = {}) {
    if (typeof store !== "object" || store === null || typeof store.tryPutPoisons !== "function") {
      throw new InvalidArgumentError("store", "must be a store opened with openPoisonStore()");
    }
    const checked = checkObject("options", options, false) ?? {};
    this.store = store;
    this.#retry = checkRetry("options.retry", checked.retry, DEFAULT_RETRY);
    this.#storeRetry = checkRetry("options.storeRetry", checked.storeRetry, DEFAULT_STORE_RETRY);
    const heartbeat = checked.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    if (
      heartbeat !== false &&
      (typeof heartbeat !== "number" || !Number.isFinite(heartbeat) || heartbeat <= 0)
    ) {
      throw new InvalidArgumentError(
        "options.heartbeatIntervalMs",
        "must be a positive number of milliseconds, or false",
      );
    }
    this.#heartbeatMs = heartbeat;
    this.#owner =
      checkOptionalString("options.owner", checked.owner, MAX_LABEL_BYTES) ?? processOwner();
    this.#random = optionalFunction<() => number>("options.random", checked.random) ?? Math.random;
    this.#events = new GuardEvents(checkObject("options.logger", checked.logger, true));
    const onEvent = optionalFunction<(event: GuardEvent) => void>(
      "options.onEvent",
      checked.onEvent,
    );
    if (onEvent) this.#events.on("*", onEvent);
  }

  /** Listen to one type of event; returns a function that removes the listener. */
  on<T extends GuardEventType>(type: T, listener: GuardListener<T>): () => void {
    return this.#events.on(type, listener as (event: GuardEvent) => void);
  }

  /**
   * Refuse (ResourcePoisonedError) if any of `keys` is present, whoever holds it and whatever
   * its state; resolve otherwise. Writes nothing: for read paths that must not serve a
   * quarantined resource.
   */
  async assertHealthy(keys: readonly string[]): Promise<void> {
    const checked = checkKeys(keys);
    const records = await Promise.all(checked.map((key) => this.store.inspectPoison(key)));
    const present = records.find((record) => record !== null);
    if (present) {
      const run: CheckedRun = {
        keys: checked,
        token: "",
        operation: undefined,
        info: {},
        signal: undefined,
        resumePoisoned: false,
      };
      this.#refuse(run, present, "present", null);
    }
  }

  /**
   * Run `body` under poison keys (SPEC §5). Resolves with the body's value once the keys are
   * deleted. Rejects with ResourcePoisonedError (nothing ran), OperationPoisonedError (the keys
   * stay, poisoned), the body's own error (marked `cleanPoisons`, keys deleted; or after
   * `markConsistent`), PoisonCleanupError (the body finished but the keys may still be present),
   * or a store error from the initial put (BackendUnavailableError: the keys may have been
   * written; a run with the same token resumes).
   */
  async run<T>(spec: GuardedRun, body: (ctx: GuardContext) => Promise<T> | T): Promise<T> {
    const run = checkRun(spec, this.#owner);
    if (typeof body !== "function") {
      throw new InvalidArgumentError("body", "must be a function (ctx) => Promise<value>");
    }
    run.signal?.throwIfAborted();

    const acquired = await this.#acquire(run);
    const state: RunState = { run, held: true, releasing: null };
    this.#emit(run, { type: "started", resumed: acquired.resumed, records: acquired.records });

    const controller = new AbortController();
    const onAbort = () => controller.abort(run.signal?.reason);
    run.signal?.addEventListener("abort", onAbort, { once: true });
    if (run.signal?.aborted) onAbort();
    const heartbeat = this.#startHeartbeat(state);

    try {
      for (let attempt = 1; ; attempt++) {
        if (!state.held) {
          // markConsistent released the keys during an earlier attempt; this one changes the
          // resource again, so it must hold them again.
          await this.#acquire(run);
          state.held = true;
        }
        const ctx: GuardContext = {
          keys: run.keys,
          token: run.token,
          attempt,
          signal: controller.signal,
          resumed: acquired.resumed,
          records: acquired.records,
          markConsistent: () => this.#markConsistent(state),
        };
        let value: T;
        try {
          value = await body(ctx);
        } catch (error) {
          if (
            isMarkedRetryable(error) &&
            attempt < this.#retry.maxAttempts &&
            !controller.signal.aborted
          ) {
            const delayMs = backoff(this.#retry, attempt, this.#random);
            this.#emit(run, { type: "retried", attempt, delayMs, error });
            // An abort during the wait ends the run with this attempt's error.
            if (await sleep(delayMs, controller.signal)) continue;
          }
          await state.releasing?.catch(() => undefined);
          await heartbeat.stop();
          return await this.#fail(state, error, attempt);
        }
        await state.releasing?.catch(() => undefined);
        await heartbeat.stop();
        if (state.held) await this.#cleanUp(state, { outcome: "succeeded", result: value });
        this.#emit(run, { type: "succeeded", attempts: attempt });
        return value;
      }
    } finally {
      await heartbeat.stop();
      run.signal?.removeEventListener("abort", onAbort);
    }
  }

  // ---- steps -----------------------------------------------------------------------------

  /** Hold every key, all or none, or refuse: one atomic put, which also tells which keys were
   *  already held by this token (a resumed run) and hands back the holder's record on a
   *  conflict, so a plain run costs no extra read. */
  async #acquire(run: CheckedRun): Promise<{ records: PoisonRecord[]; resumed: boolean }> {
    let put: PutPoisonsResult;
    try {
      put = await this.#storeStep(() => this.store.tryPutPoisons(run.keys, run.token, run.info));
    } catch (error) {
      if (error instanceof PoisonConflictError) {
        // The put wrote nothing: it is all or none.
        const holder = error.holderRecord ?? (await this.store.inspectPoison(error.key));
        if (holder) this.#refuse(run, holder, "held-by-another-token", run.token);
      }
      throw error;
    }
    const poisoned = put.records.find((record) => record.state === "poisoned");
    if (poisoned && !run.resumePoisoned) {
      // This token left a key poisoned: never run over it silently. Undo what this put wrote;
      // if even that fails, the extra keys are held by the same token and its next run (or the
      // operator clearing this token's keys) removes them: quarantine errs on the safe side.
      if (put.created.length > 0) {
        await this.store.deletePoisons(put.created, run.token).catch(() => undefined);
      }
      this.#refuse(run, poisoned, "poisoned-by-this-token", run.token);
    }
    return { records: put.records, resumed: put.created.length < run.keys.length };
  }

  #refuse(
    run: CheckedRun,
    holder: PoisonRecord,
    reason: RefusalReason,
    token: string | null,
  ): never {
    this.#emit(run, { type: "refused", key: holder.key, holder, reason }, token);
    throw new ResourcePoisonedError(holder, token, reason, this.store.namespace);
  }

  /** Delete the run's keys. A key another token took meanwhile (after an operator cleared ours)
   *  is not ours to delete: skip it and delete the rest. */
  async #release(run: CheckedRun): Promise<void> {
    await this.#storeStep(async () => {
      try {
        await this.store.deletePoisons(run.keys, run.token);
      } catch (error) {
        if (!(error instanceof PoisonConflictError)) throw error;
        for (const key of run.keys) {
          await this.store.deletePoison(key, run.token).catch((e: unknown) => {
            if (!(e instanceof PoisonConflictError)) throw e;
          });
        }
      }
    });
  }

  #markConsistent(state: RunState): Promise<void> {
    if (!state.held) return Promise.resolve();
    state.releasing ??= (async () => {
      try {
        await this.#release(state.run);
        state.held = false;
        this.#emit(state.run, { type: "cleaned", reason: "marked-consistent" });
      } finally {
        state.releasing = null;
      }
    })();
    return state.releasing;
  }

  /** The body failed for good: clean, poison, or rethrow as the marks say. */
  /** Delete the keys after a success or a clean-marked error; when that fails, the typed error
   *  says which of the two it followed, with the body's value or error. */
  async #cleanUp(
    state: RunState,
    done:
      | { outcome: "succeeded"; result: unknown }
      | { outcome: "error-marked-clean"; bodyError: unknown },
  ): Promise<void> {
    const { run } = state;
    try {
      await this.#release(run);
    } catch (cause) {
      this.#emit(run, { type: "cleanup-failed", error: cause });
      throw new PoisonCleanupError({ keys: run.keys, token: run.token, ...done, cause });
    }
    state.held = false;
    this.#emit(run, { type: "cleaned", reason: done.outcome });
  }

  async #fail(state: RunState, error: unknown, attempts: number): Promise<never> {
    const { run } = state;
    if (!state.held) {
      // markConsistent already vouched for the resource.
      this.#emit(run, { type: "failed", attempts, error });
      throw error;
    }
    if (isMarkedCleanPoisons(error)) {
      await this.#cleanUp(state, { outcome: "error-marked-clean", bodyError: error });
      this.#emit(run, { type: "failed", attempts, error });
      throw error;
    }
    let records: PoisonRecord[] = [];
    let recordFailure: unknown;
    try {
      records = await this.#storeStep(() => this.#markPoisons(run, error));
    } catch (failure) {
      // The keys stay in-progress and keep refusing other runs: fail safe, but say so.
      recordFailure = failure;
    }
    this.#emit(run, {
      type: "poisoned",
      attempts,
      error,
      ...(recordFailure === undefined ? {} : { recordFailure }),
    });
    throw new OperationPoisonedError({
      keys: run.keys,
      token: run.token,
      operation: run.operation,
      attempts,
      cause: error,
      records,
      recordFailure,
      namespace: this.store.namespace,
    });
  }

  /** Poison every key in one step; if an operator removed or reassigned one meanwhile, poison
   *  those still ours one by one. */
  async #markPoisons(run: CheckedRun, error: unknown): Promise<PoisonRecord[]> {
    try {
      return await this.store.markPoisons(run.keys, run.token, error);
    } catch (failure) {
      if (!(failure instanceof PoisonConflictError || failure instanceof PoisonNotFoundError))
        throw failure;
    }
    const records: PoisonRecord[] = [];
    for (const key of run.keys) {
      try {
        records.push(await this.store.markPoisoned(key, run.token, error));
      } catch (failure) {
        if (!(failure instanceof PoisonConflictError || failure instanceof PoisonNotFoundError))
          throw failure;
      }
    }
    return records;
  }

  #startHeartbeat(state: RunState): { stop(): Promise<void> } {
    if (this.#heartbeatMs === false) return { stop: async () => {} };
    const { run } = state;
    let inFlight: Promise<void> | null = null;
    let stopped = false;
    const tick = () => {
      if (stopped || inFlight || !state.held || state.releasing) return;
      inFlight = this.store
        .touchPoisons(run.keys, run.token)
        .then(
          (records) => {
            const heartbeatAt = records[0]?.heartbeatAt;
            if (heartbeatAt) this.#emit(run, { type: "heartbeat", heartbeatAt });
          },
          (error: unknown) => {
            // Keys released meanwhile are not a failure; anything else is reported, never thrown.
            if (!stopped && state.held && !state.releasing)
              this.#emit(run, { type: "heartbeat-failed", error });
          },
        )
        .finally(() => {
          inFlight = null;
        });
    };
    const timer = setInterval(tick, this.#heartbeatMs);
    timer.unref();
    return {
      async stop() {
        stopped = true;
        clearInterval(timer);
        await inFlight;
      },
    };
  }

  /** A store write of the guard itself, retried while the backend is unavailable. */
  async #storeStep<R>(step: () => Promise<R>): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (error) {
        if (!(error instanceof BackendUnavailableError) || attempt >= this.#storeRetry.maxAttempts)
          throw error;
        await sleep(backoff(this.#storeRetry, attempt, this.#random), undefined);
      }
    }
  }

  #emit(run: CheckedRun, fields: DistributiveOmit<GuardEvent, CommonField>, token?: string | null) {
    this.#events.emit({
      ...fields,
      at: new Date().toISOString(),
      keys: run.keys,
      token: token === undefined ? run.token : token,
      operation: run.operation,
    } as GuardEvent);
  }
}

type CommonField = "at" | "keys" | "token" | "operation";
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The delay before attempt `failed + 1`: exponential from minDelayMs, capped at maxDelayMs,
 *  with "equal jitter" (a random point in the upper half) so racing retries spread out. */
export function backoff(
  retry: Required<RetryOptions>,
  failed: number,
  random: () => number,
): number {
  const cap = Math.min(retry.maxDelayMs, retry.minDelayMs * 2 ** (failed - 1));
  const jittered = cap * (0.5 + 0.5 * Math.min(Math.max(random(), 0), 1));
  return Math.round(Math.max(retry.minDelayMs, Math.min(jittered, retry.maxDelayMs)));
}

/** Wait `ms`; resolves false early if `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function checkRun(spec: unknown, owner: string): CheckedRun {
  const checked = checkObject("run", spec, false) ?? {};
  const keys = checkKeys(checked.keys, "run.keys");
  const token = checkToken(checked.token, "run.token");
  const operation = checkOptionalString("run.operation", checked.operation, MAX_LABEL_BYTES);
  const signal = checked.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new InvalidArgumentError("run.signal", "must be an AbortSignal");
  const resumePoisoned = checked.resumePoisoned ?? false;
  if (typeof resumePoisoned !== "boolean")
    throw new InvalidArgumentError("run.resumePoisoned", "must be a boolean");
  const info: PutPoisonInfo = { owner };
  if (operation !== undefined) info.operation = operation;
  if (checked.data !== undefined) info.data = checked.data;
  return { keys, token, operation, info, signal, resumePoisoned };
}

function checkRetry(
  argument: string,
  value: unknown,
  defaults: Required<RetryOptions>,
): Required<RetryOptions> {
  const checked = checkObject(argument, value, true) ?? {};
  const merged = { ...defaults, ...stripUndefined(checked) };
  const { maxAttempts, minDelayMs, maxDelayMs } = merged;
  if (typeof maxAttempts !== "number" || !Number.isInteger(maxAttempts) || maxAttempts < 1)
    throw new InvalidArgumentError(`${argument}.maxAttempts`, "must be an integer of at least 1");
  if (typeof minDelayMs !== "number" || !Number.isFinite(minDelayMs) || minDelayMs < 0)
    throw new InvalidArgumentError(`${argument}.minDelayMs`, "must be a number of at least 0");
  if (typeof maxDelayMs !== "number" || !Number.isFinite(maxDelayMs) || maxDelayMs < minDelayMs)
    throw new InvalidArgumentError(
      `${argument}.maxDelayMs`,
      "must be a number of at least minDelayMs",
    );
  return { maxAttempts, minDelayMs, maxDelayMs };
}

function stripUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

function optionalFunction<F>(argument: string, value: unknown): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function") throw new InvalidArgumentError(argument, "must be a function");
  return value as F;
}
