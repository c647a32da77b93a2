/**
 * A model-based test of PoisonGuard (issue 7 item 5) with fast-check's scheduler: concurrent
 * `guard.run`s over overlapping key sets, on the memory backend, where every driver call (request
 * and reply) and every body step is a task the scheduler orders. fast-check explores (and
 * shrinks) both the plans (keys, body outcomes, marks, markConsistent, follow-up runs) and the
 * interleaving of store steps.
 *
 * Invariants checked on every interleaving:
 *  (a) no two bodies hold one key at once, and no body enters a key a failed run left poisoned;
 *  (b) a run whose bodies succeeded, were clean-marked or called markConsistent leaves no key;
 *  (c) the store ends holding exactly the keys of the runs that were poisoned, `poisoned`, under
 *      that run's token, and each run settles as its plan says (value, body error,
 *      OperationPoisonedError, or ResourcePoisonedError with no body run);
 *  (d) a run started after an overlapping run was poisoned is refused (ResourcePoisonedError).
 *
 * Half the schedules also lose up to 4 driver writes (before or after they took effect, as a
 * cut connection would). Their runs may then end in any typed way (BackendUnavailableError,
 * PoisonCleanupError, OperationPoisonedError with a recordFailure), and a key may stay only
 * under a token whose run over it ended in one of those; (a) and (d) hold unchanged.
 *
 * Key loss (SPEC §7): half the schedules also have an operator force-delete (evenIfAlive) up to
 * two keys at random steps, and bodies may call ctx.assertHeld(). A run whose key was removed
 * while it held it has *lost* that key; then:
 *  (a') another body may enter the key while the lost run's body is still inside it (the
 *       documented window, which heartbeats bound in real runs): any other overlap is a
 *       violation, exactly as in (a);
 *  (e)  the lost run ends with PoisonLostError (or was refused before any body), never with a
 *       value or another outcome, and assertHeld never resolves after the loss;
 *  (f)  what the store holds at the end is explained: each key is held by a run that ended
 *       poisoned or lost, or under a fault.
 *
 * Timers are mocked (node:test's MockTimers): the guard's backoff sleeps fire only when the
 * scheduler has nothing left to run, so a seed replays the same interleaving.
 */
import { mock } from "node:test";
import fc from "fast-check";
import { memoryDriver } from "../src/drivers/memory.js";
import {
  BackendUnavailableError,
  createPoisonStore,
  markCleanPoisons,
  markRetryable,
  OperationPoisonedError,
  PoisonCleanupError,
  type PoisonDriver,
  PoisonGuard,
  PoisonLostError,
  type PoisonRecord,
  ResourcePoisonedError,
} from "../src/index.js";

const KEYS = ["k0", "k1", "k2", "k3"] as const;
const MAX_ATTEMPTS = 3;

/** How one attempt of a body ends. */
type Ending = "ok" | "fail" | "retryable" | "retryable-clean" | "clean";

interface AttemptPlan {
  /** Call ctx.markConsistent() before ending. */
  consistent: boolean;
  /** Call ctx.assertHeld() after working (before markConsistent). */
  check: boolean;
  ending: Ending;
}

interface RunPlan {
  keys: string[];
  /** Attempt n follows attempts[min(n, length) - 1]. */
  attempts: AttemptPlan[];
  /** After this run settles, run again under the same token over these keys (a resume or a
   *  retry by the operator's tooling). */
  followUp: { keys: string[]; attempts: AttemptPlan[] } | null;
}

const keysArb = fc.uniqueArray(fc.constantFrom(...KEYS), { minLength: 1, maxLength: 3 });
const attemptArb: fc.Arbitrary<AttemptPlan> = fc.record({
  consistent: fc.boolean(),
  check: fc.boolean(),
  ending: fc.constantFrom<Ending>("ok", "fail", "retryable", "retryable-clean", "clean"),
});
const attemptsArb = fc.array(attemptArb, { minLength: 1, maxLength: MAX_ATTEMPTS });
const planArb: fc.Arbitrary<RunPlan> = fc.record({
  keys: keysArb,
  attempts: attemptsArb,
  followUp: fc.option(fc.record({ keys: keysArb, attempts: attemptsArb }), { nil: null }),
});
export const plansArb = fc.array(planArb, { minLength: 2, maxLength: 6 });

