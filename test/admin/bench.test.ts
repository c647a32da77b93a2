/**
 * The admin list benchmark (`npm run bench -- --admin`) on a small store, so it cannot rot: it
 * walks every page, and reports figures of the documented shape.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { adminTable, runAdminBench } from "../../bench/admin.js";

it("the admin list benchmark walks every page and reports p50, p99 and memory", async () => {
  const tempDir = mkdtempSync(join(tmpdir(), "poison-admin-bench-"));
  try {
    const rows = await runAdminBench(
      { keys: 250, pageSize: 100, durationMs: 100, tempDir },
      () => {},
    );
    assert.deepEqual(
      rows.map((row) => row.filter),
      ["none", "state=poisoned"],
    );
    const [all] = rows;
    assert.ok(all);
    assert.equal(all.pagesPerWalk, 3);
    assert.ok(all.requests >= 3);
    assert.ok(all.p50Ms > 0 && all.p99Ms >= all.p50Ms);
    assert.ok(all.pageKB > 0);
    assert.match(adminTable(rows), /target p50 < 10 ms/);
  } finally {
    rmSync(tempDir, { recursive: true, force: true });
  }
});
