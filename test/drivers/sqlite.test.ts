import { testDriver } from "../conformance/index.js";
import { conformanceHarness } from "../support/backends.js";

await testDriver(conformanceHarness("sqlite"));