/** A driver write (put, remove, update) that fails as a lost connection would: before it
 *  reaches the backend, or after it took effect (the reply is lost). */
interface Fault {
  /** Which write of the schedule, counted from 0. */
  write: number;
  applied: boolean;
}
/** Half the schedules have no fault, so the exact expectations apply to them. */
export const faultsArb: fc.Arbitrary<Fault[]> = fc.oneof(
  fc.constant<Fault[]>([]),
  fc.uniqueArray(fc.record({ write: fc.nat(12), applied: fc.boolean() }), {
    minLength: 1,
    maxLength: 4,
    selector: (fault) => fault.write,
  }),
);

/** An operator's forced delete (evenIfAlive) of `key` after `after` scheduler steps. */
interface Clear {
  key: string;
  after: number;
}
/** Half the schedules have no operator, so the exact expectations apply to them. */
export const clearsArb: fc.Arbitrary<Clear[]> = fc.oneof(
  fc.constant<Clear[]>([]),
  fc.array(fc.record({ key: fc.constantFrom(...KEYS), after: fc.nat(24) }), {
    minLength: 1,
    maxLength: 2,
  }),
);

export interface GuardModelStats {
  properties: number;
  runs: number;
  bodies: number;
  retries: number;
  markConsistent: number;
  poisoned: number;
  refused: number;
  steps: number;
  faults: number;
  /** Forced deletes that removed a key a running operation held. */
  losses: number;
  /** Runs that ended with PoisonLostError. */
  lost: number;
  elapsedMs: number;
}

export interface GuardModelOptions {
  numRuns: number;
  seed?: number;
  /** Passed to fc.assert: a counterexample path to replay. */
  path?: string;
}

/** Run the property; throws (fast-check's report, with seed and counterexample) on a violation. */
export async function checkGuardModel(options: GuardModelOptions): Promise<GuardModelStats> {
  const stats: GuardModelStats = {
    properties: 0,
    runs: 0,
    bodies: 0,
    retries: 0,
    markConsistent: 0,
    poisoned: 0,
    refused: 0,
    steps: 0,
    faults: 0,
    losses: 0,
    lost: 0,
    elapsedMs: 0,
  };
  const started = performance.now();
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        plansArb,
        faultsArb,
        clearsArb,
        async (s, plans, faults, clears) => {
          stats.properties++;
          await runModel(s, plans, faults, clears, stats);
        },
      ),
      {
        numRuns: options.numRuns,
        ...(options.seed === undefined ? {} : { seed: options.seed }),
        ...(options.path === undefined ? {} : { path: options.path }),
      },
    );
  } finally {
    mock.timers.reset();
  }
  stats.elapsedMs = performance.now() - started;
  return stats;
}

/** The memory driver with every call's request and reply scheduled by `s`; `direct` bypasses
 *  the scheduler (for the final inspection, once nothing else runs). */
