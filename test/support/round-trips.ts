/**
 * The paths of the SPEC §2 core calls, run one after another on one key, each measured by a
 * counter the driver test provides (commands, requests, statements): every networked driver
 * proves each path is one round trip with it.
 */
import { PoisonConflictError, type PoisonStoreClient } from "../../src/index.js";

export interface PathMeasure {
  label: string;
  /** How far the counter moved during the call. */
  count: number;
  ms: number;
}

/** Run the eight paths in an order where each finds the state its label names; a conflict is
 *  an expected answer. The key must be absent, and is absent again afterwards. */
export async function measureCorePaths(
  store: PoisonStoreClient,
  key: string,
  counter: () => number,
): Promise<PathMeasure[]> {
  const paths: Array<[string, () => Promise<unknown>]> = [
    ["getPoison (absent)", () => store.getPoison(key)],
    ["tryPutPoison (absent: written)", () => store.tryPutPoison(key, "a")],
    ["tryPutPoison (same token)", () => store.tryPutPoison(key, "a")],
    ["tryPutPoison (conflict)", () => store.tryPutPoison(key, "b")],
    ["getPoison (present)", () => store.getPoison(key)],
    ["deletePoison (conflict)", () => store.deletePoison(key, "b")],
    ["deletePoison (owner: deleted)", () => store.deletePoison(key, "a")],
    ["deletePoison (absent)", () => store.deletePoison(key, "a")],
  ];
  const measured: PathMeasure[] = [];
  for (const [label, call] of paths) {
    const before = counter();
    const started = performance.now();
    await call().catch((error: unknown) => {
      if (!(error instanceof PoisonConflictError)) throw error;
    });
    measured.push({
      label,
      count: counter() - before,
      ms: Math.round(performance.now() - started),
    });
  }
  return measured;
}
