import { guardHarness } from "../support/backends.js";
import { guardSuite } from "./suite.js";

await guardSuite(guardHarness("redis"));
