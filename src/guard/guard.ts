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
  PoisonLostError,
  PoisonNotFoundError,
} from "../core/errors.js";
import type { PoisonRecord, PutPoisonInfo, PutPoisonsResult } from "../core/records.js";
import { backoffDelay, type RetryOptions as CoreRetryOptions, retryAfter } from "../core/retry.js";
import { processOwner } from "../core/store.js";
import {
  checkDuration,
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
  RunSettledError,
} from "./errors.js";
import {
  type GuardEvent,
  GuardEvents,
  type GuardEventType,
  type GuardListener,
  type GuardLogger,
  type GuardRunOutcome,
  type GuardRunSettled,
  guardRunChannel,
} from "./events.js";
import { HeartbeatClock } from "./heartbeat.js";
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
  /** Aborts when the caller's `signal` aborts, and with PoisonLostError when the run finds one
   *  of its keys cleared or taken over (within one heartbeat interval). */
  readonly signal: AbortSignal;
  /** True when at least one key was already held by this token before the run (a resume). */
  readonly resumed: boolean;
  /** The records as they stood once the run held its keys. */
  readonly records: readonly PoisonRecord[];
  /** Delete the keys now: the resource is known consistent from here on, so a later failure
   *  does not poison. Idempotent. Rejects (keys kept) if the store cannot be reached. */
  markConsistent(): Promise<void>;
  /**
   * Check, in one atomic token-checked round trip, that the run still holds every key (and
   * refresh their heartbeat): for use right before an irreversible step. Rejects with
   * PoisonLostError when a key is absent or held by another token (the run is then aborted), or
   * with BackendUnavailableError when the store could not say.
   */
  assertHeld(): Promise<void>;
}

/** Every method of a context refuses once its attempt has settled (RunSettledError). */

interface CheckedRun {
  keys: string[];
  token: string;
  operation: string | undefined;
  info: PutPoisonInfo;
  signal: AbortSignal | undefined;
  resumePoisoned: boolean;
}

/** The keys a run holds once its put succeeded. */
interface Acquired {
  records: PoisonRecord[];
  /** At least one key was already held by this token (a resumed run). */
  resumed: boolean;
}

/** What a cleanup follows: a success (with the body's value) or an error marked clean. */
type CleanUpAfter =
  | { outcome: "succeeded"; result: unknown }
  | { outcome: "error-marked-clean"; bodyError: unknown };

/** Mutable state of one run, shared by the body's context, the heartbeat and the ending. */
interface RunState {
  readonly run: CheckedRun;
  /** Aborts the body's `ctx.signal`: with the caller's signal, or with the loss of a key. */
  readonly controller: LazyAbort;
  /** True while the keys are (as far as we know) held by the run. */
  held: boolean;
  releasing: Promise<void> | null;
  /** Set once a key was found cleared or taken over: from then on the run writes nothing. */
  lost: PoisonLostError | null;
  /** A delete of the run's keys had an unknown outcome: from then on a key found absent or
   *  taken may be the run's own doing, so it is no longer evidence of a loss. */
  deleteUncertain: boolean;
}

export class PoisonGuard {
  readonly store: PoisonStoreClient;
  readonly #retry: Required<RetryOptions>;
  readonly #storeRetry: Required<RetryOptions>;
  readonly #heartbeatMs: number | false;
  readonly #owner: string;
  readonly #random: () => number;
  readonly #events: GuardEvents;
  /** The heartbeat timer shared by this guard's runs; null when heartbeats are off. */
  readonly #heartbeats: HeartbeatClock | null;

