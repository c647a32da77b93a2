/**
 * Redis baseline: ioredis on one connection (as the driver), one value per key (the holder's
 * token), and the two writes as small Lua scripts sent with EVALSHA (defineCommand), so each
 * call is one round trip that Redis runs without interleaving. Durability is the server's
 * (appendonly/appendfsync as configured), the same as the driver's.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import type { Baseline } from "./baseline.js";

/** Put-if-absent: nil when written, else the holder's token (nothing written). */
const PUT = `local holder = redis.call("GET", KEYS[1])
if holder then return holder end
redis.call("SET", KEYS[1], ARGV[1])
return false`;

/** Delete-if-token: nil when deleted or absent, else the holder's token (the key stays). */
const DELETE = `local holder = redis.call("GET", KEYS[1])
if holder == ARGV[1] then redis.call("DEL", KEYS[1]) return false end
return holder`;

interface ScriptedRedis extends Redis {
  benchPut(key: string, token: string): Promise<string | null>;
  benchDelete(key: string, token: string): Promise<string | null>;
}

export async function redisBaseline(url: string): Promise<Baseline> {
  const redis = new Redis(url, { lazyConnect: true }) as ScriptedRedis;
  await redis.connect();
  redis.defineCommand("benchPut", { numberOfKeys: 1, lua: PUT });
  redis.defineCommand("benchDelete", { numberOfKeys: 1, lua: DELETE });
  // The server is shared: every key of this baseline lives under its own prefix, removed on
  // close whatever a failed run left behind.
  const prefix = `poison-bench-baseline:${randomUUID()}:`;

  return {
    async tryPut(key, token) {
      const holder = await redis.benchPut(prefix + key, token);
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
