import { randomUUID } from "node:crypto";
import { openPoisonStore } from "../../src/index.js";
import { testDriver } from "../conformance/index.js";

// One named map per run, so every store the suite opens shares the same backend.
const url = `memory:conformance-${randomUUID()}`;

await testDriver({
  name: "memory",
  durable: true, // within this process the named map outlives its stores
  open: (options) => openPoisonStore(url, options),
});
