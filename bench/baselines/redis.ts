/**
 * TODO(lead): the redis baseline is not written yet, because the client library for the redis
 * driver is not chosen yet. Write it with the same client and the same atomic step as the driver
 * (see baseline.ts for the interface and postgres.ts for an example), then return it here.
 * Until then the backend is reported as skipped: no figure is ever made up.
 */
import type { BaselineUnavailable } from "./baseline.js";

export function redisBaseline(_url: string): BaselineUnavailable {
  return { skipped: "baseline not written yet" };
}
