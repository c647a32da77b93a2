/** Several processes on one SQLite file race for the same keys: exactly one wins each key. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { openPoisonStore } from "../../src/index.js";
import { spawnTs } from "../support/child.js";

const CHILD = "test/fixtures/sqlite-child.ts";
const PROCESSES = 4;
const KEYS = 150;

describe("sqlite: several processes on one file", () => {
  const dir = mkdtempSync(join(tmpdir(), "poison-multi-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`${PROCESSES} processes race for ${KEYS} keys: exactly one winner per key, seen by all`, async (t) => {
    const path = join(dir, "race.db");
    const racers = Array.from({ length: PROCESSES }, (_, i) =>
      spawnTs(CHILD, ["racer", path, `proc-${i}`, String(KEYS)]),
    );
    for (const racer of racers) assert.equal(await racer.nextLine(), "ready");
    for (const racer of racers) racer.process.stdin?.write("go\n");
    const results = await Promise.all(
      racers.map(
        async (racer) =>
          JSON.parse(await racer.nextLine()) as { won: string[]; lost: Record<string, string> },
      ),
    );
    for (const racer of racers) assert.equal((await racer.exited).code, 0);

    const store = openPoisonStore(`sqlite:${path}`, { namespace: "/child/" });
    try {
      for (let k = 0; k < KEYS; k++) {
        const key = `key-${k}`;
        const winners = results.flatMap((r, i) => (r.won.includes(key) ? [`proc-${i}`] : []));
        assert.equal(winners.length, 1, `${key}: winners ${winners.join(",")}`);
        assert.equal(await store.getPoison(key), winners[0]);
        results.forEach((r, i) => {
          if (`proc-${i}` !== winners[0])
            assert.equal(r.lost[key], winners[0], `${key} conflict names the winner`);
        });
      }
      t.diagnostic(`keys won per process: ${results.map((r) => r.won.length).join(", ")}`);
    } finally {
      await store.close();
    }
  });
});
