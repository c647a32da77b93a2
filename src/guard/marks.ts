/**
 * Error marks (SPEC §5). A thrown value is *marked* when it, or a value on its `cause` chain, has
 * the own property `cleanPoisons === true` or `retryable === true`. Plain objects count the same
 * as Error instances, so code that cannot import this package can mark errors by hand.
 */
import { InvalidArgumentError } from "../core/errors.js";

/** The two marks the guard reads. */
export interface ErrorMarks {
  /** The resource is known consistent: delete the poison keys instead of leaving them. */
  cleanPoisons?: boolean;
  /** The failure is transient and the body is safe to run again under the same token. */
  retryable?: boolean;
}

/** `cause` chains longer than this are not followed (a guard against pathological chains). */
const MAX_CAUSE_DEPTH = 100;

/** True when `error` or a value on its `cause` chain has the own property `mark === true`.
 *  Cycles in the chain are detected; accessors that throw count as unmarked. */
function hasMark(error: unknown, mark: keyof ErrorMarks): boolean {
  const seen = new Set<object>();
  let current: unknown = error;
  while (typeof current === "object" && current !== null && seen.size < MAX_CAUSE_DEPTH) {
    if (seen.has(current)) return false;
    seen.add(current);
    try {
      const bag = current as Record<string, unknown>;
      if (Object.hasOwn(bag, mark) && bag[mark] === true) return true;
      current = Object.hasOwn(bag, "cause") ? bag.cause : undefined;
    } catch {
      return false;
    }
  }
  return false;
}

/** True when the guard should delete the keys for this error (SPEC §5). */
export function isMarkedCleanPoisons(error: unknown): boolean {
  return hasMark(error, "cleanPoisons");
}

/** True when the guard should retry the body for this error (SPEC §5). */
export function isMarkedRetryable(error: unknown): boolean {
  return hasMark(error, "retryable");
}

function checkMarkable(error: unknown): asserts error is object {
  if ((typeof error !== "object" && typeof error !== "function") || error === null) {
    throw new InvalidArgumentError(
      "error",
      `must be an object to carry a mark, got ${error === null ? "null" : typeof error}; throw an Error`,
    );
  }
}

/** Set an own data property, or say why it cannot be set (a frozen or sealed error, a Proxy
 *  that refuses): a typed error, never a bare TypeError from the engine. */
function setMark(error: object, mark: keyof ErrorMarks): void {
  let defined = false;
  try {
    defined = Reflect.defineProperty(error, mark, {
      value: true,
      enumerable: true,
      configurable: true,
      writable: true,
    });
  } catch {
    defined = false;
  }
  if (!defined) {
    throw new InvalidArgumentError(
      "error",
      `cannot carry the ${mark} mark (it is frozen, sealed or refuses new properties); wrap it: throw ${mark === "retryable" ? "markRetryable" : "markCleanPoisons"}(new Error("…", { cause: error }))`,
    );
  }
}

/**
 * Mark `error` as transient: the guard runs the body again (same token, with backoff) while
 * attempts remain. With `{ cleanPoisons: true }`, if the attempts run out on this error the keys
 * are deleted rather than poisoned (the failed attempt left the resource consistent).
 * Returns the same object, so `throw markRetryable(err)` reads naturally.
 */
export function markRetryable<E extends object>(
  error: E,
  options: { cleanPoisons?: boolean } = {},
): E {
  checkMarkable(error);
  setMark(error, "retryable");
  if (options.cleanPoisons === true) markCleanPoisons(error);
  return error;
}

/**
 * Mark `error` as leaving the resource consistent: the guard deletes the poison keys and
 * rethrows the error unchanged. Returns the same object.
 */
export function markCleanPoisons<E extends object>(error: E): E {
  checkMarkable(error);
  setMark(error, "cleanPoisons");
  return error;
}
