/**
 * The two retry shapes the library uses, written once: a retry with backoff for steps that may
 * fail transiently, and the optimistic read-decide-commit loop of compare-and-set writes.
 */

/** Backoff of one retry loop. */
export interface BackoffOptions {
  /** Executions in all, the first included; 1 means never retry. */
  maxAttempts: number;
  /** The first delay, and the floor of every delay. */
  minDelayMs: number;
  /** The ceiling of every delay. */
  maxDelayMs: number;
}

/** The delay before attempt `failed + 1`: exponential from minDelayMs, capped at maxDelayMs,
 *  with "equal jitter" (a random point in the upper half) so racing retries spread out. */
export function backoffDelay(
  options: BackoffOptions,
  failed: number,
  random: () => number = Math.random,
): number {
  const cap = Math.min(options.maxDelayMs, options.minDelayMs * 2 ** (failed - 1));
  const jittered = cap * (0.5 + 0.5 * Math.min(Math.max(random(), 0), 1));
  return Math.round(Math.max(options.minDelayMs, Math.min(jittered, options.maxDelayMs)));
}

/** Wait `ms`; resolves false early (and at once) if `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
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

export interface RetryOptions extends BackoffOptions {
  /** Whether a failure may be retried (attempts permitting). */
  shouldRetry(error: unknown, attempt: number): boolean;
  /** Called before each wait. */
  onRetry?(error: unknown, attempt: number, delayMs: number): void;
  /** Stops the waiting: the last failure is thrown. */
  signal?: AbortSignal;
  random?: () => number;
}

/** Run `step` until it succeeds, a failure may not be retried, or the attempts run out. */
export async function retry<T>(step: (attempt: number) => Promise<T>, options: RetryOptions) {
  try {
    return await step(1);
  } catch (error) {
    return retryAfter(step, options, 1, error);
  }
}

/**
 * The rest of {@link retry}'s loop once attempt `failed` has failed with `error`: for callers
 * that run the first attempt themselves (most first attempts succeed, and then neither the loop
 * nor its options are needed).
 */
export async function retryAfter<T>(
  step: (attempt: number) => Promise<T>,
  options: RetryOptions,
  failed: number,
  error: unknown,
): Promise<T> {
  let last = error;
  for (let attempt = failed; ; attempt++) {
    if (attempt >= options.maxAttempts || !options.shouldRetry(last, attempt)) throw last;
    const delayMs = backoffDelay(options, attempt, options.random);
    options.onRetry?.(last, attempt, delayMs);
    if (!(await sleep(delayMs, options.signal))) throw last;
    try {
      return await step(attempt + 1);
    } catch (next) {
      last = next;
    }
  }
}

/** What one pass of an optimistic loop decided. */
export type Decision<T> = { done: true; value: T } | { done: false };

/**
 * Read, decide, commit with a compare; when the compare fails (someone changed what was read),
 * read and decide again, up to `maxAttempts` passes. `onContended` builds the error thrown when
 * every pass lost its compare.
 */
export async function optimistic<T>(
  maxAttempts: number,
  pass: (attempt: number) => Promise<Decision<T>>,
  onContended: () => Error,
): Promise<T> {
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const decision = await pass(attempt);
    if (decision.done) return decision.value;
  }
  throw onContended();
}
