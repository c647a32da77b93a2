/**
 * The lifecycle of a store (src/core/store.ts): init once (retried after a failure, creating
 * storage only before a write), a bound on every call of a networked driver, use-after-close,
 * close() after the calls in flight, and the typing of failures that are not the contract's.
 */
import { type DeadlineQueue, deadlinesOf } from "./deadlines.js";
import type { PoisonDriver } from "./driver.js";
import {
  BackendUnavailableError,
  InvalidArgumentError,
  PoisonConflictError,
  PoisonStoreError,
  StoreClosedError,
} from "./errors.js";

/** What a call does to the backend, which decides what init may do first. */
export type Access =
  /** Only reads: never creates or changes storage; no storage reads as empty. */
  | "read"
  /** Changes existing records only (delete, mark, touch): no storage means the key is absent. */
  | "change"
  /** May write a new record: creates or migrates storage first. */
  | "create";

/** Failures an in-process store settles in a row before one waits for the event loop. */
const MAX_FAILURES_PER_TURN = 64;

export class StoreRuntime {
  readonly #driver: PoisonDriver;
  readonly #backend: string;
  readonly #timeoutMs: number;
  /** The message of a call cut at timeoutMs (built once, not per call). */
  readonly #noAnswer: string;
  /** Where calls are bounded by timeoutMs: one timer shared by every call in flight. */
  readonly #deadlines: DeadlineQueue;
  /** Set by driverFor(). Every call validates its arguments synchronously before it first asks
   *  for the driver, so this tells whether a failure came before the backend was reached (a
   *  hostile argument whose getter throws: an argument error, not a backend outage). */
  #reachedBackend = false;
  /** Storage was created or migrated by this store: every call may go straight to the driver. */
  #created = false;
  /** Storage is known to exist (a read found it): reads may go straight to the driver. */
  #found = false;
  #creating: Promise<void> | null = null;
  #probing: Promise<boolean> | null = null;
  #initStarted = false;
  #closing: Promise<void> | null = null;
  /** The driver runs in this process (capabilities.inProcess): calls get no timer. */
  readonly #inProcess: boolean;
  /** Calls started and not yet settled; close() waits for none to be left. A count rather than
   *  a set of promises: the in-process backends' calls take microseconds, and a set entry per
   *  call was a measurable share of them. */
  #active = 0;
  /** Resolves close()'s wait once #active drops to 0. */
  #idle: (() => void) | null = null;
  /** Backend failures an in-process store settled since the event loop last had a turn, and
   *  whether a turn is scheduled to reset the count (see #yieldDue). */
  #failuresThisTurn = 0;
  #turnScheduled = false;

  constructor(driver: PoisonDriver, timeoutMs: number) {
    this.#driver = driver;
    this.#backend = driver.backend;
    this.#timeoutMs = timeoutMs;
    this.#noAnswer = `no answer within ${timeoutMs} ms (options.timeoutMs)`;
    this.#deadlines = deadlinesOf(timeoutMs);
    this.#inProcess = driver.capabilities.inProcess === true;
  }

  /** close() was called: every call is refused. */
  get closed(): boolean {
    return this.#closing !== null;
  }

  /** Wait for the calls in flight, then release the driver (bounded like a call); once. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Pending calls are bounded by their own timeouts (in-process ones cannot hang).
      if (this.#active > 0)
        await new Promise<void>((resolve) => {
          this.#idle = resolve;
        });
      // Only a driver that was ever asked to initialise holds resources worth releasing.
      if (this.#initStarted) {
        // Releasing a connection to a backend that went away must not hang the caller's
        // shutdown either: it gets the same bound as a call.
        const released = (async () => {
          await Promise.allSettled([this.#creating, this.#probing]);
          await this.#driver.close();
        })();
        await this.#timed(
          released,
          `close did not finish within ${this.#timeoutMs} ms (options.timeoutMs); its connections may stay open until the process exits`,
          (error, reject) => reject(this.#typed(error, true)),
        );
      }
    })();
    return this.#closing;
  }

  /** Run one public call: refuse after close, init once, bound its time, type its failures. */
  call<T>(body: () => Promise<T>): Promise<T> {
    if (this.#closing) return Promise.reject(new StoreClosedError());
    this.#active++;
    return this.#inProcess ? this.#direct(body) : this.#withTimeout(body);
  }

  /** One call fewer in flight; wakes close() when none is left. */
  readonly #settled = (): void => {
    if (--this.#active === 0 && this.#idle) {
      const idle = this.#idle;
      this.#idle = null;
      idle();
    }
  };

