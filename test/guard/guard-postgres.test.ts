import { postgresDriver } from "../../src/index.js";
import { postgresUnavailable, postgresUrl } from "../support/servers.js";
import { guardSuite } from "./suite.js";

await guardSuite({
  name: "postgres",
  unavailable: postgresUnavailable,
  driver: () => postgresDriver({ url: postgresUrl }),
});
