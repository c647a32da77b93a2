/**
 * Exit codes and the mapping of every failure to one clear line plus the fix. The library's
 * errors are mapped by their stable `code`, never by message.
 */
import { ErrorCode, type PoisonStoreError } from "../core/errors.js";

/** The documented exit codes (docs/CLI.md, `poison --help`). Never renumbered. */
export const ExitCode = {
  Ok: 0,
  /** An unexpected error, a declined confirmation; for `check`: something matches. */
  Unexpected: 1,
  Usage: 2,
  Conflict: 3,
  NotFound: 4,
  BackendUnavailable: 5,
  /** Refused because the holder is live (its heartbeat is recent). */
  HolderAlive: 6,
  /** Ctrl-C at a prompt (128 + SIGINT, as a shell reports it). */
  Interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** `check` found something: the same number as an unexpected error, documented for check. */
export const CHECK_MATCHED = ExitCode.Unexpected;

/** A failure the CLI reports on purpose: what went wrong, how to fix it, and the exit code. */
export class CliError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  readonly fix: string | undefined;
  /** Extra fields for the `--json` error document (for example the current holder). */
  readonly details: Record<string, unknown>;
  /** Set when a streamed `--json` document already carries this error (so none is added). */
  inJsonDocument = false;

  constructor(
    code: string,
    exitCode: ExitCode,
    message: string,
    fix?: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CliError";
    this.code = code;
    this.exitCode = exitCode;
    this.fix = fix;
    this.details = details;
  }
}

/** Where a command looked, for `--json` errors: every error document names the store. */
export interface ErrorWhere {
  store: string | null;
  namespace: string | null;
  context: string | null;
}

/** The `error` object of a `--json` document. */
export function errorJson(error: CliError, where?: ErrorWhere): Record<string, unknown> {
  return {
    code: error.code,
    exitCode: error.exitCode,
    message: error.message,
    fix: error.fix ?? null,
    ...(where ?? {}),
    ...error.details,
  };
}

/** A command line that cannot be run as written. */
export function usageError(message: string, fix: string): CliError {
  return new CliError("USAGE", ExitCode.Usage, message, fix);
}

/** The exit code for a library error's `code`. */
export function exitCodeOf(code: string): ExitCode {
  switch (code) {
    case ErrorCode.PoisonConflict:
      return ExitCode.Conflict;
    case ErrorCode.PoisonNotFound:
      return ExitCode.NotFound;
    case ErrorCode.BackendUnavailable:
    case ErrorCode.BackendConfiguration:
      return ExitCode.BackendUnavailable;
    case ErrorCode.InvalidArgument:
    case ErrorCode.ReadOnlyStore:
      return ExitCode.Usage;
    case ErrorCode.HolderAlive:
      return ExitCode.HolderAlive;
    default:
      return ExitCode.Unexpected;
  }
}

/** What the mapping needs to know about the command that failed. */
export interface FailureContext {
  /** The command's name, for `poison CMD --help`. */
  command?: string | undefined;
  /** A read-only command: nothing was written, so nothing is "unknown" after a failure. */
  readOnly?: boolean;
  /** Where the time limit came from: `--timeout 2000`, `timeoutMs of context "prod"`, or
   *  undefined for the default. */
  timeoutSource?: string | undefined;
  /** `--store …` (and `--namespace …`) as the fix should print them. */
  storeFlags?: string;
}

/** Turn anything thrown into a CliError. */
export function toCliError(error: unknown, failure: FailureContext = {}): CliError {
  if (isInstance(error, CliError)) return error;
  const help = failure.command ? `poison ${failure.command} --help` : "poison --help";
  if (isPoisonStoreError(error)) {
    return new CliError(
      error.code,
      exitCodeOf(error.code),
      messageFor(error, failure),
      fixFor(error, help, failure),
      {},
      { cause: error },
    );
  }
  const message = describe(error);
  return new CliError(
    "UNEXPECTED",
    ExitCode.Unexpected,
    `unexpected error: ${message}`,
    "rerun with --verbose to see the stack trace, and report it if it persists",
    {},
    { cause: error },
  );
}

/** The library's "retry with the same token" sentence, which a read-only command must not say. */
const OUTCOME_UNKNOWN =
  /\s*The outcome is unknown; retry with the same token once the backend answers\./;

