import { randomUUID } from "node:crypto";
import { memoryDriver } from "../../src/index.js";
import { guardSuite } from "./suite.js";

// One named map per run, so every store the suite opens shares the same backend.
const name = `guard-${randomUUID()}`;

await guardSuite({ name: "memory", driver: () => memoryDriver({ name }) });
