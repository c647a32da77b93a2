/**
 * The measured operations, each written once for our store and once for the baseline. Every
 * operation checks its own answer, on both sides alike, so a fast wrong answer cannot pass.
 * Our writes resolve with nothing to compare (void): their effect is checked around each cell
 * instead, untimed (`cellChecks`): a put really writes and a delete really removes before the
 * cell, no measured key is left behind and the held key is unchanged after it.
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
                  // The guard returns what its body returns: a distinct value per call.
                  const result = await guard.run(
                    { keys: [fresh(seq)], token: TOKEN, operation: "bench" },
                    async () => seq,
                  );
                  if (result !== seq) throw new Error("guard.run did not return the body's result");
                },
        // A no-op guarded run costs at least a put and a delete: that pair is its baseline.
        baseline: (seq) => baselinePutDelete(baseline, prefix + fresh(seq)),
      };
  }
}

/**
 * Untimed checks of a cell's effect on both sides: `before` (our put writes the record and our
 * delete removes it, on a key of its own), `after` (the cell's fresh keys are all gone, and the
 * held key still belongs to its holder after every conflicting put).
 */
export function cellChecks(
  name: OperationName,
  store: PoisonStoreClient | string,
  baseline: Baseline,
  prefix: string,
  cell: string,
): { before(): Promise<void>; after(): Promise<void> } {
  const ours = typeof store === "string" ? null : store;
  const freshPrefix = `fresh/${cell}/`;
  const writes = name === "tryPutPoison+deletePoison" || name === "guard.run";
  return {
    async before() {
      if (!ours || !writes) return;
      const key = `${freshPrefix}check`;
      await ours.tryPutPoison(key, TOKEN);
      const record = await ours.inspectPoison(key);
      if (record?.token !== TOKEN || record.key !== key)
        throw new Error(`${cell}: tryPutPoison resolved but ${key} is not held by its token`);
      await ours.deletePoison(key, TOKEN);
      if ((await ours.getPoison(key)) !== null)
        throw new Error(`${cell}: deletePoison resolved but ${key} is still there`);
    },
    async after() {
      if (writes) {
        const left = ours ? await ours.listPoisons({ prefix: freshPrefix, limit: 1 }) : null;
        if (left && left.records.length > 0)
          throw new Error(`${cell}: ${left.records[0]?.key} was left behind by a measured call`);
        // seq 0 ran in the warm-up on the baseline: put and deleted.
        if ((await baseline.get(`${prefix}${freshPrefix}0`)) !== null)
          throw new Error(`${cell}: the baseline left ${freshPrefix}0 behind`);
      }
      if (name === "tryPutPoison-conflict") {
        if (ours && (await ours.getPoison(HELD_KEY)) !== HOLDER)
          throw new Error(`${cell}: a conflicting put changed the holder of ${HELD_KEY}`);
        if ((await baseline.get(prefix + HELD_KEY)) !== HOLDER)
          throw new Error(`${cell}: a conflicting baseline put changed the holder of ${HELD_KEY}`);
      }
    },
  };
}

async function baselinePutDelete(baseline: Baseline, key: string): Promise<void> {
  if ((await baseline.tryPut(key, TOKEN)) !== null) throw new Error("fresh key was held");
  if ((await baseline.delete(key, TOKEN)) !== null) throw new Error("delete by the holder failed");
}
