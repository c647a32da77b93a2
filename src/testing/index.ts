/**
 * `poison-store/testing`: the conformance suite every backend of this package passes, for a
 * driver of your own. Call it from a test file run by `node --test`:
 *
 * ```ts
 * import { createPoisonStore } from "poison-store";
 * import { testDriver } from "poison-store/testing";
 *
 * await testDriver({
 *   name: "mydb",
 *   durable: true,
 *   open: (options) => createPoisonStore(myDriver({ url }), options),
 * });
 * ```
 *
 * The suite itself lives in test/conformance (one file per behaviour, SPEC §2-§7), where this
 * repository's own backends run it; this entry re-exports it so the package ships exactly the
 * cases the built-in drivers pass. It imports `node:test` and `node:assert`, which is why it is a
 * separate entry: importing "poison-store" never loads the test runner.
 */
export {
  AWKWARD_KEYS,
  type Behaviour,
  backendSkipReason,
  type DriverHarness,
  rejectsWith,
  type SuiteContext,
  testDriver,
} from "../../test/conformance/index.js";