function scheduledDriver(s: fc.Scheduler, faults: Fault[], stats: GuardModelStats) {
  const inner = memoryDriver();
  /** Tokens whose writes met a fault: their runs may end in any typed way. */
  const control = {
    direct: false,
    faultedTokens: new Set<string>(),
    /** Called as a forced delete takes effect, with the records it removed. */
    onForced: (_removed: PoisonRecord[]) => {},
    /** Called when a put by `token` took effect and its answer is on the way (not faulted). */
    onPut: (_token: string, _keys: string[]) => {},
  };
  let writes = 0;
  /** `applied` runs the moment a write that will be answered took effect. */
  const step = async <R>(
    label: string,
    call: () => Promise<R>,
    token?: string,
    applied?: (result: R) => void,
  ): Promise<R> => {
    if (control.direct) return call();
    stats.steps++;
    const fault = token === undefined ? undefined : faults.find((f) => f.write === writes);
    if (token !== undefined) writes++;
    await s.schedule(Promise.resolve(), `${label}: sent`);
    if (fault && token !== undefined) {
      stats.faults++;
      control.faultedTokens.add(token);
      if (fault.applied) await call();
      throw new Error(
        `injected: connection lost during ${label} (${fault.applied ? "applied" : "not applied"})`,
      );
    }
    const result = await call();
    applied?.(result);
    await s.schedule(Promise.resolve(), `${label}: answered`);
    return result;
  };
  const driver: PoisonDriver = {
    backend: inner.backend,
    capabilities: inner.capabilities,
    init: (options) => inner.init(options),
    put: (records, audit) =>
      step(
        `put ${records.map((r) => r.key).join(",")} by ${records[0]?.token}`,
        () => inner.put(records, audit),
        records[0]?.token,
        (outcome) => {
          if (outcome.ok)
            control.onPut(
              records[0]?.token ?? "",
              records.map((r) => r.key.slice("/model/".length)),
            );
        },
      ),
    remove: (keys, token, audit, expected) =>
      token === null
        ? // The operator's forced delete: never faulted (it is not the subject), and reported
          // to the model the moment it takes effect.
          step(`force-remove ${keys.join(",")}`, async () => {
            const outcome = await inner.remove(keys, token, audit, expected);
            if (outcome.ok && !control.direct) control.onForced(outcome.removed);
            return outcome;
          })
        : step(
            `remove ${keys.join(",")} by ${token}`,
            () => inner.remove(keys, token, audit, expected),
            token,
          ),
    update: (keys, token, patch) =>
      step(`update ${keys.join(",")} by ${token}`, () => inner.update(keys, token, patch), token),
    get: (key) => step(`get ${key}`, () => inner.get(key)),
    list: (query) => step("list", () => inner.list(query)),
    audit: (query) => step("audit", () => inner.audit(query)),
    close: () => inner.close(),
  };
  return { driver, control };
}

type Settled = { kind: "value"; value: unknown } | { kind: "error"; error: unknown };