  constructor(store: PoisonStoreClient, options: PoisonGuardOptions = {}) {
    if (typeof store !== "object" || store === null || typeof store.tryPutPoisons !== "function") {
      throw new InvalidArgumentError("store", "must be a store opened with openPoisonStore()");
    }
    const checked = checkObject("options", options, false) ?? {};
    this.store = store;
    this.#retry = checkRetry("options.retry", checked.retry, DEFAULT_RETRY);
    this.#storeRetry = checkRetry("options.storeRetry", checked.storeRetry, DEFAULT_STORE_RETRY);
    const heartbeat = checked.heartbeatIntervalMs;
    this.#heartbeatMs =
      heartbeat === false
        ? false
        : checkDuration("options.heartbeatIntervalMs", heartbeat, DEFAULT_HEARTBEAT_INTERVAL_MS);
    this.#heartbeats = this.#heartbeatMs === false ? null : new HeartbeatClock(this.#heartbeatMs);
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
   * Refuse (ResourcePoisonedError, naming every present key) if any of `keys` is present,
   * whoever holds it and whatever its state; resolve otherwise. Writes nothing: for read paths
   * that must not serve a quarantined resource.
   */
  async assertHealthy(keys: readonly string[]): Promise<void> {
    const checked = checkKeys(keys);
    const records = await Promise.all(checked.map((key) => this.store.inspectPoison(key)));
    const present = records.filter((record): record is PoisonRecord => record !== null);
    if (present.length > 0) {
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
   * Run `body` under poison keys (SPEC §5, §7). Resolves with the body's value once the keys are
   * deleted. Rejects with ResourcePoisonedError (nothing ran), OperationPoisonedError (the keys
   * stay, poisoned), PoisonLostError (a key was cleared or taken over while the run held it: the
   * body was aborted, the keys still held are poisoned), the body's own error (marked
   * `cleanPoisons`, keys deleted; or after `markConsistent`), PoisonCleanupError (the body
   * finished but the keys may still be present), or a store error from the initial put
   * (BackendUnavailableError: the keys may have been written; a run with the same token resumes).
   */
  run<T>(spec: GuardedRun, body: (ctx: GuardContext) => Promise<T> | T): Promise<T> {
    // Not async itself: without metrics listening, the run's promise is #run's, not a wrapper.
    if (!guardRunChannel.hasSubscribers) return this.#run(spec, body);
    return this.#publishedRun(spec, body);
  }

  /** A run whose ending is published for the metrics listening (collectMetrics). */
  async #publishedRun<T>(
    spec: GuardedRun,
    body: (ctx: GuardContext) => Promise<T> | T,
  ): Promise<T> {
    const started = performance.now();
    const publish = (outcome: GuardRunOutcome) => {
      const message: GuardRunSettled = {
        store: this.store,
        operation: typeof spec?.operation === "string" ? spec.operation : undefined,
        outcome,
        durationMs: performance.now() - started,
      };
      guardRunChannel.publish(message);
    };
    try {
      const value = await this.#run(spec, body);
      publish("succeeded");
      return value;
    } catch (error) {
      publish(runOutcomeOf(error));
      throw error;
    }
  }

  async #run<T>(spec: GuardedRun, body: (ctx: GuardContext) => Promise<T> | T): Promise<T> {
    const run = checkRun(spec, this.#owner, this.#heartbeatMs);
    if (typeof body !== "function") {
      throw new InvalidArgumentError("body", "must be a function (ctx) => Promise<value>");
    }
    run.signal?.throwIfAborted();

    const acquired = await this.#acquire(run);
    const state: RunState = {
      run,
      controller: new LazyAbort(),
      held: true,
      releasing: null,
      lost: null,
      deleteUncertain: false,
    };
    this.#emit(run, { type: "started", resumed: acquired.resumed, records: acquired.records });

    const { controller } = state;
    const onAbort = run.signal ? () => controller.abort(run.signal?.reason) : null;
    if (onAbort) {
      run.signal?.addEventListener("abort", onAbort, { once: true });
      if (run.signal?.aborted) onAbort();
    }
    const heartbeat = this.#startHeartbeat(state);

    try {
      // A resumed run's records carry the earlier run's heartbeat: make them live now.
      if (acquired.resumed && this.#heartbeatMs !== false) await this.#touch(state).catch(() => {});
      let attempt = 0;
      let bodyError: unknown;
      let value: T;
      const actions: ContextActions = {
        markConsistent: () => this.#markConsistent(state),
        assertHeld: () => this.#assertHeld(state),
      };
      const attemptBody = async (n: number): Promise<T> => {
        if (n > 1) {
          // After the wait: a key lost meanwhile, or a store that cannot confirm the run
          // still holds its keys, ends the run with the last attempt's error: never run the
          // body again over a key that may be someone else's.
          if (!(await this.#stillHeld(state))) throw STOP_RETRYING;
          if (!state.held && !state.lost) {
            // markConsistent released the keys during an earlier attempt; this one changes
            // the resource again, so it must hold them again.
            try {
              await this.#acquire(run);
            } catch (error) {
              throw new NotABodyError(error);
            }
            state.held = true;
          }
        }
        attempt = n;
        const ctx = new RunContext(run, n, acquired, controller, actions);
        try {
          return await body(ctx);
        } catch (error) {
          bodyError = error;
          throw error;
        } finally {
          ctx.settle();
        }
      };
      try {
        // The first attempt runs outside the retry loop (most bodies succeed at once); a body
        // error marked `retryable` continues in src/core/retry.ts's loop while the run still
        // holds its keys and was not aborted.
        try {
          value = await attemptBody(1);
        } catch (first) {
          value = await retryAfter(
            attemptBody,
            new AttemptPolicy(this.#retry, this.#random, state, (error, failed, delayMs) =>
              this.#emit(run, { type: "retried", attempt: failed, delayMs, error }),
            ),
            1,
            first,
          );
        }
      } catch (thrown) {
        if (isNotABodyError(thrown)) throw thrown.error;
        const error = thrown === STOP_RETRYING ? bodyError : thrown;
        if (state.releasing) await state.releasing.catch(() => undefined);
        await heartbeat.stop();
        if (state.lost) return await this.#endLost(state, error, attempt);
        return await this.#fail(state, error, attempt);
      }
      if (state.releasing) await state.releasing.catch(() => undefined);
      // Awaited only when a heartbeat is in flight: an await of nothing still costs a turn.
      const beating = heartbeat.stop();
      if (beating) await beating;
      if (state.lost) return await this.#endLost(state, undefined, attempt);
      if (state.held) await this.#cleanUp(state, { outcome: "succeeded", result: value });
      this.#emit(run, { type: "succeeded", attempts: attempt });
      return value;
    } finally {
      // Stopped already on every path but a throw from the steps above; then it waits for a
      // heartbeat still in flight.
      const beating = heartbeat.stop();
      if (beating) await beating;
      if (onAbort) run.signal?.removeEventListener("abort", onAbort);
    }
  }

  // ---- steps -----------------------------------------------------------------------------

  /** Hold every key, all or none, or refuse: one atomic put, which also tells which keys were
   *  already held by this token (a resumed run) and hands back the holders' records on a
   *  conflict, so a plain run costs no extra read. */
  #acquire(run: CheckedRun): Promise<Acquired> {
    // Chained rather than async: with #release, the steps of every run (see #storeStep).
    return this.#storeStep(() => this.store.tryPutPoisons(run.keys, run.token, run.info)).then(
      (put) => this.#acquired(run, put),
      (error: unknown) => this.#acquireFailed(run, error),
    );
  }

  /** The put held every key: the run's records, unless this token left a key poisoned. */
  #acquired(run: CheckedRun, put: PutPoisonsResult): Acquired | Promise<never> {
    const poisoned = put.records.filter((record) => record.state === "poisoned");
    if (poisoned.length > 0 && !run.resumePoisoned) return this.#refusePoisoned(run, put, poisoned);
    return { records: put.records, resumed: put.created.length < run.keys.length };
  }

  /** This token left a key poisoned: never run over it silently. Undo what this put wrote; if
   *  even that fails, the extra keys are held by the same token and its next run (or the
   *  operator clearing this token's keys) removes them: quarantine errs on the safe side. */
  async #refusePoisoned(
    run: CheckedRun,
    put: PutPoisonsResult,
    poisoned: PoisonRecord[],
  ): Promise<never> {
    if (put.created.length > 0) {
      await this.store.deletePoisons(put.created, run.token).catch(() => undefined);
    }
    this.#refuse(run, poisoned, "poisoned-by-this-token", run.token);
  }

