/**
 * One timer for every call in flight that shares a bound, instead of a `setTimeout` and a
 * `clearTimeout` per call.
 *
 * Used for the bounds of calls in flight (the runtime, the SQL core, the etcd gateway's
 * requests) and for the guard's heartbeats (src/guard/heartbeat.ts, a deadline that queues the
 * next one when it expires).
 *
 * Why: a networked call of this library is bounded twice (the runtime's `timeoutMs`, and the
 * SQL core's bound on taking and using a connection). Node's timers cost some 4,000
 * instructions a pair more than this queue, most of it in creating and tearing down Node's
 * per-duration timer list whenever it empties, which at concurrency 1 is every call (see
 * docs/BENCHMARKS.md, "Counted in instructions").
 *
 * How: calls that share a bound `ms` expire in the order they started, so one FIFO list per
 * `ms` is also ordered by deadline. One Node timer is armed for the oldest call; when it fires
 * it expires every call that is due and arms itself again for the next one. A call that
 * settles unlinks itself (O(1)). The timer holds the process open exactly while some call is
 * pending (ref'd while the list is non-empty, unref'd when it empties), as a per-call timer did.
 */

/** A call's place in a queue: hand it back to `settle` when the call settles first. */
export interface Deadline {
  /** performance.now() at which the call expires. */
  readonly at: number;
  /** Called once if the call has not settled by `at`. */
  readonly expire: () => void;
  prev: Deadline | null;
  next: Deadline | null;
  /** In the queue: neither settled nor expired. */
  linked: boolean;
}

/** Timers may fire this much before their nominal time by Node's cached loop clock; a call due
 *  within it is taken as due rather than waited for with another timer. */
const EARLY_MS = 1;

export class DeadlineQueue {
  readonly #ms: number;
  #head: Deadline | null = null;
  #tail: Deadline | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** Whether #timer holds the process open. */
  #refed = false;

  constructor(ms: number) {
    this.#ms = ms;
  }

  /** Start bounding a call: `expire` runs if `settle` has not been called within `ms`. */
  add(expire: () => void): Deadline {
    const deadline: Deadline = {
      at: performance.now() + this.#ms,
      expire,
      prev: this.#tail,
      next: null,
      linked: true,
    };
    if (this.#tail === null) {
      this.#head = deadline;
      this.#holdOpen();
    } else {
      this.#tail.next = deadline;
    }
    this.#tail = deadline;
    return deadline;
  }

  /** The call settled: it will not expire. Idempotent. */
  settle(deadline: Deadline): void {
    if (!deadline.linked) return;
    this.#unlink(deadline);
    if (this.#head === null) this.#letGo();
  }

  #unlink(deadline: Deadline): void {
    deadline.linked = false;
    const { prev, next } = deadline;
    if (prev === null) this.#head = next;
    else prev.next = next;
    if (next === null) this.#tail = prev;
    else next.prev = prev;
    deadline.prev = null;
    deadline.next = null;
  }

  /** A call is pending: make sure a timer will fire by the oldest deadline and holds the
   *  process open. An armed timer always fires by the head's deadline: the head only ever
   *  moves to a later call. */
  #holdOpen(): void {
    if (this.#timer === null) {
      this.#timer = setTimeout(this.#fire, this.#ms);
      this.#refed = true;
    } else if (!this.#refed) {
      this.#timer.ref();
      this.#refed = true;
    }
  }

  /** No call is pending: the armed timer may still fire (and find nothing), but must not keep
   *  the process alive. Cheaper than clearing it: the next call usually comes at once. */
  #letGo(): void {
    if (this.#refed && this.#timer !== null) {
      this.#timer.unref();
      this.#refed = false;
    }
  }

  readonly #fire = (): void => {
    this.#timer = null;
    this.#refed = false;
    const now = performance.now();
    // Only calls queued before this round: one that an `expire` adds (a heartbeat's next beat)
    // waits for the next round, however short its bound.
    const last = this.#tail;
    // Node may fire a fraction of a millisecond before performance.now() reaches `at`.
    for (let due = this.#head; due !== null && due.at <= now + EARLY_MS; due = this.#head) {
      this.#unlink(due);
      due.expire();
      if (due === last) break;
    }
    const head = this.#head;
    // An `expire` that added a call to an emptied queue armed a timer already.
    if (head !== null && this.#timer === null) {
      this.#timer = setTimeout(this.#fire, Math.max(1, Math.ceil(head.at - now)));
      this.#refed = true;
    }
  };
}

const queues = new Map<number, DeadlineQueue>();

/** The process's queue for bound `ms` (created on first use; one per distinct bound). */
export function deadlinesOf(ms: number): DeadlineQueue {
  let queue = queues.get(ms);
  if (queue === undefined) {
    queue = new DeadlineQueue(ms);
    queues.set(ms, queue);
  }
  return queue;
}