async function runModel(
  s: fc.Scheduler,
  plans: RunPlan[],
  faults: Fault[],
  clears: Clear[],
  stats: GuardModelStats,
) {
  const { driver, control } = scheduledDriver(s, faults, stats);
  const store = createPoisonStore(driver, { namespace: "/model/", timeoutMs: 1e9 });
  const guard = new PoisonGuard(store, {
    heartbeatIntervalMs: false,
    retry: { maxAttempts: MAX_ATTEMPTS, minDelayMs: 0, maxDelayMs: 0 },
    storeRetry: { maxAttempts: 2, minDelayMs: 0, maxDelayMs: 0 },
    random: () => 0.5,
  });
  const violations: string[] = [];
  const fail = (what: string) => violations.push(what);

  /** Which run's body holds each key now. */
  const occupant = new Map<string, string>();
  /** Keys a failed body left to be poisoned: no body of another token may enter them again
   *  (the same token may resume over keys left in-progress when marking them failed). */
  const quarantined = new Map<string, { name: string; token: string }>();
  /** Keys an OperationPoisonedError reported poisoned, with the token: poisoned for good. */
  const poisonedSettled = new Map<string, string>();
  /** Every run's keys and ending, for the final inspection. */
  const endings: { token: string; keys: string[]; settled: Settled }[] = [];
  /** The run of each token that is between its start and its settling. */
  const activeRun = new Map<string, { name: string; keys: string[] }>();
  /** Tokens whose active run holds its keys as far as it knows: a put of it was answered. (A
   *  key removed after a put whose answer was lost, and put again by the retry, is not lost.) */
  const holding = new Set<string>();
  control.onPut = (token, keys) => {
    const active = activeRun.get(token);
    if (!active) return;
    holding.add(token);
    // Held afresh: a removal before this put no longer concerns the keys it holds now.
    for (const key of keys) revoked.delete(`${active.name}:${key}`);
  };
  /** `run:key` pairs whose key an operator removed while the run held it. */
  const revoked = new Set<string>();
  /** When (in `clock` ticks) each run's key was first removed while it held it. */
  const revokedRuns = new Map<string, number>();
  /** When each run's latest body attempt ended. */
  const bodyEnded = new Map<string, number>();
  let clock = 0;
  /** How many forced deletes removed each key so far. */
  const cleared = new Map<string, number>();
  control.onForced = (removed) => {
    for (const record of removed) {
      const key = record.key.slice("/model/".length);
      cleared.set(key, (cleared.get(key) ?? 0) + 1);
      const active = holding.has(record.token) ? activeRun.get(record.token) : undefined;
      // Only a key of the active run: the same token may also hold keys its earlier run left.
      const holder = active?.keys.includes(key) ? active.name : undefined;
      if (holder !== undefined) {
        stats.losses++;
        revoked.add(`${holder}:${key}`);
        if (!revokedRuns.has(holder)) revokedRuns.set(holder, ++clock);
      }
      // An operator's recovery: the key is no longer quarantined by anyone.
      poisonedSettled.delete(key);
      quarantined.delete(key);
    }
  };

  const guarded = async (name: string, token: string, keys: string[], attempts: AttemptPlan[]) => {
    stats.runs++;
    const startedOverPoison = keys.filter((key) => poisonedSettled.has(key));
    const clearedAtStart = new Map(keys.map((key) => [key, cleared.get(key) ?? 0]));
    const ranAttempts: AttemptPlan[] = [];
    const bodyErrors: unknown[] = [];
    let settled: Settled;
    activeRun.set(token, { name, keys });
    try {
      const value = await guard.run({ keys, token, operation: name }, async (ctx) => {
        stats.bodies++;
        const plan = attempts[Math.min(ctx.attempt, attempts.length) - 1] as AttemptPlan;
        ranAttempts.push(plan);
        if (ctx.attempt !== ranAttempts.length)
          fail(`${name}: attempt ${ctx.attempt} is its body's run number ${ranAttempts.length}`);
        for (const key of keys) {
          const other = occupant.get(key);
          // Two bodies on one key: a violation unless one of them lost the key (the documented
          // window, until the lost run notices: a heartbeat interval in real runs).
          if (
            other !== undefined &&
            !revoked.has(`${other}:${key}`) &&
            !revoked.has(`${name}:${key}`)
          )
            fail(`${name} entered ${key} while ${other}'s body held it`);
          // A retry checks the keys first: no attempt after the first runs over a lost key.
          if (ctx.attempt > 1 && revoked.has(`${name}:${key}`))
            fail(`${name}: attempt ${ctx.attempt} entered ${key}, which it had lost`);
          // Over a key another run left poisoned: a violation unless this run had already lost
          // the key (an operator removed it after this run's put took effect but before its
          // answer arrived, and another run took it): the same documented window as above.
          const lostIt = revoked.has(`${name}:${key}`);
          const poisoner = quarantined.get(key);
          if (poisoner !== undefined && poisoner.token !== token && !lostIt)
            fail(`${name} entered ${key}, left to be poisoned by ${poisoner.name}`);
          if (poisonedSettled.has(key) && !lostIt)
            fail(`${name} entered ${key}, which is poisoned`);
          quarantined.delete(key);
          occupant.set(key, name);
        }
        const leave = () => {
          for (const key of keys) if (occupant.get(key) === name) occupant.delete(key);
        };
        await s.schedule(Promise.resolve(), `${name} body attempt ${ctx.attempt}: working`);
        if (plan.check) {
          const revokedBefore = keys.some((key) => revoked.has(`${name}:${key}`));
          try {
            await ctx.assertHeld();
            if (revokedBefore) fail(`${name}: assertHeld resolved after its key was removed`);
          } catch (error) {
            if (!(error instanceof PoisonLostError || error instanceof BackendUnavailableError))
              fail(`${name}: assertHeld rejected with ${String(error)}`);
            leave();
            bodyErrors.push(error);
            bodyEnded.set(name, ++clock);
            throw error;
          }
        }
        if (plan.consistent) {
          stats.markConsistent++;
          leave(); // The resource is consistent from here on: others may take it.
          try {
            await ctx.markConsistent();
          } catch (error) {
            // Under an injected fault (whether the keys are gone is unknown), or the loss of a
            // key found by the delete.
            bodyErrors.push(error);
            bodyEnded.set(name, ++clock);
            throw error;
          }
          await s.schedule(Promise.resolve(), `${name} body attempt ${ctx.attempt}: after mark`);
        }
        if (plan.ending === "ok") {
          leave();
          bodyEnded.set(name, ++clock);
          return `${name}#${ctx.attempt}`;
        }
        const error = new Error(`${name} attempt ${ctx.attempt}: ${plan.ending}`);
        if (plan.ending === "retryable") markRetryable(error);
        if (plan.ending === "retryable-clean") markRetryable(error, { cleanPoisons: true });
        if (plan.ending === "clean") markCleanPoisons(error);
        const retried =
          (plan.ending === "retryable" || plan.ending === "retryable-clean") &&
          ctx.attempt < MAX_ATTEMPTS;
        const clean = plan.ending === "clean" || plan.ending === "retryable-clean";
        if (retried) stats.retries++;
        else if (!plan.consistent && !clean) {
          // This failure poisons: the keys stay held from here on, forever (but for a key
          // the run already lost: the guard writes nothing to it).
          for (const key of keys)
            if (!revoked.has(`${name}:${key}`)) quarantined.set(key, { name, token });
        }
        leave();
        bodyErrors.push(error);
        bodyEnded.set(name, ++clock);
        throw error;
      });
      settled = { kind: "value", value };
    } catch (error) {
      settled = { kind: "error", error };
    }
    activeRun.delete(token);
    holding.delete(token);
    if (settled.kind === "error" && settled.error instanceof PoisonLostError) stats.lost++;
    const faulted = control.faultedTokens.has(token);
    // A key removed while a body could still act on it must end the run lost; one removed after
    // the last body ended may be met by the guard's final write (lost) or come after it.
    const revokedAt = revokedRuns.get(name);
    const endedAt = bodyEnded.get(name) ?? Number.POSITIVE_INFINITY;
    if (revokedAt !== undefined && revokedAt < endedAt)
      checkLost(name, keys, ranAttempts, bodyErrors, settled, faulted, fail);
    else if (
      revokedAt !== undefined &&
      settled.kind === "error" &&
      settled.error instanceof PoisonLostError
    ) {
      if (!keys.includes(settled.error.key))
        fail(`${name}: lost ${settled.error.key}, not one of its keys`);
    } else if (faulted) checkFaulted(name, ranAttempts, bodyErrors, settled, fail);
    else checkSettled(name, token, keys, ranAttempts, bodyErrors, settled, fail);
    endings.push({ token, keys, settled });
    if (settled.kind === "error" && settled.error instanceof OperationPoisonedError) {
      stats.poisoned++;
      for (const record of settled.error.records) {
        // A key an operator cleared during the run was cleared after it was poisoned (a clear
        // before would have made the marking fail): it is gone, and rightly so.
        const clearedMeanwhile = (cleared.get(record.key) ?? 0) !== clearedAtStart.get(record.key);
        if (record.state === "poisoned" && !clearedMeanwhile)
          poisonedSettled.set(record.key, token);
      }
    }
    if (settled.kind === "error" && settled.error instanceof ResourcePoisonedError) stats.refused++;
    // (d): a key poisoned before this run started stays poisoned: the run must be refused
    // (or, under a fault, fail before its body) — unless an operator cleared it meanwhile.
    const stillPoisoned = startedOverPoison.filter(
      (key) => (cleared.get(key) ?? 0) === clearedAtStart.get(key),
    );
    if (stillPoisoned.length > 0) {
      const refused = settled.kind === "error" && settled.error instanceof ResourcePoisonedError;
      if ((!refused && !faulted) || ranAttempts.length > 0)
        fail(`${name} started over poisoned ${stillPoisoned.join(",")} and was not refused`);
    }
    return settled;
  };

  const operator = createPoisonStore(driver, { namespace: "/model/", timeoutMs: 1e9 });
  const operatorDone = (async () => {
    for (const clear of clears) {
      for (let n = 0; n < clear.after; n++)
        await s.schedule(Promise.resolve(), `operator waits (${n + 1}/${clear.after})`);
      await operator.forceDeletePoison(clear.key, {
        actor: "oncall",
        reason: "model",
        evenIfAlive: true,
      });
    }
  })();

  const runs = plans.map(async (plan, i) => {
    const token = `t${i}`;
    await s.schedule(Promise.resolve(), `launch run${i}`);
    const first = await guarded(`run${i}`, token, plan.keys, plan.attempts);
    if (plan.followUp === null) return;
    // What the first run left poisoned as it settled (an operator may clear it before the
    // follow-up starts, or while it starts).
    const poisonedBefore =
      first.kind === "error" && first.error instanceof OperationPoisonedError
        ? first.error.records
            .filter((r) => r.state === "poisoned" && poisonedSettled.get(r.key) === token)
            .map((r) => r.key)
        : [];
    const clearedBefore = new Map(poisonedBefore.map((key) => [key, cleared.get(key) ?? 0]));
    await s.schedule(Promise.resolve(), `launch run${i}'`);
    const second = await guarded(`run${i}'`, token, plan.followUp.keys, plan.followUp.attempts);
    // Keys an operator cleared in between are free again.
    const overlap = plan.followUp.keys.filter(
      (key) => poisonedBefore.includes(key) && (cleared.get(key) ?? 0) === clearedBefore.get(key),
    );
    if (overlap.length > 0) {
      const refused = second.kind === "error" && second.error instanceof ResourcePoisonedError;
      const unavailable =
        second.kind === "error" && second.error instanceof BackendUnavailableError;
      if (!(refused || (unavailable && control.faultedTokens.has(token))))
        fail(`run${i}' ran over ${overlap.join(",")}, which its own token left poisoned`);
    }
  });

  let finished = false;
  const all = Promise.all([...runs, operatorDone]).finally(() => {
    finished = true;
  });
  // Drive: let every runnable continuation reach its next scheduled step, then let the
  // scheduler pick one; fire timers (backoff sleeps) only when nothing is scheduled.
  for (let idleTicks = 0; ; ) {
    await new Promise((resolve) => setImmediate(resolve));
    if (finished) break;
    if (s.count() > 0) {
      idleTicks = 0;
      await s.waitNext(1);
    } else {
      if (++idleTicks > 100)
        throw new Error(`stuck: runs pending, nothing scheduled, no timer due\n${String(s)}`);
      mock.timers.tick(1);
    }
  }
  await all;

  control.direct = true;
  const remaining: PoisonRecord[] = (await store.listPoisons({})).records;
  for (const [key, token] of poisonedSettled) {
    const record = remaining.find((r) => r.key === key);
    if (record?.token !== token || record.state !== "poisoned")
      fail(`${key}, poisoned by ${token}, is now ${record ? JSON.stringify(record) : "gone"}`);
  }
  if (faults.length > 0 || clears.length > 0) {
    // Under faults a write's outcome may be unknown, and a lost run poisons the keys it still
    // held: a key may stay only under a token one of whose runs over it ended in a way that
    // says so.
    for (const record of remaining) {
      const why = endings.find(
        (e) =>
          e.token === record.token &&
          e.keys.includes(record.key) &&
          mayLeaveKeys(e.settled, control.faultedTokens.has(e.token)),
      );
      if (!why) fail(`${record.key} left behind by ${record.token} (${record.state})`);
    }
  } else checkExactRemains(remaining, poisonedSettled, quarantined, fail);
  await store.close();

  if (violations.length > 0) {
    throw new Error(`${violations.join("\n")}\nschedule:\n${String(s)}`);
  }
}