  /** The put failed: a conflict is a refusal naming the holders; anything else is rethrown. */
  async #acquireFailed(run: CheckedRun, error: unknown): Promise<never> {
    if (error instanceof PoisonConflictError) {
      // The put wrote nothing: it is all or none.
      const holders =
        error.conflicts.length > 0
          ? error.conflicts
          : [await this.store.inspectPoison(error.key)].filter(
              (record): record is PoisonRecord => record !== null,
            );
      if (holders.length > 0) this.#refuse(run, holders, "held-by-another-token", run.token);
    }
    throw error;
  }

  #refuse(
    run: CheckedRun,
    holders: readonly PoisonRecord[],
    reason: RefusalReason,
    token: string | null,
  ): never {
    const holder = holders[0] as PoisonRecord;
    this.#emit(run, { type: "refused", key: holder.key, holder, holders, reason }, token);
    throw new ResourcePoisonedError(holder, token, reason, {
      namespace: this.store.namespace,
      location: this.store.location,
      holders,
    });
  }

  /** A key of the run was found absent or held by another token: stop writing, abort the body,
   *  tell listeners. Only the first finding counts. Null when the finding is no evidence: after
   *  a delete of ours with an unknown outcome, the key may be gone by our own hand. */
  #lose(
    state: RunState,
    finding: PoisonConflictError | PoisonNotFoundError,
  ): PoisonLostError | null {
    if (state.lost) return state.lost;
    if (state.deleteUncertain) return null;
    const holder = keyHolder(finding);
    const lost = new PoisonLostError(finding.key, state.run.token, holder);
    state.lost = lost;
    this.#emit(state.run, { type: "lost", key: lost.key, holder, error: lost });
    state.controller.abort(lost);
    return lost;
  }

  /** A store error that proves a key is no longer the run's becomes the loss; others pass. */
  #asLoss(state: RunState, error: unknown): unknown {
    return isKeyGone(error) ? (this.#lose(state, error) ?? error) : error;
  }

  /** Refresh the heartbeat of every key, token-checked, in one step; `announce` emits the
   *  `heartbeat` event (the periodic and asked-for ones; not the check before a retry). */
  async #touch(state: RunState, announce = true): Promise<void> {
    const { run } = state;
    try {
      const options = this.#heartbeatMs === false ? {} : { heartbeatIntervalMs: this.#heartbeatMs };
      const records = await this.store.touchPoisons(run.keys, run.token, options);
      const heartbeatAt = records[0]?.heartbeatAt;
      if (heartbeatAt && announce) this.#emit(run, { type: "heartbeat", heartbeatAt });
    } catch (error) {
      // Keys our own markConsistent is releasing (or released) are not lost.
      if (state.releasing || !state.held) throw error;
      throw this.#asLoss(state, error);
    }
  }

  /** Before a retry: the keys are still the run's (one token-checked round trip, retried while
   *  the store is unavailable). After markConsistent there is nothing to check: the next
   *  attempt takes the keys again. */
  async #stillHeld(state: RunState): Promise<boolean> {
    if (state.lost) return false;
    if (!state.held) return true;
    try {
      await this.#storeStep(() => this.#touch(state, false));
      return true;
    } catch {
      return false;
    }
  }

  async #assertHeld(state: RunState): Promise<void> {
    if (state.lost) throw state.lost;
    await state.releasing?.catch(() => undefined);
    if (!state.held) {
      // markConsistent gave the keys up on purpose: nothing protects the resource any more.
      throw new PoisonLostError(state.run.keys[0] as string, state.run.token, null);
    }
    try {
      await this.#touch(state);
    } catch (error) {
      // Not held, even where that is no evidence of someone else's doing (see #lose).
      if (isKeyGone(error)) throw new PoisonLostError(error.key, state.run.token, keyHolder(error));
      throw error;
    }
  }

  /** Delete the run's keys (token-checked, all or none). A key found held by another token, or
   *  already absent, was taken or cleared while the run held it: that is the loss of the key. */
  #release(state: RunState): Promise<void> {
    const { run } = state;
    return this.#storeStep(() =>
      this.store.deletePoisons(run.keys, run.token).catch((error: unknown) => {
        // The delete may have applied: absent or taken keys prove nothing from here on.
        if (error instanceof BackendUnavailableError) state.deleteUncertain = true;
        throw error;
      }),
    ).then(
      ({ removed }) => this.#released(state, removed),
      (error: unknown) => this.#releaseFailed(state, error),
    );
  }

  /** The delete answered: a key it did not find was cleared or taken while the run held it. */
  #released(state: RunState, removed: readonly string[]): void {
    state.held = false;
    const missing = state.run.keys.find((key) => !removed.includes(key));
    if (missing !== undefined) {
      const lost = this.#lose(state, new PoisonNotFoundError(missing));
      if (lost) throw lost;
    }
  }

  async #releaseFailed(state: RunState, error: unknown): Promise<void> {
    if (!(state.deleteUncertain && error instanceof PoisonConflictError))
      throw this.#asLoss(state, error);
    // Our earlier delete may have applied and another run taken a key since. Delete, one by
    // one, whatever is still ours.
    const { run } = state;
    for (const key of run.keys) {
      await this.store.deletePoison(key, run.token).catch((e: unknown) => {
        if (!(e instanceof PoisonConflictError)) throw e;
      });
    }
    this.#released(state, []);
  }

  #markConsistent(state: RunState): Promise<void> {
    if (state.lost) return Promise.reject(state.lost);
    if (!state.held) return Promise.resolve();
    state.releasing ??= (async () => {
      try {
        await this.#release(state);
        this.#emit(state.run, { type: "cleaned", reason: "marked-consistent" });
      } finally {
        state.releasing = null;
      }
    })();
    return state.releasing;
  }

  /** Delete the keys after a success or a clean-marked error; when that fails, the typed error
   *  says which of the two it followed, with the body's value or error. A loss found on the way
   *  ends the run as lost. */
  #cleanUp(state: RunState, done: CleanUpAfter): Promise<void> {
    return this.#release(state).then(
      () => this.#emit(state.run, { type: "cleaned", reason: done.outcome }),
      (cause: unknown) => this.#cleanUpFailed(state, done, cause),
    );
  }

  async #cleanUpFailed(state: RunState, done: CleanUpAfter, cause: unknown): Promise<never> {
    const { run } = state;
    if (cause instanceof PoisonLostError) {
      await this.#endLost(state, done.outcome === "succeeded" ? undefined : done.bodyError, 1);
    }
    this.#emit(run, { type: "cleanup-failed", error: cause });
    throw new PoisonCleanupError({ keys: run.keys, token: run.token, ...done, cause });
  }

  /** The body failed for good: clean, poison, or rethrow as the marks say. */
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
      records = await this.#storeStep(() => this.#markPoisons(state, error));
    } catch (failure) {
      // The keys stay in-progress and keep refusing other runs: fail safe, but say so.
      recordFailure = failure;
    }
    if (state.lost) throw state.lost;
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
      location: this.store.location,
    });
  }

  /**
   * The run lost a key: it rejects with PoisonLostError. The keys it still holds were under an
   * interrupted body, so they are marked poisoned (with the body's error, or the loss); the
   * token check of every write keeps the lost keys untouched.
   */
  async #endLost(state: RunState, bodyError: unknown, attempts: number): Promise<never> {
    const lost = state.lost as PoisonLostError;
    if (state.held) {
      let records: PoisonRecord[] = [];
      let recordFailure: unknown;
      const reason = bodyError === undefined ? lost : bodyError;
      try {
        records = await this.#storeStep(() => this.#markPoisons(state, reason));
      } catch (failure) {
        recordFailure = failure;
      }
      if (records.length > 0 || recordFailure !== undefined) {
        this.#emit(state.run, {
          type: "poisoned",
          attempts,
          error: reason,
          ...(recordFailure === undefined ? {} : { recordFailure }),
        });
      }
    }
    throw lost;
  }

  /** Poison every key in one step; when one is no longer the run's (the loss of that key),
   *  poison those still held one by one: each write is token-checked, so a key cleared or taken
   *  over is never written. */
  async #markPoisons(state: RunState, error: unknown): Promise<PoisonRecord[]> {
    const { run } = state;
    try {
      return await this.store.markPoisons(run.keys, run.token, error);
    } catch (failure) {
      if (!isKeyGone(failure)) throw failure;
      this.#lose(state, failure);
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

  #startHeartbeat(state: RunState): { stop(): Promise<void> | undefined } {
    const clock = this.#heartbeats;
    if (!clock) return NO_HEARTBEAT;
    let inFlight: Promise<void> | null = null;
    let stopped = false;
    const beat = clock.start(() => {
      if (stopped || inFlight || !state.held || state.releasing || state.lost) return;
      inFlight = this.#touch(state)
        .catch((error: unknown) => {
          // A loss was already handled by #touch; anything else (the store did not answer) is
          // reported and the run goes on: the key is still there as far as anyone knows.
          if (!stopped && !state.lost && state.held && !state.releasing)
            this.#emit(state.run, { type: "heartbeat-failed", error });
        })
        .finally(() => {
          inFlight = null;
        });
    });
    // The guard's one heartbeat timer (heartbeat.ts) is referenced while a run is queued: the
    // heartbeat is how a run learns it lost a key, so while the body runs it keeps the process
    // alive like any other work in progress (it stops when the run ends).
    return {
      // Not async: with no heartbeat in flight (the usual case) there is nothing to wait for.
      stop() {
        if (!stopped) {
          stopped = true;
          clock.stop(beat);
        }
        return inFlight ?? undefined;
      },
    };
  }

  /** A store write of the guard itself, retried while the backend is unavailable. The first
   *  attempt runs outside the retry loop: it usually succeeds, and the loop's frame was a
   *  measurable share of a no-op run. */
  #storeStep<R>(step: () => Promise<R>): Promise<R> {
    let first: Promise<R>;
    try {
      first = step();
    } catch (error) {
      first = Promise.reject(error);
    }
    return first.catch((error: unknown) => {
      this.#storeRetrying ??= {
        ...this.#storeRetry,
        random: this.#random,
        shouldRetry: (failure) => failure instanceof BackendUnavailableError,
      };
      return retryAfter(step, this.#storeRetrying, 1, error);
    });
  }

  /** The options of #storeStep's retries, built once. */
  #storeRetrying: CoreRetryOptions | null = null;

  #emit(run: CheckedRun, fields: DistributiveOmit<GuardEvent, CommonField>, token?: string | null) {
    // Nobody listens (the usual case): an event would be built, timestamped and dropped.
    if (!this.#events.observed) return;
    this.#events.emit({
      ...fields,
      at: new Date().toISOString(),
      keys: run.keys,
      token: token === undefined ? run.token : token,
      operation: run.operation,
    } as GuardEvent);
  }
}

