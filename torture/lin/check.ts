/**
 * A linearizability checker for the store's model, in the style of Wing & Gong, Lowe, and
 * Porcupine: a depth-first search over the order of linearization points, with a memo of the
 * (set of operations linearized, model state) pairs already explored so each configuration is
 * explored once.
 *
 * Keys are independent registers, so the history is partitioned by key and each part checked on
 * its own (P-compositionality): the search space is per key, not per history.
 *
 * An operation with an unknown outcome (BackendUnavailableError) may have taken effect at any
 * moment after its invocation, or never: its completion is treated as infinitely late, any answer
 * is accepted, and the search may finish without linearizing it (as Knossos and Porcupine do).
 *
 * Unknown operations are what make the search explode: each stays open to the end, so n of
 * them on a key give 2^n subsets that may have been applied. Two reductions keep it small,
 * both exact (they never turn a linearizable history into a violation or back):
 * - unknown operations with the same invocation (kind and token) are interchangeable once
 *   both are invoked, so of each such class only the earliest one not yet linearized is tried;
 *   the linearized ones of a class are always a prefix, and n of a class give n + 1 choices;
 * - an unknown operation that would not change the state is never linearized: leaving it out
 *   keeps every option open, and it can still be applied later when it would matter.
 */
import { describeOperation, type KeyState, type Operation, step } from "./history.js";

export interface KeyVerdict {
  key: string;
  /** `ok`: linearizable. `violation`: not. `timeout`: the search ran out of its time budget. */
  result: "ok" | "violation" | "timeout";
  operations: number;
  /** For a violation: the operation that could not be placed in the longest linearizable
   *  prefix found, the state the model was in, and the operations concurrent with it. */
  explanation?: string;
}

export interface CheckResult {
  ok: boolean;
  /** Operations checked (unknown reads, which say nothing, excluded). */
  operations: number;
  keys: KeyVerdict[];
  violations: KeyVerdict[];
  /** Keys the search could not decide within the budget; a run with any fails too. */
  undecided: KeyVerdict[];
  elapsedMs: number;
}

export interface CheckOptions {
  /** Give up on a key after this many milliseconds of search (default: no limit). */
  budgetMs?: number;
  /** The state of every key before the history (default: absent). */
  initial?: (key: string) => KeyState;
}

/** Check a whole history: partition by key, check each key. */
export function checkHistory(
  history: readonly Operation[],
  options: CheckOptions = {},
): CheckResult {
  const started = performance.now();
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    let ops = byKey.get(op.key);
    if (!ops) {
      ops = [];
      byKey.set(op.key, ops);
    }
    ops.push(op);
  }
  const keys: KeyVerdict[] = [];
  for (const [key, ops] of byKey) {
    keys.push(checkKey(key, ops, options.initial?.(key) ?? null, options.budgetMs));
  }
  const violations = keys.filter((k) => k.result === "violation");
  const undecided = keys.filter((k) => k.result === "timeout");
  return {
    ok: violations.length === 0 && undecided.length === 0,
    operations: keys.reduce((sum, k) => sum + k.operations, 0),
    keys,
    violations,
    undecided,
    elapsedMs: performance.now() - started,
  };
}

/** A call or return event in the doubly linked event list the search walks. */
interface EventNode {
  /** Index of the operation in the key's list. */
  op: number;
  /** For a call event: its return event. Null for return events. */
  match: EventNode | null;
  time: number;
  prev: EventNode | null;
  next: EventNode | null;
}

