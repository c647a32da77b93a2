/**
 * `npm run bench` smoke tests, so the benchmark cannot rot: a short run on the in-process
 * backends prints the documented `--json` shape (operation rows, then the watch rows), `--scale`
 * fills and lists a small store, and the watch measurement works on memory: and refuses two
 * stores that do not share their keys. Shapes only: timings on a shared machine prove nothing.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { guardOverhead, type Row } from "../bench/report.js";
import { measureWatch, nearestRank, watchTable } from "../bench/watch.js";
import { openPoisonStore } from "../src/index.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const run = promisify(execFile);

async function bench(...args: string[]): Promise<unknown> {
  const { stdout } = await run("npm", ["run", "--silent", "bench", "--", ...args], {
    cwd: root,
    maxBuffer: 16 * 2 ** 20,
    timeout: 180_000,
  });
  return JSON.parse(stdout);
}

const isNumber = (value: unknown) => typeof value === "number" && Number.isFinite(value);
const OPERATIONS = [
  "tryPutPoison+deletePoison",
  "getPoison",
  "tryPutPoison-conflict",
  "guard.run",
] as const;

describe("npm run bench", () => {
  it("--json: a measured row per backend, operation and concurrency, then a watch row per backend", async () => {
    const rows = (await bench(
      "--backend",
      "memory,sqlite",
      "--duration",
      "100ms",
      "--concurrency",
      "1",
      "--watch-changes",
      "4",
      "--json",
    )) as Array<Record<string, unknown>>;
    assert.ok(Array.isArray(rows));
    const operationRows = rows.filter((row) => "operation" in row);
    const watchRows = rows.filter((row) => "watch" in row);
    assert.equal(operationRows.length + watchRows.length, rows.length, "no other kind of row");
    for (const backend of ["memory", "sqlite"]) {
      for (const operation of OPERATIONS) {
        const row = operationRows.find((r) => r.backend === backend && r.operation === operation);
        assert.ok(row, `${backend} ${operation}`);
        assert.equal(row.concurrency, 1);
        if ("skipped" in row) {
          // Only the guard may be missing from a build; the baseline is still measured.
          assert.equal(operation, "guard.run", String(row.skipped));
          continue;
        }
        for (const side of ["ours", "baseline"]) {
          const figures = row[side] as Record<string, unknown>;
          for (const field of ["opsPerSec", "p50Ms", "p99Ms"])
            assert.ok(isNumber(figures[field]), `${backend} ${operation} ${side}.${field}`);
        }
        assert.ok(isNumber(row.ratio));
      }
      const watch = watchRows.find((row) => row.backend === backend)?.watch as
        | Record<string, unknown>
        | undefined;
      assert.ok(watch, `${backend} watch row`);
      assert.ok(!("skipped" in watch), String(watch.skipped));
      assert.ok(watch.source === "native" || watch.source === "polling");
      assert.equal(watch.changes, 4);
      for (const field of ["readyMs", "p50Ms", "p99Ms", "maxMs", "beforeResolution"])
        assert.ok(isNumber(watch[field]), `${backend} watch.${field}`);
      assert.ok((watch.p50Ms as number) <= (watch.p99Ms as number));
      assert.ok((watch.p99Ms as number) <= (watch.maxMs as number));
    }
  });

  it("--scale --json: fills a small store through batches and lists it", async () => {
    const rows = (await bench(
      "--scale",
      "--sizes",
      "1500",
      "--backend",
      "memory,sqlite",
      "--duration",
      "100ms",
      "--concurrency",
      "1",
      "--json",
    )) as Array<Record<string, unknown>>;
    assert.deepEqual(
      rows.map((row) => [row.backend, row.size]),
      [
        ["memory", 1500],
        ["sqlite", 1500],
      ],
    );
    for (const row of rows) {
      for (const field of [
        "fillSeconds",
        "putOpsPerSec",
        "getOpsPerSec",
        "listSeconds",
        "listHeapGrowthMB",
        "listPeakRssMB",
      ])
        assert.ok(isNumber(row[field]), `${row.backend} ${field}`);
      assert.equal(row.listPages, 2);
    }
  });
});

describe("the watch measurement", () => {
  it("measures every change on memory: from another store object on the same map", async () => {
    const name = `bench-test-${randomUUID()}`;
    const watcher = openPoisonStore(`memory:${name}`);
    const writer = openPoisonStore(`memory:${name}`);
    try {
      const figures = await measureWatch(
        { watcher, writer },
        { changes: 9, gapMs: { min: 1, max: 5 }, timeoutMs: 10_000 },
      );
      assert.equal(figures.changes, 9);
      assert.ok(figures.source === "native" || figures.source === "polling");
      assert.ok(figures.p50Ms >= 0 && figures.p50Ms <= figures.p99Ms);
      assert.ok(figures.p99Ms <= figures.maxMs);
      assert.ok(figures.beforeResolution >= 0 && figures.beforeResolution <= 9);
      // Nothing is left behind in the watched prefix.
      assert.equal((await writer.listPoisons({ prefix: "watch" })).records.length, 0);
      assert.match(
        watchTable([{ backend: "memory", watch: figures }]),
        /memory\s+(native|polling)\s+9 \|/,
      );
    } finally {
      await watcher.close();
      await writer.close();
    }
  });

  it("refuses two stores that do not share their keys", async () => {
    const watcher = openPoisonStore("memory:");
    const writer = openPoisonStore("memory:");
    try {
      await assert.rejects(
        measureWatch({ watcher, writer }, { changes: 1, timeoutMs: 1000 }),
        /does not see the writing store's keys/,
      );
    } finally {
      await watcher.close();
      await writer.close();
    }
  });

  it("takes nearest-rank quantiles", () => {
    const twenty = Array.from({ length: 20 }, (_, i) => i + 1);
    assert.equal(nearestRank(twenty, 0.5), 10);
    assert.equal(nearestRank(twenty, 0.99), 20);
    assert.equal(nearestRank([7], 0.5), 7);
    assert.ok(Number.isNaN(nearestRank([], 0.5)));
  });
});

describe("bench report", () => {
  const side = (opsPerSec: number) => ({ opsPerSec, p50Ms: 1, p99Ms: 1 });
  const row = (operation: (typeof OPERATIONS)[number], concurrency: number, ours: number): Row => ({
    backend: "memory",
    operation,
    concurrency,
    ours: side(ours),
    baseline: side(1000),
    ratio: ours / 1000,
  });

  it("guardOverhead: guard.run over our own put+delete, per concurrency", () => {
    const rows = [
      row("tryPutPoison+deletePoison", 1, 400),
      row("guard.run", 1, 300),
      row("tryPutPoison+deletePoison", 32, 800),
      row("guard.run", 32, 720),
    ];
    assert.equal(
      guardOverhead(rows),
      "guard.run over our own tryPutPoison+deletePoison (separate cells): ×1 0.75, ×32 0.90",
    );
  });

  it("guardOverhead: nothing to say without both cells", () => {
    assert.equal(guardOverhead([row("guard.run", 1, 300)]), null);
    assert.equal(
      guardOverhead([
        row("tryPutPoison+deletePoison", 1, 400),
        { backend: "memory", operation: "guard.run", concurrency: 1, skipped: "not built" },
      ]),
      null,
    );
  });
});