function messageFor(error: PoisonStoreError, failure: FailureContext): string {
  let message = error.message;
  if (error.code === ErrorCode.BackendUnavailable) {
    // The library names its own option; the operator set (or did not set) a flag.
    message = message.replaceAll(
      "(options.timeoutMs)",
      failure.timeoutSource
        ? `(${failure.timeoutSource})`
        : "(the default; --timeout MS waits longer)",
    );
    if (failure.readOnly)
      message = message.replace(OUTCOME_UNKNOWN, " Nothing was changed (this command only reads).");
    else
      message = message.replace(
        OUTCOME_UNKNOWN,
        " The outcome is unknown: the change may or may not have been applied.",
      );
  }
  return message;
}

function fixFor(
  error: PoisonStoreError,
  help: string,
  failure: FailureContext,
): string | undefined {
  const flags = failure.storeFlags ?? "";
  switch (error.code) {
    case ErrorCode.InvalidArgument:
      return `correct the argument; see \`${help}\``;
    case ErrorCode.BackendUnavailable: {
      const where = flags
        ? `the backend (${flags.trim()})`
        : "the backend named by --store (or POISON_STORE_URL, or the context)";
      const wait = failure.timeoutSource?.startsWith("--timeout")
        ? "a larger --timeout MS waits longer"
        : "--timeout MS waits longer";
      return failure.readOnly
        ? `check that ${where} is reachable, then run the command again; ${wait}`
        : `check that ${where} is reachable, then run the same command again (it is idempotent; \`poison show KEY${flags}\` shows what it did); ${wait}`;
    }
    case ErrorCode.BackendConfiguration:
      return configurationFix((error as PoisonStoreError & { setting?: unknown }).setting, flags);
    case ErrorCode.PoisonNotFound:
      return `list what is there with \`poison list${flags}\`; check --store and --namespace`;
    case ErrorCode.PoisonConflict:
      return `inspect the key with \`poison show KEY${flags}\` before acting on this resource`;
    case ErrorCode.ReadOnlyStore:
      return (error as { byAllowWrite?: unknown }).byAllowWrite === true
        ? `once \`poison show KEY${flags}\` and the runbook in docs/GREPTIMEDB.md say to clear, run the command again with --allow-write`
        : "this layout never does that on this backend (docs/GREPTIMEDB.md); clearing works with --allow-write";
    case ErrorCode.StoreClosed:
      return "this is a bug in the CLI; rerun with --verbose and report it";
    default:
      return `rerun with --verbose for details; see \`${help}\``;
  }
}

/** What to change, by the setting a BackendConfigurationError names: never "retry". */
function configurationFix(setting: unknown, flags: string): string {
  const where = flags ? ` (${flags.trim()})` : "";
  switch (setting) {
    case "password":
    case "user":
      return `correct the user or password of the store URL${where}, or the variable its context's passwordEnv names; retrying will not help`;
    case "database":
      return `create the database, or correct its name in the store URL${where}; retrying will not help`;
    case "maxmemory-policy":
      return "set maxmemory-policy to noeviction (or a volatile-* policy) on the Redis server, or accept the risk with ?allowEviction=true in the URL; retrying will not help";
    default:
      return typeof setting === "string" && setting.startsWith("tls")
        ? `correct the TLS setting ${setting} of the store URL${where} (certificate authority, client certificate, server name); retrying will not help`
        : `correct the backend's ${typeof setting === "string" ? setting : "configuration"}${where}; retrying will not help`;
  }
}

/** A thrown value as text, without ever throwing (a hostile value's getters may). */
export function describe(value: unknown): string {
  try {
    if (value instanceof Error) return String(value.message);
    return String(value);
  } catch {
    return "(a value that cannot be described)";
  }
}

/** `instanceof` that answers false instead of throwing (a revoked proxy throws on it). */
export function isInstance<T>(
  value: unknown,
  type: abstract new (...args: never[]) => T,
): value is T {
  try {
    return value instanceof type;
  } catch {
    return false;
  }
}

/** Duck-typed so that a second copy of the package (another `instanceof`) still maps right. */
function isPoisonStoreError(error: unknown): error is PoisonStoreError {
  try {
    return (
      error instanceof Error &&
      (Object.values(ErrorCode) as unknown[]).includes((error as { code?: unknown }).code)
    );
  } catch {
    return false;
  }
}
