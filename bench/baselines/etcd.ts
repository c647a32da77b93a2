/**
 * etcd baseline: node:http with a keep-alive agent (the driver's client; it beats Node's fetch on
 * this path) against etcd's JSON gateway, as the driver, with only the poison
 * key (its value the holder's token; no record key). Each write is one transaction: put-if-absent
 * compares create_revision = 0, delete-if-token compares the value, and the failure branch reads
 * the key in the same transaction, so a conflict names the holder in the same round trip.
 * Durability is etcd's (every write is committed through raft and fsynced), the same as the
 * driver's.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { Baseline } from "./baseline.js";

interface RangeReply {
  kvs?: { value?: string }[];
}
interface TxnReply {
  succeeded?: boolean;
  responses?: { response_range?: RangeReply }[];
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
const holderOf = (range: RangeReply | undefined): string | null => {
  const value = range?.kvs?.[0]?.value;
  return value === undefined ? null : Buffer.from(value, "base64").toString("utf8");
};

export async function etcdBaseline(url: string): Promise<Baseline> {
  const hostPort = /^etcd:\/\/([^/,?]+)/i.exec(url)?.[1] ?? "127.0.0.1:2379";
  const endpoint = `http://${hostPort}`;
  const { hostname, port } = new URL(endpoint);
  const agent = new http.Agent({ keepAlive: true });
  const post = <T>(path: string, body: unknown): Promise<T> =>
    new Promise((resolve, reject) => {
      const payload = JSON.stringify(body);
      const request = http.request(
        {
          method: "POST",
          hostname,
          port,
          path,
          agent,
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(payload),
          },
        },
        (response) => {
          let text = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => {
            text += chunk;
          });
          response.on("end", () => {
            if (response.statusCode !== 200) {
              reject(new Error(`etcd ${path} answered HTTP ${response.statusCode}: ${text}`));
            } else {
              resolve(JSON.parse(text) as T);
            }
          });
          response.on("error", reject);
        },
      );
      request.on("error", reject);
      request.end(payload);
    });
  // The server is shared: every key of this baseline lives under its own prefix, removed on
  // close whatever a failed run left behind.
  const prefix = `/__poison_bench_baseline__/${randomUUID()}/`;
  await post("/v3/kv/range", { key: b64(prefix) });

  return {
    async tryPut(key, token) {
      const k = b64(prefix + key);
      const reply = await post<TxnReply>("/v3/kv/txn", {
        compare: [{ key: k, target: "CREATE", result: "EQUAL", create_revision: "0" }],
        success: [{ request_put: { key: k, value: b64(token) } }],
        failure: [{ request_range: { key: k } }],
      });
      if (reply.succeeded) return null;
      const holder = holderOf(reply.responses?.[0]?.response_range);
      return holder === token ? null : holder;
    },
    async delete(key, token) {
      const k = b64(prefix + key);
      const reply = await post<TxnReply>("/v3/kv/txn", {
        compare: [{ key: k, target: "VALUE", result: "EQUAL", value: b64(token) }],
        success: [{ request_delete_range: { key: k } }],
        failure: [{ request_range: { key: k } }],
      });
      // A failed compare on an absent key reads nothing: absent is fine.
      return reply.succeeded ? null : holderOf(reply.responses?.[0]?.response_range);
    },
    async get(key) {
      return holderOf(await post<RangeReply>("/v3/kv/range", { key: b64(prefix + key) }));
    },
    async close() {
      const end = Buffer.from(prefix, "utf8");
      end[end.length - 1] = (end[end.length - 1] as number) + 1;
      await post("/v3/kv/deleterange", { key: b64(prefix), range_end: end.toString("base64") });
      agent.destroy();
    },
  };
}
