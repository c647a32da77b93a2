/** `guardSuite(harness)`: PoisonGuard's behaviour (SPEC §5) on one backend, one file per theme. */
import { beforeBody } from "./before-body.js";
import { concurrency } from "./concurrency.js";
import { context } from "./context.js";
import { events } from "./events.js";
import { faults } from "./faults.js";
import { type GuardHarness, runGuardSuite } from "./harness.js";
import { liveness } from "./liveness.js";
import { lost } from "./lost.js";
import { outcomes } from "./outcomes.js";

export type { GuardHarness } from "./harness.js";

export function guardSuite(harness: GuardHarness): Promise<void> {
  return runGuardSuite(harness, {
    "before the body": beforeBody,
    "after the body": outcomes,
    "markConsistent and signal": context,
    "resume and heartbeats": liveness,
    "lost keys and live holders (SPEC §7)": lost,
    "store failures": faults,
    "racing runs": concurrency,
    events,
  });
}
