import { randomUUID } from "node:crypto";
import { redisDriver } from "../../src/index.js";
import { redisUnavailable, redisUrl } from "../support/servers.js";
import { guardSuite } from "./suite.js";

const keyPrefix = `{poison-guard-test-${randomUUID()}}:`;

await guardSuite({
  name: "redis",
  unavailable: redisUnavailable,
  driver: () => redisDriver({ url: redisUrl, keyPrefix }),
});
