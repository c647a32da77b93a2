/**
 * The heartbeat timer of a guard: one timer for all of its runs, instead of a `setInterval` per
 * run. A run's beat is a deadline in a DeadlineQueue (src/core/deadlines.ts) of the heartbeat
 * interval; when it expires it queues the next one, then ticks.
 *
 * A timer per run cost more than the rest of a no-op run on the in-process backends (creating,
 * inserting and clearing a Node timer, and the garbage it leaves: measured with `--trace-gc`,
 * scavenges took 10× longer with it). Between runs the queue's timer is kept but unreferenced,
 * so an idle guard never keeps the process alive.
 */
import { type Deadline, DeadlineQueue } from "../core/deadlines.js";

/** One run's beat: its next tick's deadline, null once stopped. */
export interface Beat {
  next: Deadline | null;
}

export class HeartbeatClock {
  readonly #queue: DeadlineQueue;

  constructor(intervalMs: number) {
    this.#queue = new DeadlineQueue(intervalMs);
  }

  /** Call `tick` every interval from now until `stop`, like `setInterval(tick, intervalMs)`. */
  start(tick: () => void): Beat {
    const queue = this.#queue;
    const beat: Beat = { next: null };
    // The next tick is queued before this one runs, so a tick may stop its own beat; a beat
    // stopped by another beat's tick in the same round is unlinked and never ticks.
    const due = () => {
      beat.next = queue.add(due);
      tick();
    };
    beat.next = queue.add(due);
    return beat;
  }

  /** No further tick of `beat`. Idempotent. */
  stop(beat: Beat): void {
    if (beat.next === null) return;
    this.#queue.settle(beat.next);
    beat.next = null;
  }
}
