/**
 * Random histories that are linearizable by construction, for testing the checker itself: each
 * operation gets a linearization point between its invocation and completion, and outcomes are
 * computed by applying the model in the order of those points.
 */
import { type KeyState, type Operation, step } from "./history.js";

export interface RandomHistoryOptions {
  seed: number;
  clients: number;
  operations: number;
  keys: number;
  /** Tokens per key (small, so deletes sometimes match). Default 3. */
  tokensPerKey?: number;
  /** Fraction of writes whose outcome is reported unknown; half of them take effect. */
  unknownRate?: number;
}

/** A small seeded PRNG (mulberry32): reproducible histories without a dependency. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomHistory(options: RandomHistoryOptions): Operation[] {
  const random = prng(options.seed);
  const tokensPerKey = options.tokensPerKey ?? 3;
  const unknownRate = options.unknownRate ?? 0;
  const clock = new Array<number>(options.clients).fill(0);
  const planned: { op: Operation; at: number; applies: boolean }[] = [];
  for (let i = 0; i < options.operations; i++) {
    const client = Math.floor(random() * options.clients);
    const keyIndex = Math.floor(random() * options.keys);
    const token = `k${keyIndex}-t${Math.floor(random() * tokensPerKey)}`;
    const roll = random();
    const invocation =
      roll < 0.4
        ? ({ kind: "put", token } as const)
        : roll < 0.75
          ? ({ kind: "delete", token } as const)
          : ({ kind: "get" } as const);
    const invokedAt = (clock[client] as number) + random();
    const at = invokedAt + random() * 5;
    const completedAt = at + random() * 5;
    clock[client] = completedAt;
    const unknown = invocation.kind !== "get" && random() < unknownRate;
    const op: Operation = {
      client,
      key: `key-${keyIndex}`,
      invocation,
      outcome: unknown ? { type: "unknown" } : { type: "ok" },
      invokedAt,
      completedAt,
    };
    planned.push({ op, at, applies: !unknown || random() < 0.5 });
  }
  planned.sort((a, b) => a.at - b.at);
  const state = new Map<string, KeyState>();
  for (const { op, applies } of planned) {
    if (!applies) continue;
    const before = state.get(op.key) ?? null;
    if (op.outcome.type !== "unknown") op.outcome = answer(before, op);
    const after = step(before, op.invocation, op.outcome);
    if (after === undefined) throw new Error("internal: generated an impossible step");
    state.set(op.key, after);
  }
  return planned.map((p) => p.op).sort((a, b) => a.invokedAt - b.invokedAt);
}

/** What the store answers to `op` in `state`. */
function answer(state: KeyState, op: Operation): Operation["outcome"] {
  if (op.invocation.kind === "get") return { type: "read", token: state };
  if (state === null || state === op.invocation.token) return { type: "ok" };
  return { type: "conflict", holder: state };
}