/** (b), (c) without faults: exactly the poisoned runs' keys remain, poisoned, under their
 *  tokens, and every failure that was to poison did. */
function checkExactRemains(
  remaining: PoisonRecord[],
  poisonedSettled: Map<string, string>,
  quarantined: Map<string, { name: string; token: string }>,
  fail: (what: string) => void,
) {
  const expected = new Map(poisonedSettled);
  for (const record of remaining) {
    const token = expected.get(record.key);
    if (token === undefined) fail(`${record.key} left behind by ${record.token} (${record.state})`);
    else if (record.token !== token || record.state !== "poisoned")
      fail(
        `${record.key} is ${record.state} under ${record.token}, expected poisoned under ${token}`,
      );
    expected.delete(record.key);
  }
  for (const [key, { name }] of quarantined)
    if (!poisonedSettled.has(key)) fail(`${name}'s failure should have poisoned ${key}`);
}

/** Endings after which a run's keys may still be present. `faulted`: a write of the run's
 *  token had an unknown outcome, so a put the run then saw refused may have applied before. */
function mayLeaveKeys(settled: Settled, faulted: boolean): boolean {
  if (settled.kind === "value") return false;
  const error = settled.error;
  return (
    (faulted && error instanceof ResourcePoisonedError) ||
    error instanceof OperationPoisonedError ||
    error instanceof PoisonCleanupError ||
    error instanceof BackendUnavailableError ||
    error instanceof PoisonLostError ||
    // A refused resume whose undo of the keys it had just written failed.
    (error instanceof ResourcePoisonedError && error.reason === "poisoned-by-this-token")
  );
}

