/**
 * Exit codes and the mapping of every failure to one clear line plus the fix. The library's
 * errors are mapped by their stable `code`, never by message.
 */
import { ErrorCode, type PoisonStoreError } from "../core/errors.js";

/** The documented exit codes (docs/CLI.md, `poison --help`). Never renumbered. */
export const ExitCode = {
  Ok: 0,
  Unexpected: 1,
  Usage: 2,
  Conflict: 3,
  NotFound: 4,
  BackendUnavailable: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

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

/** The `error` object of a `--json` document. */
export function errorJson(error: CliError): Record<string, unknown> {
  return {
    code: error.code,
    exitCode: error.exitCode,
    message: error.message,
    fix: error.fix ?? null,
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
    default:
      return ExitCode.Unexpected;
  }
}

/** Turn anything thrown into a CliError; `command` names the command for the fix line. */
export function toCliError(error: unknown, command: string | undefined): CliError {
  if (error instanceof CliError) return error;
  const help = command ? `poison ${command} --help` : "poison --help";
  if (isParseArgsError(error)) {
    return new CliError(
      "USAGE",
      ExitCode.Usage,
      error.message,
      `see \`${help}\``,
      {},
      { cause: error },
    );
  }
  if (isPoisonStoreError(error)) {
    const exitCode = exitCodeOf(error.code);
    return new CliError(
      error.code,
      exitCode,
      error.message,
      fixFor(error, help),
      {},
      { cause: error },
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return new CliError(
    "UNEXPECTED",
    ExitCode.Unexpected,
    `unexpected error: ${message}`,
    "rerun with --verbose to see the stack trace, and report it if it persists",
    {},
    { cause: error },
  );
}

function fixFor(error: PoisonStoreError, help: string): string | undefined {
  switch (error.code) {
    case ErrorCode.InvalidArgument:
      return `correct the argument; see \`${help}\``;
    case ErrorCode.BackendUnavailable:
      return "check that the backend named by --store (or POISON_STORE_URL) is reachable, then retry; --timeout MS waits longer";
    case ErrorCode.BackendConfiguration:
      return `fix the backend's ${(error as { setting?: unknown }).setting ?? "setup"} as the message says (in --store, POISON_STORE_URL or on the server); running again unchanged will fail the same way`;
    case ErrorCode.PoisonNotFound:
      return "list what is there with `poison list`; check --store and --namespace";
    case ErrorCode.PoisonConflict:
      return "inspect the key with `poison show KEY` before acting on this resource";
    case ErrorCode.ReadOnlyStore:
      return (error as { byAllowWrite?: unknown }).byAllowWrite === true
        ? "once `poison show KEY` and the runbook in docs/GREPTIMEDB.md say to clear, run the command again with --allow-write"
        : "this layout never does that on this backend (docs/GREPTIMEDB.md); clearing works with --allow-write";
    default:
      return `rerun with --verbose for details; see \`${help}\``;
  }
}

/** Duck-typed so that a second copy of the package (another `instanceof`) still maps right. */
function isPoisonStoreError(error: unknown): error is PoisonStoreError {
  return (
    error instanceof Error &&
    (Object.values(ErrorCode) as unknown[]).includes((error as { code?: unknown }).code)
  );
}

function isParseArgsError(error: unknown): error is Error {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof Error && typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}
