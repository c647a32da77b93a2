/**
 * Observing a store's calls (`store.onCall`): every public call reports its method, duration and
 * outcome to the listeners, for metrics (`collectMetrics`) or logs. Listeners never change a
 * call: one that throws is ignored.
 */

/** The public calls a store reports, by method name. */
export const OBSERVED_CALLS = [
  "tryPutPoison",
  "deletePoison",
  "getPoison",
  "tryPutPoisons",
  "deletePoisons",
  "exists",
  "inspectPoison",
  "listPoisons",
  "markPoisoned",
  "markPoisons",
  "touchPoisons",
  "forceDeletePoison",
  "forceDeletePoisons",
  "auditLog",
] as const;

export type StoreCallName = (typeof OBSERVED_CALLS)[number];

/** One settled call. */
export interface StoreCallEvent {
  /** The store's backend: `memory`, `sqlite`, `postgres`, … */
  backend: string;
  op: StoreCallName;
  /** From the call to its settlement, in milliseconds (timeouts included). */
  durationMs: number;
  /** `ok`, or the `code` of the error it rejected with (`POISON_CONFLICT`,
   *  `BACKEND_UNAVAILABLE`, …; `ERROR` for a value without a code). */
  outcome: string;
  /** What it rejected with, when it did. */
  error?: unknown;
}

export type StoreCallListener = (event: StoreCallEvent) => void;

/** The `outcome` of a rejection. */
export function outcomeOf(error: unknown): string {
  const code =
    typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" && code !== "" ? code : "ERROR";
}
