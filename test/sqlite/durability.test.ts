/**
 * SQLite is durable when the promise resolves: a child puts keys and prints an acknowledgement
 * after each put resolved; it is killed with SIGKILL; a second process must read every
 * acknowledged key.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { spawnTs } from "../support/child.js";

const CHILD = "test/fixtures/sqlite-child.ts";

describe("sqlite: durability across kill -9", () => {
  const dir = mkdtempSync(join(tmpdir(), "poison-durable-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const round of [1, 2, 3]) {
    it(`round ${round}: every put acknowledged before SIGKILL is read by another process`, async () => {
      const path = join(dir, `durable-${round}.db`);
      const writer = spawnTs(CHILD, ["writer", path]);
      // Kill at a different point each round, right after an acknowledgement.
      const killAfter = 5 + round * 17;
      let acked = -1;
      while (acked < killAfter) {
        const line = await writer.nextLine();
        const match = /^ack (\d+)$/.exec(line);
        assert.ok(match, `unexpected line ${line}`);
        acked = Number(match[1]);
      }
      writer.process.kill("SIGKILL");
      const { signal } = await writer.exited;
      assert.equal(signal, "SIGKILL");

      const keys = Array.from({ length: acked + 1 }, (_, i) => `key-${i}`);
      const reader = spawnTs(CHILD, ["reader", path, ...keys]);
      const found = JSON.parse(await reader.nextLine()) as Record<string, string | null>;
      assert.equal((await reader.exited).code, 0);
      for (let i = 0; i <= acked; i++)
        assert.equal(found[`key-${i}`], `token-${i}`, `key-${i} lost`);
    });
  }
});
