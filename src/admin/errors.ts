/**
 * Every error answer of the admin service: `{ "error": { "code", "message", … } }` with the HTTP
 * status decided by the code. Library errors are mapped by their stable `code` (never by
 * message or class identity, so a second copy of the package maps the same).
 */
import { ErrorCode } from "../core/errors.js";
import { livenessOf } from "../core/liveness.js";
import type { PoisonRecord } from "../core/records.js";

/** Codes of the admin service itself, beside the library's (`ErrorCode`). */
export const AdminErrorCode = {
  Unauthenticated: "UNAUTHENTICATED",
  Forbidden: "FORBIDDEN",
  NotFound: "NOT_FOUND",
  MethodNotAllowed: "METHOD_NOT_ALLOWED",
  PayloadTooLarge: "PAYLOAD_TOO_LARGE",
  UnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
  TooManyRequests: "TOO_MANY_REQUESTS",
  Internal: "INTERNAL",
} as const;

/** A refusal the service answers on purpose. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    message: string,
    details: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.headers = headers;
  }
}

export function invalidArgument(argument: string, reason: string): HttpError {
  return new HttpError(400, ErrorCode.InvalidArgument, `invalid ${argument}: ${reason}`, {
    argument,
    reason,
  });
}

const STATUS_BY_CODE: Record<string, number> = {
  [ErrorCode.InvalidArgument]: 400,
  [ErrorCode.PoisonNotFound]: 404,
  [ErrorCode.PoisonConflict]: 409,
  [ErrorCode.HolderAlive]: 409,
  [ErrorCode.BackendUnavailable]: 503,
  [ErrorCode.BackendConfiguration]: 503,
  [ErrorCode.StoreClosed]: 503,
  // The store opens read-only (the greptimedb layout without allowWrite): not this caller's role.
  [ErrorCode.ReadOnlyStore]: 403,
};

interface CodedError {
  code: string;
  message: string;
  [field: string]: unknown;
}

function isCoded(error: unknown): error is CodedError {
  return (
    error instanceof Error &&
    typeof (error as { code?: unknown }).code === "string" &&
    (error as unknown as { code: string }).code in STATUS_BY_CODE
  );
}

/** The status, body and headers for anything thrown while answering; null for an unexpected
 *  error (the caller logs it and answers 500 without details). */
export function describeFailure(
  error: unknown,
  now: Date,
): {
  status: number;
  body: { error: Record<string, unknown> };
  headers: Record<string, string>;
} | null {
  if (error instanceof HttpError) {
    return {
      status: error.status,
      body: { error: { code: error.code, message: error.message, ...error.details } },
      headers: error.headers,
    };
  }
  if (!isCoded(error)) return null;
  const status = STATUS_BY_CODE[error.code] as number;
  const body: Record<string, unknown> = { code: error.code, message: error.message };
  const headers: Record<string, string> = {};
  switch (error.code) {
    case ErrorCode.InvalidArgument:
      body.argument = error.argument;
      body.reason = error.reason;
      break;
    case ErrorCode.ReadOnlyStore:
      body.operation = error.operation;
      body.byAllowWrite = error.byAllowWrite;
      break;
    case ErrorCode.PoisonConflict:
      body.key = error.key;
      body.token = error.token;
      body.holder = error.holder;
      if (error.holderRecord) body.record = error.holderRecord;
      break;
    case ErrorCode.HolderAlive: {
      body.key = error.key;
      const record = error.record as PoisonRecord | undefined;
      if (record) {
        body.record = record;
        body.liveness = livenessOf(record, now);
      }
      break;
    }
    case ErrorCode.PoisonNotFound:
      body.key = error.key;
      break;
    case ErrorCode.BackendUnavailable:
      body.backend = error.backend;
      headers["retry-after"] = "1";
      break;
    case ErrorCode.BackendConfiguration:
      body.backend = error.backend;
      body.setting = error.setting;
      break;
  }
  return { status, body: { error: body }, headers };
}