/**
 * How a run's body is retried (the options of core/retry.ts's loop): a body error marked
 * `retryable`, while the run holds its keys and was not aborted; the wait is cut by `ctx.signal`
 * (an abort ends the run with that attempt's error). One object per run, its methods shared.
 */
class AttemptPolicy implements CoreRetryOptions {
  readonly maxAttempts: number;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly #state: RunState;

  constructor(
    backoff: Required<RetryOptions>,
    readonly random: () => number,
    state: RunState,
    readonly onRetry: (error: unknown, failed: number, delayMs: number) => void,
  ) {
    this.maxAttempts = backoff.maxAttempts;
    this.minDelayMs = backoff.minDelayMs;
    this.maxDelayMs = backoff.maxDelayMs;
    this.#state = state;
  }

  /** Read only when a wait starts: the signal (and its controller) is made on demand. */
  get signal(): AbortSignal {
    return this.#state.controller.signal;
  }

  shouldRetry(error: unknown): boolean {
    const state = this.#state;
    return (
      error !== STOP_RETRYING &&
      !isNotABodyError(error) &&
      !state.lost &&
      isMarkedRetryable(error) &&
      !state.controller.aborted
    );
  }
}

/** What a run's contexts do, made once per run and shared by its attempts' contexts. */
interface ContextActions {
  markConsistent(): Promise<void>;
  assertHeld(): Promise<void>;
}

