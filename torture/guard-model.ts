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
 * Timers are mocked (node:test's MockTimers): the guard's backoff sleeps fire only when the
 * scheduler has nothing left to run, so a seed replays the same interleaving.
 */
import { mock } from "node:test";
import fc from "fast-check";
import { memoryDriver } from "../src/drivers/memory.js";
import {
  createPoisonStore,
  markCleanPoisons,
  markRetryable,
  OperationPoisonedError,
  type PoisonDriver,
  PoisonGuard,
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
  ending: fc.constantFrom<Ending>("ok", "fail", "retryable", "retryable-clean", "clean"),
});
const attemptsArb = fc.array(attemptArb, { minLength: 1, maxLength: MAX_ATTEMPTS });
const planArb: fc.Arbitrary<RunPlan> = fc.record({
  keys: keysArb,
  attempts: attemptsArb,
  followUp: fc.option(fc.record({ keys: keysArb, attempts: attemptsArb }), { nil: null }),
});
export const plansArb = fc.array(planArb, { minLength: 2, maxLength: 6 });

export interface GuardModelStats {
  properties: number;
  runs: number;
  bodies: number;
  retries: number;
  markConsistent: number;
  poisoned: number;
  refused: number;
  steps: number;
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
    elapsedMs: 0,
  };
  const started = performance.now();
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), plansArb, async (s, plans) => {
        stats.properties++;
        await runModel(s, plans, stats);
      }),
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
function scheduledDriver(s: fc.Scheduler, stats: GuardModelStats) {
  const inner = memoryDriver();
  const control = { direct: false };
  const step = async <R>(label: string, call: () => Promise<R>): Promise<R> => {
    if (control.direct) return call();
    stats.steps++;
    await s.schedule(Promise.resolve(), `${label}: sent`);
    const result = await call();
    await s.schedule(Promise.resolve(), `${label}: answered`);
    return result;
  };
  const driver: PoisonDriver = {
    backend: inner.backend,
    capabilities: inner.capabilities,
    init: () => inner.init(),
    put: (records, audit) =>
      step(`put ${records.map((r) => r.key).join(",")} by ${records[0]?.token}`, () =>
        inner.put(records, audit),
      ),
    remove: (keys, token, audit) =>
      step(`remove ${keys.join(",")} by ${token}`, () => inner.remove(keys, token, audit)),
    update: (keys, token, patch) =>
      step(`update ${keys.join(",")} by ${token}`, () => inner.update(keys, token, patch)),
    get: (key) => step(`get ${key}`, () => inner.get(key)),
    list: (query) => step("list", () => inner.list(query)),
    audit: (query) => step("audit", () => inner.audit(query)),
    close: () => inner.close(),
  };
  return { driver, control };
}

type Settled = { kind: "value"; value: unknown } | { kind: "error"; error: unknown };

