/**
 * Histories of the store's core contract (SPEC §2), as a linearizability checker consumes them.
 *
 * The model is one register per key: absent, or held by a token. Every operation names one key,
 * so a history is checked key by key (linearizability is compositional).
 */

/** What a client asked. */
export type Invocation =
  | { kind: "put"; token: string }
  | { kind: "delete"; token: string }
  | { kind: "get" };

/** What the client was told. `unknown`: the call failed with BackendUnavailableError (a
 *  timeout, a lost connection): it may or may not have taken effect, at any time after it
 *  was invoked, and its completion is open-ended. */
export type Outcome =
  | { type: "ok" }
  | { type: "conflict"; holder: string }
  | { type: "read"; token: string | null }
  | { type: "unknown" };

export interface Operation {
  /** Which client issued it, for reports only. */
  client: number;
  key: string;
  invocation: Invocation;
  outcome: Outcome;
  /** Monotonic time the call was made (any unit, one clock for the whole history). */
  invokedAt: number;
  /** Monotonic time the answer arrived. Ignored for `unknown` outcomes (treated as never). */
  completedAt: number;
}

/** The state of one key: absent (null) or held by a token. */
export type KeyState = string | null;

/**
 * One step of the model: the state after applying `invocation` to `state`, or `undefined` when
 * the recorded outcome is impossible from `state`. An unknown outcome accepts whatever the
 * operation would have answered, so only its effect on the state matters.
 */
export function step(
  state: KeyState,
  invocation: Invocation,
  outcome: Outcome,
): KeyState | undefined {
  switch (invocation.kind) {
    case "get":
      if (outcome.type === "unknown") return state;
      return outcome.type === "read" && outcome.token === state ? state : undefined;
    case "put": {
      const free = state === null || state === invocation.token;
      if (outcome.type === "unknown") return free ? invocation.token : state;
      if (outcome.type === "ok") return free ? invocation.token : undefined;
      if (outcome.type === "conflict") return !free && outcome.holder === state ? state : undefined;
      return undefined;
    }
    case "delete": {
      const free = state === null || state === invocation.token;
      if (outcome.type === "unknown") return free ? null : state;
      if (outcome.type === "ok") return free ? null : undefined;
      if (outcome.type === "conflict") return !free && outcome.holder === state ? state : undefined;
      return undefined;
    }
  }
}

/** A short human form of an operation, for violation reports. */
export function describeOperation(op: Operation): string {
  const call =
    op.invocation.kind === "get"
      ? "get()"
      : `${op.invocation.kind}(${JSON.stringify(op.invocation.token)})`;
  let answer: string;
  switch (op.outcome.type) {
    case "ok":
      answer = "ok";
      break;
    case "conflict":
      answer = `conflict(holder ${JSON.stringify(op.outcome.holder)})`;
      break;
    case "read":
      answer = JSON.stringify(op.outcome.token);
      break;
    case "unknown":
      answer = "unknown";
      break;
  }
  const end = op.outcome.type === "unknown" ? "∞" : op.completedAt.toFixed(3);
  return `client ${op.client} ${JSON.stringify(op.key)} ${call} → ${answer} [${op.invokedAt.toFixed(3)}, ${end}]`;
}