/**
 * The body's GuardContext, one per attempt. A class rather than an object literal: a literal
 * with a getter (`signal`) made V8 build its accessor at run time, which cost more than the rest
 * of a no-op run on the in-process backends; here the getter is the prototype's. The methods
 * stay own closures, so `const { markConsistent } = ctx` keeps working.
 */
class RunContext implements GuardContext {
  readonly keys: readonly string[];
  readonly token: string;
  readonly attempt: number;
  readonly resumed: boolean;
  readonly records: readonly PoisonRecord[];
  readonly markConsistent: () => Promise<void>;
  readonly assertHeld: () => Promise<void>;
  readonly #controller: LazyAbort;
  #settled = false;

  constructor(
    run: CheckedRun,
    attempt: number,
    acquired: { records: PoisonRecord[]; resumed: boolean },
    controller: LazyAbort,
    actions: ContextActions,
  ) {
    this.keys = run.keys;
    this.token = run.token;
    this.attempt = attempt;
    this.resumed = acquired.resumed;
    this.records = acquired.records;
    this.#controller = controller;
    this.markConsistent = () =>
      this.#settled
        ? Promise.reject(new RunSettledError("markConsistent", run.token))
        : actions.markConsistent();
    this.assertHeld = () =>
      this.#settled
        ? Promise.reject(new RunSettledError("assertHeld", run.token))
        : actions.assertHeld();
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The attempt is over: every method refuses from now on. */
  settle(): void {
    this.#settled = true;
  }
}

/** The heartbeat of a run of a guard whose heartbeats are off. */
const NO_HEARTBEAT = { stop: (): undefined => undefined };

/** Thrown by an attempt that must not run: the run ends with the previous attempt's error. */
const STOP_RETRYING = Symbol("stop retrying");

/** A failure of the guard's own steps between attempts (taking the keys again): it ends the run
 *  as it is, never retried and never taken for the body's error. */
class NotABodyError {
  constructor(readonly error: unknown) {
    notABodyErrors.add(this);
  }
}
const notABodyErrors = new WeakSet<object>();

/** Told apart by identity, not `instanceof`: a body may throw a Proxy whose prototype trap
 *  throws. */
function isNotABodyError(value: unknown): value is NotABodyError {
  return typeof value === "object" && value !== null && notABodyErrors.has(value);
}

/**
 * The AbortController behind `ctx.signal`, made only when someone asks for the signal: most
 * bodies never look at it, and a controller with its signal was a tenth of a no-op run on the
 * in-process backends. Aborting before the signal exists records the reason; the signal is then
 * born aborted with it.
 */
class LazyAbort {
  #controller: AbortController | null = null;
  #aborted = false;
  #reason: unknown;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

function runOutcomeOf(error: unknown): GuardRunOutcome {
  if (error instanceof OperationPoisonedError) return "poisoned";
  if (error instanceof ResourcePoisonedError) return "refused";
  if (error instanceof PoisonLostError) return "lost";
  if (error instanceof PoisonCleanupError) return "cleanup-failed";
  return "failed";
}

/** A token-checked write found the key absent or held by another token. */
function isKeyGone(error: unknown): error is PoisonConflictError | PoisonNotFoundError {
  return error instanceof PoisonConflictError || error instanceof PoisonNotFoundError;
}

function keyHolder(error: PoisonConflictError | PoisonNotFoundError): PoisonRecord | null {
  return error instanceof PoisonConflictError ? (error.holderRecord ?? null) : null;
}

type CommonField = "at" | "keys" | "token" | "operation";
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The delay before attempt `failed + 1`: exponential from minDelayMs, capped at maxDelayMs,
 *  with "equal jitter" (a random point in the upper half) so racing retries spread out. */
export function backoff(
  options: Required<RetryOptions>,
  failed: number,
  random: () => number,
): number {
  return backoffDelay(options, failed, random);
}

function checkRun(spec: unknown, owner: string, heartbeatMs: number | false): CheckedRun {
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
  if (heartbeatMs !== false) info.heartbeatIntervalMs = heartbeatMs;
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
  const { maxAttempts } = merged;
  if (typeof maxAttempts !== "number" || !Number.isInteger(maxAttempts) || maxAttempts < 1)
    throw new InvalidArgumentError(`${argument}.maxAttempts`, "must be an integer of at least 1");
  const minDelayMs = checkDuration(`${argument}.minDelayMs`, merged.minDelayMs, 0, {
    allowZero: true,
  });
  const maxDelayMs = checkDuration(`${argument}.maxDelayMs`, merged.maxDelayMs, 0, {
    allowZero: true,
  });
  if (maxDelayMs < minDelayMs)
    throw new InvalidArgumentError(`${argument}.maxDelayMs`, "must be at least minDelayMs");
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