/** Check the operations of one key. */
export function checkKey(
  key: string,
  history: readonly Operation[],
  initial: KeyState = null,
  budgetMs?: number,
): KeyVerdict {
  // An unknown read neither changed the state nor told anyone anything.
  const ops = history.filter(
    (op) => !(op.invocation.kind === "get" && op.outcome.type === "unknown"),
  );
  for (const op of ops) {
    if (op.key !== key) throw new Error(`operation on ${op.key} in the history of ${key}`);
    if (op.outcome.type !== "unknown" && !(op.completedAt >= op.invokedAt)) {
      throw new Error(`operation completes before it is invoked: ${describeOperation(op)}`);
    }
  }

  const events: EventNode[] = [];
  ops.forEach((op, index) => {
    const completion = op.outcome.type === "unknown" ? Number.POSITIVE_INFINITY : op.completedAt;
    const ret: EventNode = { op: index, match: null, time: completion, prev: null, next: null };
    const call: EventNode = { op: index, match: ret, time: op.invokedAt, prev: null, next: null };
    events.push(call, ret);
  });
  // By time; at equal times calls before returns, so touching operations count as concurrent
  // (the lenient reading: a tie never manufactures a violation).
  events.sort((a, b) => a.time - b.time || (a.match ? 0 : 1) - (b.match ? 0 : 1) || a.op - b.op);
  const head: EventNode = {
    op: -1,
    match: null,
    time: Number.NEGATIVE_INFINITY,
    prev: null,
    next: null,
  };
  let last = head;
  for (const node of events) {
    last.next = node;
    node.prev = last;
    last = node;
  }

  const lift = (call: EventNode) => {
    (call.prev as EventNode).next = call.next;
    (call.next as EventNode).prev = call.prev;
    const ret = call.match as EventNode;
    (ret.prev as EventNode).next = ret.next;
    if (ret.next) ret.next.prev = ret.prev;
  };
  const unlift = (call: EventNode) => {
    const ret = call.match as EventNode;
    (ret.prev as EventNode).next = ret;
    if (ret.next) ret.next.prev = ret;
    (call.prev as EventNode).next = call;
    (call.next as EventNode).prev = call;
  };

  // The classes of interchangeable unknown operations, each in invocation order (the order of
  // their call events), and how many of each class are linearized (always a prefix).
  const classOf = new Int32Array(ops.length).fill(-1);
  const classMembers: number[][] = [];
  {
    const ids = new Map<string, number>();
    const order = ops
      .map((op, index) => ({ op, index }))
      .filter(({ op }) => op.outcome.type === "unknown")
      .sort((a, b) => a.op.invokedAt - b.op.invokedAt || a.index - b.index);
    for (const { op, index } of order) {
      const name =
        op.invocation.kind === "get" ? "get" : `${op.invocation.kind}\u0000${op.invocation.token}`;
      let id = ids.get(name);
      if (id === undefined) {
        id = classMembers.length;
        ids.set(name, id);
        classMembers.push([]);
      }
      classOf[index] = id;
      (classMembers[id] as number[]).push(index);
    }
  }
  const classLinearized = new Int32Array(classMembers.length);
  const countLinearized = (op: number, by: 1 | -1) => {
    const id = classOf[op] as number;
    classLinearized[id] = (classLinearized[id] as number) + by;
  };
  /** Whether `op` may be tried now: a known operation always; an unknown one only as the
   *  earliest of its class not yet linearized. */
  const mayTry = (op: number) => {
    const id = classOf[op] as number;
    return id < 0 || classMembers[id]?.[classLinearized[id] as number] === op;
  };

  let knownRemaining = ops.filter((op) => op.outcome.type !== "unknown").length;
  const linearized = new Uint32Array(Math.ceil(ops.length / 32) + 1);
  const seen = new Set<string>();
  const memoKey = (state: KeyState) =>
    `${state === null ? "\u0000" : `=${state}`}\u0001${linearized.join(",")}`;
  const toggle = (op: number) => {
    linearized[op >>> 5] = (linearized[op >>> 5] as number) ^ (1 << (op & 31));
  };

  const stack: { call: EventNode; state: KeyState }[] = [];
  let state = initial;
  let entry = head.next;
  // The deepest point reached, to explain a violation.
  let deepest = -1;
  let stuck: { op: number; state: KeyState } | null = null;
  const deadline = budgetMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + budgetMs;
  let steps = 0;

  while (knownRemaining > 0) {
    if (++steps % 4096 === 0 && performance.now() > deadline) {
      return { key, result: "timeout", operations: ops.length };
    }
    if (entry === null) throw new Error("internal: ran off the event list");
    if (entry.match) {
      const call: EventNode = entry;
      const op = ops[call.op] as Operation;
      const unknown = op.outcome.type === "unknown";
      const next = !unknown || mayTry(call.op) ? step(state, op.invocation, op.outcome) : undefined;
      let advanced = false;
      if (next !== undefined && !(unknown && next === state)) {
        toggle(entry.op);
        const memo = memoKey(next);
        if (!seen.has(memo)) {
          seen.add(memo);
          stack.push({ call: entry, state });
          state = next;
          if (unknown) countLinearized(call.op, 1);
          else knownRemaining--;
          lift(entry);
          entry = head.next;
          advanced = true;
        } else {
          toggle(entry.op);
        }
      }
      if (!advanced) entry = call.next;
    } else {
      // A return event whose call was not linearized: every order tried from here fails.
      if (stack.length > deepest) {
        deepest = stack.length;
        stuck = { op: entry.op, state };
      }
      const top = stack.pop();
      if (!top) {
        return {
          key,
          result: "violation",
          operations: ops.length,
          explanation: explain(ops, stuck),
        };
      }
      const op = ops[top.call.op] as Operation;
      if (op.outcome.type === "unknown") countLinearized(top.call.op, -1);
      else knownRemaining++;
      state = top.state;
      toggle(top.call.op);
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return { key, result: "ok", operations: ops.length };
}

function explain(ops: readonly Operation[], stuck: { op: number; state: KeyState } | null): string {
  if (!stuck) return "no operation could be linearized first";
  const op = ops[stuck.op] as Operation;
  const concurrent = ops.filter(
    (other) =>
      other !== op &&
      other.invokedAt <= op.completedAt &&
      (other.outcome.type === "unknown" || other.completedAt >= op.invokedAt),
  );
  const lines = [
    `cannot linearize ${describeOperation(op)}`,
    `  the key was ${stuck.state === null ? "absent" : `held by ${JSON.stringify(stuck.state)}`} in the longest linearizable prefix found`,
    `  concurrent with ${concurrent.length} operation(s)${concurrent.length ? ":" : ""}`,
    ...concurrent.slice(0, 20).map((other) => `    ${describeOperation(other)}`),
  ];
  return lines.join("\n");
}