/** (e) A run whose key an operator removed while it held it: it ends lost (PoisonLostError),
 *  or was refused before any body ran; under a fault, any typed ending. Never a value. */
function checkLost(
  name: string,
  keys: string[],
  ran: AttemptPlan[],
  bodyErrors: unknown[],
  settled: Settled,
  faulted: boolean,
  fail: (what: string) => void,
) {
  if (settled.kind === "value") {
    // Possible only where the loss proves nothing: our own delete had an unknown outcome.
    if (!faulted) fail(`${name}: lost a key, yet resolved ${JSON.stringify(settled.value)}`);
    return;
  }
  const error = settled.error;
  if (error instanceof PoisonLostError) {
    if (!keys.includes(error.key)) fail(`${name}: lost ${error.key}, not one of its keys`);
    return;
  }
  if (error instanceof ResourcePoisonedError && ran.length === 0) return;
  if (!faulted) fail(`${name}: lost a key, yet ended with ${describe(settled)}`);
  else if (
    !(
      error instanceof BackendUnavailableError ||
      error instanceof OperationPoisonedError ||
      error instanceof PoisonCleanupError ||
      error instanceof ResourcePoisonedError ||
      bodyErrors.includes(error)
    )
  )
    fail(`${name}: lost a key under a fault, and ended with ${describe(settled)}`);
}

