import { mysqlDriver } from "../../src/index.js";
import { mysqlUnavailable, mysqlUrl } from "../support/servers.js";
import { guardSuite } from "./suite.js";

await guardSuite({
  name: "mysql",
  unavailable: mysqlUnavailable,
  driver: () => mysqlDriver({ url: mysqlUrl }),
});
