/**
 * The shared conformance suite on the greptimedb layout, opened with allowWrite, on the shared
 * etcd and PostgreSQL. The suite's namespaces become store key prefixes (the layout's namespace
 * is always `<storeKeyPrefix>/__procedure_poison/`), each unique to the run; every key and the
 * table are removed afterwards.
 *
 * MySQL does not run it: the layout never puts poison keys there (see src/greptimedb/mysql.ts),
 * and nearly every behaviour of the suite starts with a put. test/greptimedb/mysql.test.ts covers
 * what the layout does on MySQL over keys written as GreptimeDB writes them.
 */
import { openPoisonStore, type PoisonStoreOptions } from "../../src/index.js";
import { testDriver } from "../conformance/index.js";
import { etcdEndpoint, etcdUnavailable, postgresUrl } from "../support/servers.js";
import { postgresSuiteSchema } from "./places.js";

/** The suite's namespace `/poison-test/<run>/…/` as a store key prefix under this run's root. */
function openWithPrefixes(base: string, prefixes: Set<string>) {
  return (options: PoisonStoreOptions = {}) => {
    const { namespace, ...rest } = options;
    if (namespace === undefined) {
      return openPoisonStore(base, { layout: "greptimedb", allowWrite: true, ...rest });
    }
    // A non-string namespace goes through as the prefix, to be refused as the suite expects.
    const storeKeyPrefix =
      typeof namespace === "string" ? namespace.replace(/\/$/, "") : (namespace as string);
    if (typeof storeKeyPrefix === "string") prefixes.add(storeKeyPrefix);
    return openPoisonStore(base, {
      layout: "greptimedb",
      allowWrite: true,
      storeKeyPrefix,
      ...rest,
    });
  };
}

// ---- etcd (the shared server) -----------------------------------------------------------------

const etcdPrefixes = new Set<string>();
const b64 = (bytes: Buffer) => bytes.toString("base64");

await testDriver({
  name: "etcd",
  durable: true,
  unavailable: etcdUnavailable,
  open: openWithPrefixes("etcd://127.0.0.1:2379", etcdPrefixes),
  async teardown() {
    // Every key under each store key prefix the run used: poison keys and our own.
    for (const prefix of etcdPrefixes) {
      if (!prefix) continue;
      const start = Buffer.from(prefix, "utf8");
      const end = Buffer.from(start);
      end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
      await fetch(`${etcdEndpoint}/v3/kv/deleterange`, {
        method: "POST",
        body: JSON.stringify({ key: b64(start), range_end: b64(end) }),
      });
    }
  },
});

// ---- PostgreSQL: GreptimeDB's table in a schema of the run ------------------------------------

const postgresSchema = postgresSuiteSchema("conformance");
const postgresPrefixes = new Set<string>();

await testDriver({
  name: "postgres",
  durable: true,
  unavailable: postgresSchema.unavailable,
  open: openWithPrefixes(
    `${postgresUrl}?layout=greptimedb&schema=${postgresSchema.schema}`,
    postgresPrefixes,
  ),
  teardown: postgresSchema.teardown,
});
