/** `testDriver(harness)`: the whole conformance suite, one behaviour per file. */
import { batches } from "./batches.js";
import { concurrency } from "./concurrency.js";
import { coreContract } from "./core.js";
import { filters } from "./filters.js";
import { type DriverHarness, runSuite } from "./harness.js";
import { lifecycle } from "./lifecycle.js";
import { listing } from "./listing.js";
import { liveness } from "./liveness.js";
import { namespaces } from "./namespaces.js";
import { records } from "./records.js";
import { recovery } from "./recovery.js";
import { validation } from "./validation.js";
import { watch } from "./watch.js";

export type { DriverHarness } from "./harness.js";
export {
  AWKWARD_KEYS,
  type Behaviour,
  backendFilter,
  backendSkipReason,
  isSelected,
  rejectsWith,
  type SuiteContext,
} from "./harness.js";

export function testDriver(harness: DriverHarness): Promise<void> {
  return runSuite(harness, {
    "core contract (SPEC §2)": coreContract,
    "input validation": validation,
    "records (SPEC §3)": records,
    listing,
    "listing filters (SPEC §7)": filters,
    "recovery and audit": recovery,
    "live holders (SPEC §7)": liveness,
    "batches for the guard": batches,
    namespaces,
    concurrency,
    lifecycle,
    "watch (SPEC §7)": watch,
  });
}
