/**
 * `openPoisonStore(url, { layout: "greptimedb" })`: a store on a GreptimeDB metasrv's own
 * metadata. Its namespace is fixed, `<storeKeyPrefix>/__procedure_poison/`, so keys are
 * GreptimeDB's (`table/1024`); it opens read-only unless `allowWrite`.
 */
import type { PoisonStoreClient } from "../core/contract.js";
import { InvalidArgumentError } from "../core/errors.js";
import { createPoisonStore, type PoisonStoreOptions } from "../core/store.js";
import { type GreptimeDriver, gateWrites, registerGreptimeStore } from "./driver.js";
import { greptimeEtcdDriver } from "./etcd.js";
import { poisonNamespace } from "./layout.js";
import { greptimeMysqlDriver } from "./mysql.js";
import { type GreptimeLayoutOptions, resolveGreptimeLayout } from "./options.js";
import { greptimePostgresDriver } from "./postgres.js";

export function openGreptimeStore(
  url: string,
  options: PoisonStoreOptions & GreptimeLayoutOptions,
): PoisonStoreClient {
  const { layout: _layout, storeKeyPrefix, table, schema, allowWrite, ...storeOptions } = options;
  const resolved = resolveGreptimeLayout(url, {
    layout: options.layout,
    storeKeyPrefix,
    table,
    schema,
    allowWrite,
  });
  const { layout, clientUrl, location } = resolved;
  const namespace = poisonNamespace(layout.storeKeyPrefix);
  if (storeOptions.namespace !== undefined && storeOptions.namespace !== namespace) {
    throw new InvalidArgumentError(
      "options.namespace",
      `is fixed by the greptimedb layout to ${JSON.stringify(namespace)} (the store key prefix, then /__procedure_poison/); set storeKeyPrefix instead`,
    );
  }
  const settings = { url: clientUrl, layout, location };
  let driver: GreptimeDriver;
  if (layout.backend === "etcd") driver = greptimeEtcdDriver(settings);
  else if (layout.backend === "postgres") driver = greptimePostgresDriver(settings);
  else driver = greptimeMysqlDriver(settings);
  const gated = gateWrites(driver, location);
  const store = createPoisonStore(gated, { location, ...storeOptions, namespace });
  registerGreptimeStore(store, gated);
  return store;
}
