/**
 * Liveness of a holder (SPEC §7). A poison key never expires, but its record tells an operator
 * whether the operation holding it is still alive: the guard writes `heartbeatIntervalMs` and
 * refreshes `heartbeatAt` every interval. Nothing deletes a key because it is stale; staleness
 * only decides what an operator may clear without `evenIfAlive`.
 */
import type { PoisonRecord } from "./records.js";

/** A record is live while its last heartbeat is younger than this many intervals. */
export const LIVENESS_FACTOR = 3;

/** Default extra allowance, on top of the liveness window, for the clocks of the holder and of
 *  whoever force-deletes disagreeing (store option `clockSkewMs`). */
export const DEFAULT_CLOCK_SKEW_MS = 5000;

export interface Liveness {
  /** Has `heartbeatAt` and `heartbeatIntervalMs`, and now − heartbeatAt < 3 × interval. */
  live: boolean;
  /** In progress and not live: its holder stopped sending heartbeats (or never sent any). */
  stale: boolean;
  /** now − heartbeatAt in ms (negative when the heartbeat is from the future), or null. */
  heartbeatAgeMs: number | null;
  heartbeatIntervalMs: number | null;
}

/** How alive the holder of `record` is at `now` (SPEC §7, exactly). */
export function livenessOf(record: PoisonRecord, now: Date): Liveness {
  const interval = validInterval(record.heartbeatIntervalMs);
  const beat = record.heartbeatAt === undefined ? Number.NaN : Date.parse(record.heartbeatAt);
  const heartbeatAgeMs = Number.isNaN(beat) ? null : now.getTime() - beat;
  const live =
    interval !== null && heartbeatAgeMs !== null && heartbeatAgeMs < LIVENESS_FACTOR * interval;
  return {
    live,
    stale: record.state === "in-progress" && !live,
    heartbeatAgeMs,
    heartbeatIntervalMs: interval,
  };
}

/**
 * Whether a forced delete must refuse: live by the SPEC rule widened by `skewMs`, so a holder
 * whose clock runs behind the operator's (its heartbeats look older than they are) is not taken
 * for dead; a heartbeat from the future (a holder clock ahead) counts as live.
 */
export function aliveForRefusal(record: PoisonRecord, now: Date, skewMs: number): boolean {
  const { heartbeatAgeMs, heartbeatIntervalMs } = livenessOf(record, now);
  if (heartbeatAgeMs === null || heartbeatIntervalMs === null) return false;
  return heartbeatAgeMs < LIVENESS_FACTOR * heartbeatIntervalMs + skewMs;
}

/** "last heartbeat 3s ago, every 1s" for messages. */
export function describeLiveness(record: PoisonRecord, now: Date): string {
  const { heartbeatAgeMs, heartbeatIntervalMs } = livenessOf(record, now);
  if (heartbeatAgeMs === null) return "no heartbeat recorded";
  const ago =
    heartbeatAgeMs < 0
      ? `${seconds(-heartbeatAgeMs)} in the future`
      : `${seconds(heartbeatAgeMs)} ago`;
  return `last heartbeat ${ago}${heartbeatIntervalMs === null ? "" : `, every ${seconds(heartbeatIntervalMs)}`}`;
}

function seconds(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  return `${s < 10 ? Math.round(s * 10) / 10 : Math.round(s)}s`;
}

function validInterval(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : null;
}
