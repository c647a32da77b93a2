/**
 * Input validation shared by every backend: the runtime checks every argument before a driver
 * sees it, so drivers never re-implement it and a rejected call never touches the backend.
 */
import { InvalidArgumentError } from "./errors.js";

export const MAX_KEY_BYTES = 1024;
export const MAX_TOKEN_BYTES = 256;
export const MAX_NAMESPACE_BYTES = 256;
/** Operation, owner, actor. */
export const MAX_LABEL_BYTES = 256;
/** Audit reasons and error messages. */
export const MAX_TEXT_BYTES = 4096;
/** Error stacks are truncated, not rejected, to this many bytes. */
export const MAX_STACK_BYTES = 16384;
/** `data` once serialized as JSON. */
export const MAX_DATA_BYTES = 65536;
export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;

const encoder = new TextEncoder();

export function utf8Length(value: string): number {
  // Fast path: ASCII-only strings are their own length in bytes.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the range is the point
  if (!/[^\u0000-\u007f]/.test(value)) return value.length;
  return encoder.encode(value).length;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the range is the point
const NOT_PLAIN_ASCII = /[^\u0001-\u007f]/;

/** The reason `value` is not well-formed text we can store verbatim everywhere, or null. */
function textProblem(value: string): string | null {
  if (value.includes("\u0000")) return "must not contain a NUL character";
  if (!value.isWellFormed()) return "must not contain a lone UTF-16 surrogate";
  return null;
}

/** Check a required string argument: type, non-empty, well-formed, byte length. */
export function checkString(
  argument: string,
  value: unknown,
  maxBytes: number,
  allowEmpty = false,
): string {
  if (typeof value !== "string") {
    throw new InvalidArgumentError(argument, `must be a string, got ${describe(value)}`);
  }
  if (value.length === 0) {
    if (allowEmpty) return value;
    throw new InvalidArgumentError(argument, "must not be empty");
  }
  // Fast path, no byte count: a UTF-16 unit is at most 3 UTF-8 bytes, so a string this short
  // fits whatever it holds; only a NUL or a lone surrogate could still refuse it. Both checks are
  // builtins (a regular expression cost about three times as much, measured in instructions).
  if (value.length * 3 <= maxBytes && !value.includes("\u0000") && value.isWellFormed())
    return value;
  // One scan: ASCII without NUL is well-formed and one byte per character.
  if (!NOT_PLAIN_ASCII.test(value)) {
    if (value.length <= maxBytes) return value;
  }
  const problem = textProblem(value);
  if (problem) throw new InvalidArgumentError(argument, problem);
  const bytes = utf8Length(value);
  if (bytes > maxBytes) {
    throw new InvalidArgumentError(
      argument,
      `must be at most ${maxBytes} UTF-8 bytes, got ${bytes}`,
    );
  }
  return value;
}

export function checkKey(value: unknown, argument = "key"): string {
  return checkString(argument, value, MAX_KEY_BYTES);
}

export function checkToken(value: unknown, argument = "token"): string {
  return checkString(argument, value, MAX_TOKEN_BYTES);
}

/** An optional string field: undefined passes, anything else is checked. */
export function checkOptionalString(
  argument: string,
  value: unknown,
  maxBytes: number,
): string | undefined {
  return value === undefined ? undefined : checkString(argument, value, maxBytes);
}

/** A non-empty list of distinct keys. */
export function checkKeys(value: unknown, argument = "keys", max = MAX_PAGE_SIZE): string[] {
  if (!Array.isArray(value))
    throw new InvalidArgumentError(argument, `must be an array of keys, got ${describe(value)}`);
  if (value.length === 0) throw new InvalidArgumentError(argument, "must name at least one key");
  if (value.length > max) {
    throw new InvalidArgumentError(
      argument,
      `must name at most ${max} keys on this backend, got ${value.length}`,
    );
  }
  // An index loop, not map(): map skips the holes of a sparse array, which would let
  // `[, "k"]` through with an undefined key.
  const keys: string[] = [];
  for (let i = 0; i < value.length; i++) {
    if (!(i in value))
      throw new InvalidArgumentError(`${argument}[${i}]`, "is a hole in the array");
    keys.push(checkKey(value[i], `${argument}[${i}]`));
  }
  if (keys.length > 1 && new Set(keys).size !== keys.length)
    throw new InvalidArgumentError(argument, "must not repeat a key");
  return keys;
}

/** Serialize `data` to a JSON value we can store on every backend, or throw. */
export function checkData(argument: string, value: unknown): unknown {
  if (value === undefined) return undefined;
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new InvalidArgumentError(
      argument,
      `must be JSON-serializable (${(error as Error).message})`,
    );
  }
  if (json === undefined)
    throw new InvalidArgumentError(argument, `must be JSON-serializable, got ${describe(value)}`);
  const bytes = utf8Length(json);
  if (bytes > MAX_DATA_BYTES) {
    throw new InvalidArgumentError(
      argument,
      `must be at most ${MAX_DATA_BYTES} bytes as JSON, got ${bytes}`,
    );
  }
  return JSON.parse(json);
}

