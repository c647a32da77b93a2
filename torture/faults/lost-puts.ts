/**
 * "No acknowledged put is lost", checked per key against the state read after a run: the last
 * acknowledged put of a key that no delete by its token could have undone must still hold it.
 * A delete could have undone it when its token matches and it may have taken effect after the
 * put did: it was acknowledged or its outcome is unknown, and it completed (or, unknown, may
 * complete) after the put was invoked. A put by another token cannot replace it (conflict).
 */
import type { Operation } from "../lin/history.js";

export function lostAcknowledgedPuts(
  history: readonly Operation[],
  finalState: ReadonlyMap<string, string | null>,
): { checked: number; lost: string[] } {
  const lost: string[] = [];
  let checked = 0;
  for (const [key, state] of finalState) {
    const ops = history.filter((op) => op.key === key);
    const undoable = (put: Operation) =>
      ops.some(
        (op) =>
          op.invocation.kind === "delete" &&
          put.invocation.kind === "put" &&
          op.invocation.token === put.invocation.token &&
          (op.outcome.type === "unknown" ||
            (op.outcome.type === "ok" && op.completedAt > put.invokedAt)),
      );
    const survivors = ops.filter(
      (op) => op.invocation.kind === "put" && op.outcome.type === "ok" && !undoable(op),
    );
    if (survivors.length === 0) continue;
    // The one invoked last; two survivors of different tokens cannot both hold the key.
    const last = survivors.reduce((a, b) => (b.invokedAt > a.invokedAt ? b : a));
    if (last.invocation.kind !== "put") continue;
    checked++;
    if (state !== last.invocation.token) {
      lost.push(
        `${key}: put(${JSON.stringify(last.invocation.token)}) acknowledged, never deleted, but the key reads ${JSON.stringify(state)}`,
      );
    }
  }
  return { checked, lost };
}
