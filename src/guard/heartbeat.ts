/**
 * The heartbeat timer of a guard: one timer for all of its runs, instead of a `setInterval` per
 * run. Every run of a guard beats at the same interval, so the runs' due times are in the order
 * the runs (re)joined: a queue, whose head's due time is the only one a timer must wait for.
 *
 * A timer per run cost more than the rest of a no-op run on the in-process backends (creating,
 * inserting and clearing a Node timer, and the garbage it leaves: measured with `--trace-gc`,
 * scavenges took 10× longer with it). Between runs the timer is kept but unreferenced, so an
 * idle guard never keeps the process alive, and the next run re-references it (a flag and a
 * counter) instead of creating one.
 */

/** One run's place in the queue. `tick` is called every `intervalMs` from `start` until `stop`. */
export interface Beat {
  /** When the next tick is due (performance.now() milliseconds). */
  due: number;
  prev: Beat | null;
  next: Beat | null;
  readonly tick: () => void;
  /** Still in the queue. */
  queued: boolean;
}

/** Timers may fire this much before their nominal time by Node's cached loop clock; a beat due
 *  within it is taken as due rather than waited for with a 0 ms timer. */
const EARLY_MS = 1;

export class HeartbeatClock {
  readonly #intervalMs: number;
  #head: Beat | null = null;
  #tail: Beat | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** The timer keeps the process alive: exactly while a beat is queued. */
  #referenced = false;

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  /** Call `tick` every interval from now until `stop`, like `setInterval(tick, intervalMs)`. */
  start(tick: () => void): Beat {
    const now = performance.now();
    const beat: Beat = {
      due: now + this.#intervalMs,
      prev: null,
      next: null,
      tick,
      queued: false,
    };
    this.#append(beat);
    // Without a timer (none yet, or a tick is starting a run) the head may be due before this
    // beat.
    if (!this.#timer) this.#arm(Math.max(1, (this.#head as Beat).due - now));
    else if (!this.#referenced) {
      this.#timer.ref();
      this.#referenced = true;
    }
    // An armed timer fires at or before this beat's due time: every beat queued before it is due
    // no later, and an idle timer was armed for one of those.
    return beat;
  }

  /** No further tick of `beat`. Idempotent. */
  stop(beat: Beat): void {
    if (!beat.queued) return;
    this.#unlink(beat);
    if (!this.#head && this.#timer && this.#referenced) {
      // Nothing to beat for: the timer stays (the next run reuses it) but no longer holds the
      // process open; if it fires meanwhile it finds the queue empty and is dropped.
      this.#timer.unref();
      this.#referenced = false;
    }
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(this.#fire, delayMs);
    this.#referenced = true;
  }

  readonly #fire = (): void => {
    this.#timer = null;
    this.#referenced = false;
    const now = performance.now();
    // Take the due beats off first, then requeue and tick them: a tick never sees a half-walked
    // queue, and a beat stopped by another beat's tick is not ticked.
    const due: Beat[] = [];
    for (let beat = this.#head; beat && beat.due <= now + EARLY_MS; beat = beat.next)
      due.push(beat);
    for (const beat of due) {
      this.#unlink(beat);
      beat.due = now + this.#intervalMs;
      this.#append(beat);
    }
    for (const beat of due) {
      if (beat.queued) beat.tick();
    }
    const head = this.#head;
    if (head && !this.#timer) this.#arm(Math.max(1, head.due - performance.now()));
  };

  #append(beat: Beat): void {
    beat.prev = this.#tail;
    beat.next = null;
    if (this.#tail) this.#tail.next = beat;
    else this.#head = beat;
    this.#tail = beat;
    beat.queued = true;
  }

  #unlink(beat: Beat): void {
    if (beat.prev) beat.prev.next = beat.next;
    else this.#head = beat.next;
    if (beat.next) beat.next.prev = beat.prev;
    else this.#tail = beat.prev;
    beat.prev = null;
    beat.next = null;
    beat.queued = false;
  }
}