/** A run that met an injected fault: any typed ending, but never an untyped one, and no body
 *  after a body that was not to be retried. */
function checkFaulted(
  name: string,
  ran: AttemptPlan[],
  bodyErrors: unknown[],
  settled: Settled,
  fail: (what: string) => void,
) {
  for (let n = 1; n < ran.length; n++) {
    const ending = (ran[n - 1] as AttemptPlan).ending;
    if (ending !== "retryable" && ending !== "retryable-clean")
      fail(`${name}: attempt ${n + 1} ran after a ${ending} attempt`);
  }
  if (settled.kind === "value") {
    if (ran.length === 0 || (ran[ran.length - 1] as AttemptPlan).ending !== "ok")
      fail(`${name}: resolved ${JSON.stringify(settled.value)} though no body returned`);
    return;
  }
  const error = settled.error;
  const typed =
    error instanceof ResourcePoisonedError ||
    error instanceof BackendUnavailableError ||
    (ran.length > 0 &&
      (error instanceof OperationPoisonedError ||
        error instanceof PoisonCleanupError ||
        bodyErrors.includes(error)));
  if (!typed) fail(`${name}: under a fault, ended with ${describe(settled)}`);
}

/** (c): the run settled as its plan and the attempts that ran say it must. */
function checkSettled(
  name: string,
  token: string,
  keys: string[],
  ran: AttemptPlan[],
  bodyErrors: unknown[],
  settled: Settled,
  fail: (what: string) => void,
) {
  const error = settled.kind === "error" ? settled.error : undefined;
  if (ran.length === 0) {
    if (!(error instanceof ResourcePoisonedError)) {
      fail(`${name}: no body ran, yet it settled with ${describe(settled)}`);
      return;
    }
    if (!keys.includes(error.key)) fail(`${name}: refused over ${error.key}, not one of its keys`);
    if (error.reason === "poisoned-by-this-token") {
      if (error.record.token !== token || error.record.state !== "poisoned")
        fail(`${name}: refused as poisoned by itself over ${JSON.stringify(error.record)}`);
    } else if (error.record.token === token) {
      fail(`${name}: refused (${error.reason}) by its own token`);
    }
    return;
  }
  for (let n = 1; n < ran.length; n++) {
    const ending = (ran[n - 1] as AttemptPlan).ending;
    if (ending !== "retryable" && ending !== "retryable-clean")
      fail(`${name}: attempt ${n + 1} ran after a ${ending} attempt`);
  }
  const last = ran[ran.length - 1] as AttemptPlan;
  const retryable = last.ending === "retryable" || last.ending === "retryable-clean";
  if (retryable && ran.length < MAX_ATTEMPTS) {
    // Only one way out: markConsistent gave the keys back and another run took one before
    // the retry could hold them again.
    const previous = ran[ran.length - 1] as AttemptPlan;
    if (!(previous.consistent && error instanceof ResourcePoisonedError))
      fail(`${name}: stopped after retryable attempt ${ran.length} with ${describe(settled)}`);
    return;
  }
  const lastError = bodyErrors[bodyErrors.length - 1];
  if (last.ending === "ok") {
    if (settled.kind !== "value" || settled.value !== `${name}#${ran.length}`)
      fail(`${name}: its body returned, yet it settled with ${describe(settled)}`);
    return;
  }
  const clean = last.ending === "clean" || last.ending === "retryable-clean";
  if (last.consistent || clean) {
    if (error !== lastError)
      fail(`${name}: a clean failure should rethrow the body's error, got ${describe(settled)}`);
    return;
  }
  if (!(error instanceof OperationPoisonedError) || error.cause !== lastError) {
    fail(`${name}: an unmarked failure should poison, got ${describe(settled)}`);
    return;
  }
  if (error.token !== token || error.records.length !== keys.length)
    fail(`${name}: OperationPoisonedError for ${error.token} with ${error.records.length} records`);
  for (const record of error.records)
    if (record.state !== "poisoned" || record.token !== token)
      fail(`${name}: poisoned record ${JSON.stringify(record)}`);
}

function describe(settled: Settled): string {
  if (settled.kind === "value") return `value ${JSON.stringify(settled.value)}`;
  const error = settled.error;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
