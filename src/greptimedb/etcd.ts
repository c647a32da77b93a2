/**
 * The greptimedb layout on etcd: the etcd driver itself, which already writes GreptimeDB's poison
 * keys byte for byte, with its namespace at `<storeKeyPrefix>/__procedure_poison/` and its records
 * and audit entries under `<storeKeyPrefix>/__poison_store/` (inside the metasrv's chroot, outside
 * every range GreptimeDB reads). Every write is one etcd transaction comparing revisions, so it is
 * linearizable with GreptimeDB's own poison transactions on the same keys (value compares, also
 * etcd transactions). GreptimeDB's other keys are read through a gateway of the same kind (same
 * endpoints, TLS and credentials).
 */

import { createEtcdGateway, parseEtcdLocation } from "../drivers/etcd/gateway.js";
import { etcdDriver } from "../drivers/etcd.js";
import type { GreptimeDriver, GreptimeMetadataReader } from "./driver.js";
import { ownMetaPrefix, type StoredEntry } from "./layout.js";
import type { GreptimeLayout } from "./options.js";

export interface GreptimeEtcdOptions {
  /** `etcd[s]://[user:password@]host:port[,host:port…]` without the layout's parameters. */
  url: string;
  layout: GreptimeLayout;
  /** Where the store is, safe to print. */
  location: string;
}

interface RawKv {
  key?: string;
  value?: string;
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

export function greptimeEtcdDriver(options: GreptimeEtcdOptions): GreptimeDriver {
  const driver = etcdDriver({
    url: options.url,
    metaPrefix: ownMetaPrefix(options.layout.storeKeyPrefix),
  });
  const gateway = createEtcdGateway(parseEtcdLocation({ url: options.url }), {
    requestTimeoutMs: 4000,
  });
  const entries = (reply: Record<string, unknown>): StoredEntry[] =>
    ((reply.kvs as RawKv[] | undefined) ?? []).map((kv) => ({
      key: Buffer.from(kv.key ?? "", "base64").toString("utf8"),
      value: Buffer.from(kv.value ?? "", "base64"),
    }));

  const metadata: GreptimeMetadataReader = {
    async get(keys) {
      const found = new Map<string, Uint8Array>();
      if (keys.length === 0) return found;
      // One transaction of plain ranges: every key read at one revision.
      const reply = await gateway.post("/v3/kv/txn", {
        compare: [],
        success: keys.map((key) => ({ request_range: { key: b64(key) } })),
        failure: [],
      });
      const responses = (reply.responses as Record<string, Record<string, unknown>>[]) ?? [];
      for (const response of responses) {
        for (const entry of entries(response.response_range ?? {})) {
          found.set(entry.key, entry.value as Uint8Array);
        }
      }
      return found;
    },
    async range(prefix, limit) {
      if (prefix === "") throw new Error("a range read needs a prefix");
      const start = Buffer.from(prefix, "utf8");
      const end = Buffer.from(start);
      // UTF-8 never holds 0xFF, so bumping the last byte bounds the prefix (an empty prefix is
      // never asked for).
      end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
      const reply = await gateway.post("/v3/kv/range", {
        key: start.toString("base64"),
        range_end: end.toString("base64"),
        limit: String(limit),
      });
      return entries(reply);
    },
    async found() {
      return true;
    },
  };

  return {
    ...driver,
    location: options.location,
    greptime: { layout: options.layout, metadata },
    async close() {
      await Promise.all([driver.close(), gateway.close()]);
    },
  };
}