  /**
   * Start `body`: its synchronous prefix (validation, then driverFor() at most) runs now, so
   * right after this returns #reachedBackend tells whether a failure came from the backend. The
   * prologue of both kinds of call (#direct, #withTimeout).
   */
  #begin<T>(body: () => Promise<T>): Promise<T> {
    this.#reachedBackend = false;
    try {
      return body();
    } catch (error) {
      // A body that is not async (a batch validating its keys) can throw synchronously.
      return Promise.reject(error);
    }
  }

  /**
   * A call of an in-process driver: no timer (it cannot hang on a network), no wrapper promise,
   * only its failures typed. `#withTimeout` is the networked twin; the two differ only in the
   * timer and in how often a failure waits for the event loop (see #yieldDue). Its handlers are
   * built once per store, not per call.
   */
  #direct<T>(body: () => Promise<T>): Promise<T> {
    const running = this.#begin(body);
    return running.then(
      this.#directSettled as (value: T) => T,
      this.#reachedBackend ? this.#directFailedAtBackend : this.#directFailedBefore,
    );
  }

  readonly #directSettled = (value: unknown): unknown => {
    this.#settled();
    return value;
  };

  /** A failure before the backend was reached (an argument): rejected at once. */
  readonly #directFailedBefore = (error: unknown): never => {
    this.#settled();
    throw this.#typed(error, false);
  };

  /** A failure from the backend: at once, but for one in MAX_FAILURES_PER_TURN (#yieldDue). */
  readonly #directFailedAtBackend = (error: unknown): Promise<never> => {
    this.#settled();
    const typed = this.#typed(error, true);
    if (!this.#yieldDue()) throw typed;
    return new Promise<never>((_, reject) => setImmediate(reject, typed));
  };

  /**
   * Whether this failure must wait for the event loop's next turn. A caller retrying an
   * in-process store in a tight loop (`while (conflict) retry`) would otherwise never leave the
   * microtask queue, starving the timers and I/O of whatever it waits for (the holder's
   * release). Letting every failure wait a turn (as networked stores do) cost a conflict more
   * than the call itself, so in-process failures wait once per MAX_FAILURES_PER_TURN.
   */
  #yieldDue(): boolean {
    if (!this.#turnScheduled) {
      this.#turnScheduled = true;
      setImmediate(() => {
        this.#turnScheduled = false;
        this.#failuresThisTurn = 0;
      });
    }
    return ++this.#failuresThisTurn > MAX_FAILURES_PER_TURN;
  }

  /**
   * The driver, initialised for `access`. Called after validation, so bad input never waits on
   * (or touches) the backend. Null: the backend has no storage of this library, which a read
   * answers as empty and a change as "absent" — only a put creates storage.
   */
  driverFor(access: "create"): PoisonDriver | Promise<PoisonDriver>;
  driverFor(access: Access): PoisonDriver | Promise<PoisonDriver | null>;
  driverFor(access: Access): PoisonDriver | Promise<PoisonDriver | null> {
    this.#reachedBackend = true;
    // Once initialised, hand the driver back synchronously: each call saves the promise hops of
    // an async function (measurable on the in-process backends, see docs/BENCHMARKS.md).
    if (this.#created || (this.#found && access === "read")) return this.#driver;
    if (access === "create") return this.#create().then(() => this.#driver);
    return this.#probe().then(async (exists) => {
      if (!exists) return null;
      if (access === "change") await this.#create();
      return this.#driver;
    });
  }

  /** init({ create: true }) once; a failure is retried by the next call (the backend may come
   *  back). */
  #create(): Promise<void> {
    if (!this.#creating) {
      this.#initStarted = true;
      const attempt = this.#driver.init({ create: true }).then(() => {
        this.#created = true;
      });
      this.#creating = attempt;
      attempt.catch(() => {
        if (this.#creating === attempt) this.#creating = null;
      });
    }
    return this.#creating;
  }

  /** init({ create: false }): whether storage exists, creating nothing. "Exists" is remembered;
   *  "absent" is asked again next time (another process may create it meanwhile). */
  #probe(): Promise<boolean> {
    if (!this.#probing) {
      this.#initStarted = true;
      const attempt = this.#driver.init({ create: false });
      this.#probing = attempt;
      const forget = () => {
        if (this.#probing === attempt) this.#probing = null;
      };
      attempt.then((exists) => {
        if (exists) this.#found = true;
        forget();
      }, forget);
    }
    return this.#probing;
  }

  /**
   * `running`, or a BackendUnavailableError saying `timeoutMessage` if it has not settled within
   * timeoutMs; `fail` settles a failure. Bounds close(); the calls of networked drivers have
   * their own copy of it (#withTimeout). Both keep the bound in the process's shared deadline
   * queue (src/core/deadlines.ts) rather than a timer per call.
   */
  #timed<T>(
    running: Promise<T>,
    timeoutMessage: string,
    fail: (error: unknown, reject: (reason: unknown) => void) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadlines = this.#deadlines;
      const deadline = deadlines.add(() => {
        reject(new BackendUnavailableError(this.#backend, timeoutMessage));
      });
      running.then(
        (value) => {
          deadlines.settle(deadline);
          resolve(value);
        },
        (error: unknown) => {
          deadlines.settle(deadline);
          fail(error, reject);
        },
      );
    });
  }

  /**
   * A networked driver's call, bounded by timeoutMs: the call is answered (and counted as
   * settled) by whichever comes first, the driver or its deadline. #timed's twin, written out so
   * that a call allocates no more than its promise, its deadline and their handlers.
   */
  #withTimeout<T>(body: () => Promise<T>): Promise<T> {
    const running = this.#begin(body);
    const reachedBackend = this.#reachedBackend;
    return new Promise<T>((resolve, reject) => {
      const deadlines = this.#deadlines;
      const deadline = deadlines.add(() => {
        this.#settled();
        reject(new BackendUnavailableError(this.#backend, this.#noAnswer));
      });
      running.then(
        (value) => {
          if (!deadline.linked) return; // expired: the caller has its answer
          deadlines.settle(deadline);
          this.#settled();
          resolve(value);
        },
        (error: unknown) => {
          if (!deadline.linked) return;
          deadlines.settle(deadline);
          this.#settled();
          const typed = this.#typed(error, reachedBackend);
          // A failure from the backend settles only after the event loop has had a turn: a
          // caller retrying in a tight loop (a documented pattern) must not starve the client's
          // own reconnection, whose events need that turn; a client that is down can fail a
          // call without any I/O. A conflict is the server's answer to this very call, so the
          // next try needs I/O too and the loop gets its turn there: it is not delayed.
          if (reachedBackend && !(typed instanceof PoisonConflictError)) {
            setImmediate(reject, typed);
          } else {
            reject(typed);
          }
        },
      );
    });
  }

  /** Drivers throw typed errors for what they understand; anything else means the backend
   *  failed in a way we cannot interpret, so the outcome is unknown. Never fail open. */
  #typed(error: unknown, reachedBackend: boolean): PoisonStoreError {
    if (error instanceof PoisonStoreError) return error;
    const message = error instanceof Error ? error.message : String(error);
    if (!reachedBackend) {
      return new InvalidArgumentError("arguments", `could not be read (${message})`);
    }
    return new BackendUnavailableError(this.#backend, message, error);
  }
}
