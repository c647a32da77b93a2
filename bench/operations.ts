/**
 * The measured operations, each written once for our store and once for the baseline. Every
 * operation checks its own answer, on both sides alike, so a fast wrong answer cannot pass.
 */
import { PoisonConflictError, type PoisonStoreClient } from "../src/index.js";
import type { Baseline } from "./baselines/baseline.js";
import type { Operation } from "./measure.js";

export const OPERATION_NAMES = [
  "tryPutPoison+deletePoison",
  "getPoison",
  "tryPutPoison-conflict",
  "guard.run",
] as const;
export type OperationName = (typeof OPERATION_NAMES)[number];

/** The minimal shape of SPEC §5's guard that the benchmark uses. */
export interface GuardLike {
  run(
    spec: { keys: string[]; token: string; operation?: string },
    body: () => Promise<unknown>,
  ): Promise<unknown>;
}
type GuardConstructor = new (store: PoisonStoreClient) => GuardLike;

/** The guard when src/index.ts exports it (it is built on another branch), else why not. */
export async function loadGuard(): Promise<GuardConstructor | string> {
  const exported: Record<string, unknown> = await import("../src/index.js");
  const ctor = exported.PoisonGuard;
  return typeof ctor === "function"
    ? (ctor as GuardConstructor)
    : "PoisonGuard is not exported by src/index.ts in this build";
}

export const TOKEN = "bench-token";
export const HOLDER = "bench-holder";
const OTHER = "bench-other";
export const PRESENT_KEY = "present";
export const HELD_KEY = "held";

export interface Sides {
  ours: Operation | string;
  baseline: Operation;
}

/** `prefix` keeps the baseline's keys apart in shared tables; `cell` keeps fresh keys distinct
 *  between measurements. */
export function operationSides(
  name: OperationName,
  store: PoisonStoreClient | string,
  guard: GuardLike | string,
  baseline: Baseline,
  prefix: string,
  cell: string,
): Sides {
  const fresh = (seq: number) => `fresh/${cell}/${seq}`;
  switch (name) {
    case "tryPutPoison+deletePoison":
      return {
        ours:
          typeof store === "string"
            ? store
            : async (seq) => {
                const key = fresh(seq);
                await store.tryPutPoison(key, TOKEN);
                await store.deletePoison(key, TOKEN);
              },
        baseline: (seq) => baselinePutDelete(baseline, prefix + fresh(seq)),
      };
    case "getPoison":
      return {
        ours:
          typeof store === "string"
            ? store
            : async () => {
                if ((await store.getPoison(PRESENT_KEY)) !== HOLDER)
                  throw new Error("wrong holder");
              },
        baseline: async () => {
          if ((await baseline.get(prefix + PRESENT_KEY)) !== HOLDER)
            throw new Error("wrong holder");
        },
      };
    case "tryPutPoison-conflict":
      return {
        ours:
          typeof store === "string"
            ? store
            : async () => {
                try {
                  await store.tryPutPoison(HELD_KEY, OTHER);
                } catch (error) {
                  if (error instanceof PoisonConflictError && error.holder === HOLDER) return;
                  throw error;
                }
                throw new Error("the conflicting put succeeded");
              },
        baseline: async () => {
          if ((await baseline.tryPut(prefix + HELD_KEY, OTHER)) !== HOLDER)
            throw new Error("the conflicting put did not return the holder");
        },
      };
    case "guard.run":
      return {
        ours:
          typeof store === "string"
            ? store
            : typeof guard === "string"
              ? guard
              : async (seq) => {
                  await guard.run(
                    { keys: [fresh(seq)], token: TOKEN, operation: "bench" },
                    async () => undefined,
                  );
                },
        // A no-op guarded run costs at least a put and a delete: that pair is its baseline.
        baseline: (seq) => baselinePutDelete(baseline, prefix + fresh(seq)),
      };
  }
}

async function baselinePutDelete(baseline: Baseline, key: string): Promise<void> {
  if ((await baseline.tryPut(key, TOKEN)) !== null) throw new Error("fresh key was held");
  if ((await baseline.delete(key, TOKEN)) !== null) throw new Error("delete by the holder failed");
}
