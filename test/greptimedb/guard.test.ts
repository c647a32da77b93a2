/**
 * PoisonGuard's suite on the greptimedb layout's drivers (allowWrite), unchanged: on a private
 * etcd (removed afterwards) and on GreptimeDB's table in a PostgreSQL schema of the run (dropped
 * afterwards). Not on MySQL, where the layout never puts.
 */
import { gateWrites } from "../../src/greptimedb/driver.js";
import { greptimeEtcdDriver } from "../../src/greptimedb/etcd.js";
import type { GreptimeLayout } from "../../src/greptimedb/options.js";
import { greptimePostgresDriver } from "../../src/greptimedb/postgres.js";
import { guardSuite } from "../guard/suite.js";
import { postgresUrl } from "../support/servers.js";
import {
  type PrivateEtcd,
  postgresSuiteSchema,
  privateEtcdUnavailable,
  startPrivateEtcd,
} from "./places.js";

const layout = (backend: GreptimeLayout["backend"], schema: string | null): GreptimeLayout => ({
  backend,
  storeKeyPrefix: "guard",
  table: "greptime_metakv",
  schema,
  allowWrite: true,
});

let etcd: PrivateEtcd | null = null;
await guardSuite({
  name: "etcd",
  async unavailable() {
    const reason = await privateEtcdUnavailable();
    if (reason === null) etcd ??= await startPrivateEtcd();
    return reason;
  },
  driver() {
    const location = `${etcd?.url}?layout=greptimedb`;
    const settings = { url: etcd?.url as string, layout: layout("etcd", null), location };
    return gateWrites(greptimeEtcdDriver(settings), location);
  },
  teardown: async () => etcd?.stop(),
});

const postgresSchema = postgresSuiteSchema("guard");
const { schema } = postgresSchema;
await guardSuite({
  name: "postgres",
  unavailable: postgresSchema.unavailable,
  driver() {
    const location = `${postgresUrl}?layout=greptimedb&schema=${schema}`;
    const settings = { url: postgresUrl, layout: layout("postgres", schema), location };
    return gateWrites(greptimePostgresDriver(settings), location);
  },
  teardown: postgresSchema.teardown,
});
