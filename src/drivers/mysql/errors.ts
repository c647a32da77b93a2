/**
 * The MySQL/MariaDB server error numbers the drivers act on, in one place, and the test for them.
 * (The classification of connection and privilege failures is in src/drivers/mysql/connection.ts.)
 */
export const ER = {
  TABLE_EXISTS: 1050,
  DUP_FIELDNAME: 1060,
  DUP_KEYNAME: 1061,
  TABLEACCESS_DENIED: 1142,
  COLUMNACCESS_DENIED: 1143,
  NO_SUCH_TABLE: 1146,
  LOCK_WAIT_TIMEOUT: 1205,
  LOCK_DEADLOCK: 1213,
  SP_ALREADY_EXISTS: 1304,
  TRG_ALREADY_EXISTS: 1359,
} as const;

/** True when `error` is a server error with one of these numbers. */
export function isServerError(error: unknown, ...errnos: number[]): boolean {
  const errno = (error as { errno?: unknown } | null)?.errno;
  return typeof errno === "number" && errnos.includes(errno);
}
