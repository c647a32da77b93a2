/**
 * PoisonGuard's suite on the greptimedb layout's drivers (allowWrite), unchanged: on a private
 * etcd (removed afterwards) and on GreptimeDB's table in a PostgreSQL schema of the run (dropped
 * afterwards). Not on MySQL, where the layout never puts.
 */
import { randomUUID } from "node:crypto";
import { gateWrites } from "../../src/greptimedb/driver.js";
import { greptimeEtcdDriver } from "../../src/greptimedb/etcd.js";
import type { GreptimeLayout } from "../../src/greptimedb/options.js";
import { greptimePostgresDriver } from "../../src/greptimedb/postgres.js";
import { guardSuite } from "../guard/suite.js";
import { postgresUnavailable, postgresUrl } from "../support/servers.js";
import { type PrivateEtcd, pgClient, privateEtcdUnavailable, startPrivateEtcd } from "./places.js";

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

const schema = `greptime_guard_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
let created = false;
await guardSuite({
  name: "postgres",
  async unavailable() {
    const reason = await postgresUnavailable();
    if (reason !== null || created) return reason;
    const client = await pgClient();
    try {
      await client.query(`CREATE SCHEMA "${schema}"`);
      await client.query(
        `CREATE TABLE "${schema}"."greptime_metakv"(k bytea PRIMARY KEY, v bytea)`,
      );
      created = true;
    } finally {
      await client.end();
    }
    return null;
  },
  driver() {
    const location = `${postgresUrl}?layout=greptimedb&schema=${schema}`;
    const settings = { url: postgresUrl, layout: layout("postgres", schema), location };
    return gateWrites(greptimePostgresDriver(settings), location);
  },
  async teardown() {
    if (!created) return;
    const client = await pgClient();
    try {
      await client.query(`DROP SCHEMA "${schema}" CASCADE`);
    } finally {
      await client.end();
    }
  },
});
