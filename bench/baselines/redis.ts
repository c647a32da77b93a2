/**
 * Redis baseline: ioredis on one connection (as the driver), one value per key (the holder's
 * token). Put-if-absent is one native command, `SET key token NX GET` (Redis 7: writes only when
 * absent and answers the previous value, so the holder comes back in the same round trip, no
 * Lua at all); delete-if-token is a compare-delete Lua script sent with EVALSHA (defineCommand).
 * Each call is one round trip that Redis runs without interleaving. Durability is the server's
 * (appendonly/appendfsync as configured), the same as the driver's.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import type { Baseline } from "./baseline.js";

/** Delete-if-token: nil when deleted or absent, else the holder's token (the key stays). */
const DELETE = `local holder = redis.call("GET", KEYS[1])
if holder == ARGV[1] then redis.call("DEL", KEYS[1]) return false end
return holder`;

interface ScriptedRedis extends Redis {
  benchDelete(key: string, token: string): Promise<string | null>;
}

export async function redisBaseline(url: string): Promise<Baseline> {
  const redis = new Redis(url, { lazyConnect: true }) as ScriptedRedis;
  await redis.connect();
  redis.defineCommand("benchDelete", { numberOfKeys: 1, lua: DELETE });
  // The server is shared: every key of this baseline lives under its own prefix, removed on
  // close whatever a failed run left behind.
  const prefix = `poison-bench-baseline:${randomUUID()}:`;

  return {
    async tryPut(key, token) {
      // null: it was absent and is now written; else the holder, and nothing was written.
      const holder = await redis.set(prefix + key, token, "NX", "GET");
      return holder === null || holder === token ? null : holder;
    },
    delete: (key, token) => redis.benchDelete(prefix + key, token),
    get: (key) => redis.get(prefix + key),
    async close() {
      try {
        let cursor = "0";
        do {
          const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
          if (keys.length > 0) await redis.del(...keys);
          cursor = next;
        } while (cursor !== "0");
      } finally {
        redis.disconnect();
      }
    },
  };
}
