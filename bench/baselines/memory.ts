/** `memory:` baseline: an async function over a bare Map. */
import type { Baseline } from "./baseline.js";

export function memoryBaseline(): Baseline {
  const held = new Map<string, string>();
  return {
    async tryPut(key, token) {
      const holder = held.get(key);
      if (holder === undefined) {
        held.set(key, token);
        return null;
      }
      return holder === token ? null : holder;
    },
    async delete(key, token) {
      const holder = held.get(key);
      if (holder === undefined || holder === token) {
        held.delete(key);
        return null;
      }
      return holder;
    },
    async get(key) {
      return held.get(key) ?? null;
    },
    async close() {
      held.clear();
    },
  };
}