/** The longest delay Node's timers honour: larger values are silently clamped to 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A duration in milliseconds: a finite number from 1 (0 with `allowZero`) up to
 * {@link MAX_TIMER_MS}, so that no timer built from it fires at once by accident. `fallback` is
 * returned for undefined.
 */
export function checkDuration(
  argument: string,
  value: unknown,
  fallback: number,
  options: { allowZero?: boolean } = {},
): number {
  if (value === undefined) return fallback;
  // A timer shorter than 1 ms fires after 1 ms anyway: a positive duration below it is a mistake
  // (a heartbeat every 1e-9 ms would write as fast as the store answers).
  const floor = options.allowZero ? 0 : 1;
  if (
    typeof value !== "number" ||
    !Number.isFinite(value) ||
    value < floor ||
    value > MAX_TIMER_MS
  ) {
    throw new InvalidArgumentError(
      argument,
      `must be a number of milliseconds from ${floor} to ${MAX_TIMER_MS} (about 24.8 days), got ${describe(value)}`,
    );
  }
  return value;
}

/**
 * A duration that is written into a record (`heartbeatIntervalMs`): checked as
 * {@link checkDuration}, then rounded up to a whole millisecond, because SQL backends keep it
 * in an integer column and every backend must read back the same value. Rounding up only ever
 * makes a key look alive a fraction of a millisecond longer, never stale too early.
 */
export function checkRecordedInterval(argument: string, value: unknown): number {
  return Math.ceil(checkDuration(argument, value, 0));
}

/** A whole number in 1..`max`, or `fallback` when absent (a count option such as maxKeys). */
export function checkCount(
  argument: string,
  value: unknown,
  fallback: number,
  max: number,
): number {
  const count = value ?? fallback;
  if (typeof count !== "number" || !Number.isInteger(count) || count < 1 || count > max)
    throw new InvalidArgumentError(argument, `must be a whole number 1..${max}`);
  return count;
}

export function checkLimit(value: unknown, argument = "limit"): number {
  if (value === undefined) return DEFAULT_PAGE_SIZE;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_PAGE_SIZE) {
    throw new InvalidArgumentError(
      argument,
      `must be an integer from 1 to ${MAX_PAGE_SIZE}, got ${describe(value)}`,
    );
  }
  return value;
}

export function checkNamespace(value: unknown): string {
  return checkString("namespace", value, MAX_NAMESPACE_BYTES, true);
}

/** Plain objects only, so a typo'd string or array is caught. */
export function checkObject(
  argument: string,
  value: unknown,
  optional: boolean,
): Record<string, unknown> | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(argument, `must be an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `a string of length ${value.length}`;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return `${typeof value} ${String(value)}`;
  }
  return typeof value;
}