async function runModel(s: fc.Scheduler, plans: RunPlan[], stats: GuardModelStats) {
  const { driver, control } = scheduledDriver(s, stats);
  const store = createPoisonStore(driver, { namespace: "/model/", timeoutMs: 1e9 });
  const guard = new PoisonGuard(store, {
    heartbeatIntervalMs: false,
    retry: { maxAttempts: MAX_ATTEMPTS, minDelayMs: 0, maxDelayMs: 0 },
    storeRetry: { maxAttempts: 1 },
    random: () => 0.5,
  });
  const violations: string[] = [];
  const fail = (what: string) => violations.push(what);

  /** Which run's body holds each key now. */
  const occupant = new Map<string, string>();
  /** Keys a failed body left to be poisoned, with the token: no body may enter them again. */
  const quarantined = new Map<string, string>();
  /** Keys whose run already settled with OperationPoisonedError, with the token. */
  const poisonedSettled = new Map<string, string>();

  const guarded = async (name: string, token: string, keys: string[], attempts: AttemptPlan[]) => {
    stats.runs++;
    const startedOverPoison = keys.filter((key) => poisonedSettled.has(key));
    const ranAttempts: AttemptPlan[] = [];
    const bodyErrors: unknown[] = [];
    let settled: Settled;
    try {
      const value = await guard.run({ keys, token, operation: name }, async (ctx) => {
        stats.bodies++;
        const plan = attempts[Math.min(ctx.attempt, attempts.length) - 1] as AttemptPlan;
        ranAttempts.push(plan);
        if (ctx.attempt !== ranAttempts.length)
          fail(`${name}: attempt ${ctx.attempt} is its body's run number ${ranAttempts.length}`);
        for (const key of keys) {
          const other = occupant.get(key);
          if (other !== undefined) fail(`${name} entered ${key} while ${other}'s body held it`);
          const poisoner = quarantined.get(key);
          if (poisoner !== undefined) fail(`${name} entered ${key}, poisoned by ${poisoner}`);
          occupant.set(key, name);
        }
        const leave = () => {
          for (const key of keys) if (occupant.get(key) === name) occupant.delete(key);
        };
        await s.schedule(Promise.resolve(), `${name} body attempt ${ctx.attempt}: working`);
        if (plan.consistent) {
          stats.markConsistent++;
          leave(); // The resource is consistent from here on: others may take it.
          await ctx.markConsistent();
          await s.schedule(Promise.resolve(), `${name} body attempt ${ctx.attempt}: after mark`);
        }
        if (plan.ending === "ok") {
          leave();
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
          // This failure poisons: the keys stay held from here on, forever.
          for (const key of keys) quarantined.set(key, name);
        }
        leave();
        bodyErrors.push(error);
        throw error;
      });
      settled = { kind: "value", value };
    } catch (error) {
      settled = { kind: "error", error };
    }
    checkSettled(name, token, keys, ranAttempts, bodyErrors, settled, fail);
    if (settled.kind === "error" && settled.error instanceof OperationPoisonedError) {
      stats.poisoned++;
      for (const key of keys) poisonedSettled.set(key, token);
    }
    if (settled.kind === "error" && settled.error instanceof ResourcePoisonedError) stats.refused++;
    // (d): a key poisoned before this run started stays poisoned: the run must be refused.
    if (startedOverPoison.length > 0) {
      const refused = settled.kind === "error" && settled.error instanceof ResourcePoisonedError;
      if (!refused || ranAttempts.length > 0)
        fail(`${name} started over poisoned ${startedOverPoison.join(",")} and was not refused`);
    }
    return settled;
  };

  const runs = plans.map(async (plan, i) => {
    const token = `t${i}`;
    await s.schedule(Promise.resolve(), `launch run${i}`);
    const first = await guarded(`run${i}`, token, plan.keys, plan.attempts);
    if (plan.followUp === null) return;
    await s.schedule(Promise.resolve(), `launch run${i}'`);
    const poisonedBefore =
      first.kind === "error" && first.error instanceof OperationPoisonedError ? plan.keys : [];
    const second = await guarded(`run${i}'`, token, plan.followUp.keys, plan.followUp.attempts);
    const overlap = plan.followUp.keys.filter((key) => poisonedBefore.includes(key));
    if (overlap.length > 0) {
      if (!(second.kind === "error" && second.error instanceof ResourcePoisonedError))
        fail(`run${i}' ran over ${overlap.join(",")}, which its own token left poisoned`);
    }
  });

  let finished = false;
  const all = Promise.all(runs).finally(() => {
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
      if (++idleTicks > 100) {
        fail("stuck: nothing scheduled, no timer fired, runs still pending");
        break;
      }
      mock.timers.tick(1);
    }
  }
  await all;

  // (b), (c): exactly the poisoned runs' keys remain, poisoned, under their tokens.
  control.direct = true;
  const remaining: PoisonRecord[] = (await store.listPoisons({})).records;
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
  for (const [key, token] of expected) fail(`${key}, poisoned by ${token}, is gone`);
  for (const [key, name] of quarantined)
    if (!poisonedSettled.has(key)) fail(`${name}'s failure should have poisoned ${key}`);
  await store.close();

  if (violations.length > 0) {
    throw new Error(`${violations.join("\n")}\nschedule:\n${String(s)}`);
  }
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
