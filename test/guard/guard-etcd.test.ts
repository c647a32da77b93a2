import { etcdDriver } from "../../src/index.js";
import { etcdUnavailable, etcdUrl } from "../support/servers.js";
import { guardSuite } from "./suite.js";

await guardSuite({
  name: "etcd",
  unavailable: etcdUnavailable,
  driver: () => etcdDriver({ url: etcdUrl }),
});
