/**
 * `npm run bench`: every backend's core calls against a hand-written baseline with the same
 * client, interleaved in one run; `--scale` fills stores with up to 1M records instead.
 * See docs/BENCHMARKS.md for the options, the output and the latest figures.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openPoisonStore, type PoisonStoreClient } from "../src/index.js";
import { adminTable, runAdminBench } from "./admin.js";
import { BACKEND_NAMES, type BackendEntry, type BackendName, backendRegistry } from "./backends.js";
import { type Baseline, checkBaseline } from "./baselines/baseline.js";
import { compare } from "./measure.js";
import {
  cellChecks,
  type GuardLike,
  HELD_KEY,
  HOLDER,
  loadGuard,
  OPERATION_NAMES,
  operationSides,
  PRESENT_KEY,
} from "./operations.js";
import { humanTable, type JsonRow, type Row, svgChart } from "./report.js";
import { runScale, type ScaleRow, scaleTable } from "./scale.js";
import { measureWatch, type WatchRow, watchTable } from "./watch.js";

const USAGE = `Usage: npm run bench -- [options]

  --backend LIST       backends to measure (default ${BACKEND_NAMES.join(",")})
  --duration TIME      measured time per side and cell, e.g. 2s, 500ms (default 2s)
  --concurrency LIST   in-flight calls (default 1,32)
  --json               print one JSON document on stdout instead of tables
  --svg PATH           also write the chart (ours vs baseline, and the watch delay) to PATH
  --watch-changes N    changes made under a store.watch() per backend, to measure the delay
                       from each write to its event (default 20; 0: no watch measurement)
  --scale              fill stores with --sizes records and measure put/get/list instead
  --sizes LIST         record counts for --scale (default 1000,100000,1000000)
  --admin              measure the admin service's list endpoint over HTTP instead (SQLite,
                       pages of 100; --duration per filter)
  --admin-keys N       keys in the store for --admin (default 10000)
  --help

Server URLs: BENCH_POSTGRES_URL, BENCH_MYSQL_URL, BENCH_REDIS_URL, BENCH_ETCD_URL.`;

/** A bad command line: printed with the usage, without a stack. */
class UsageError extends Error {}

function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  if (!match)
    throw new UsageError(`--duration: expected e.g. 2s or 500ms, got ${JSON.stringify(text)}`);
  return Number(match[1]) * (match[2] === "ms" ? 1 : 1000);
}

function parseList(option: string, text: string): number[] {
  const values = text.split(",").map((part) => Number(part.trim()));
  if (values.some((value) => !Number.isInteger(value) || value < 1))
    throw new UsageError(
      `${option}: expected positive integers separated by commas, got ${JSON.stringify(text)}`,
    );
  return values;
}

function parseCount(option: string, text: string): number {
  const value = Number(text.trim());
  if (!Number.isInteger(value) || value < 0 || text.trim() === "")
    throw new UsageError(`${option}: expected a whole number ≥ 0, got ${JSON.stringify(text)}`);
  return value;
}

function parseBackends(text: string): BackendName[] {
  const names = text.split(",").map((part) => part.trim());
  for (const name of names) {
    if (!(BACKEND_NAMES as readonly string[]).includes(name))
      throw new UsageError(
        `--backend: unknown backend ${JSON.stringify(name)}; known: ${BACKEND_NAMES.join(", ")}`,
      );
  }
  return names as BackendName[];
}

const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      backend: { type: "string", default: BACKEND_NAMES.join(",") },
      duration: { type: "string", default: "2s" },
      concurrency: { type: "string", default: "1,32" },
      json: { type: "boolean", default: false },
      svg: { type: "string" },
      scale: { type: "boolean", default: false },
      sizes: { type: "string", default: "1000,100000,1000000" },
      admin: { type: "boolean", default: false },
      "admin-keys": { type: "string", default: "10000" },
      "watch-changes": { type: "string", default: "20" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const backends = parseBackends(values.backend);
  const durationMs = parseDuration(values.duration);
  const concurrencies = parseList("--concurrency", values.concurrency);
  const watchChanges = parseCount("--watch-changes", values["watch-changes"]);
  const runId = `${process.pid}-${Date.now().toString(36)}`;
  const tempDir = mkdtempSync(join(tmpdir(), "poison-bench-"));
  const registry = backendRegistry({ tempDir });
  log(
    `poison-store bench: ${availableParallelism()} cpus (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  );
  try {
    if (values.admin) {
      const [keys] = parseList("--admin-keys", values["admin-keys"]);
      log("admin: the list endpoint over HTTP");
      const rows = await runAdminBench(
        { keys: keys as number, pageSize: 100, durationMs, tempDir },
        log,
      );
      process.stdout.write(
        values.json ? `${JSON.stringify(rows, null, 2)}\n` : `${adminTable(rows)}\n`,
      );
      return 0;
    }
    if (values.scale) {
      const sizes = parseList("--sizes", values.sizes).sort((a, b) => a - b);
      const rows: ScaleRow[] = [];
      for (const name of backends) {
        log(`scale: ${name}`);
        rows.push(
          ...(await runScale(
            registry[name],
            sizes,
            {
              concurrency: Math.max(...concurrencies),
              measureMs: Math.min(durationMs, 1000),
              namespace: `/__poison_bench__/${runId}/scale/`,
            },
            log,
          )),
        );
      }
      process.stdout.write(
        values.json ? `${JSON.stringify(rows, null, 2)}\n` : `${scaleTable(rows)}\n`,
      );
      return 0;
    }

    const rows: Row[] = [];
    const watchRows: WatchRow[] = [];
    let failed = false;
    for (const name of backends) {
      log(`bench: ${name}`);
      const outcome = await benchBackend(registry[name], { durationMs, concurrencies, runId });
      rows.push(...outcome.rows);
      failed ||= outcome.failed;
      if (watchChanges > 0) {
        const watched = await benchWatch(registry[name], { changes: watchChanges, runId, tempDir });
        watchRows.push(watched.row);
        failed ||= watched.failed;
      }
    }
    const labels = Object.fromEntries(
      backends.map((name) => [
        name,
        `ours: ${registry[name].url} · baseline: ${registry[name].baselineLabel}`,
      ]),
    );
    const json: JsonRow[] = [...rows, ...watchRows];
    process.stdout.write(
      values.json
        ? `${JSON.stringify(json, null, 2)}\n`
        : `${humanTable(rows, labels)}\n${watchRows.length > 0 ? `${watchTable(watchRows)}\n` : ""}`,
    );
    if (values.svg) {
      const title = `poison-store vs hand-written baseline, ops/s (${availableParallelism()} cpus, node ${process.version}, ${durationMs / 1000}s per side)`;
      writeFileSync(values.svg, svgChart(rows, title, watchRows));
      log(`chart written to ${values.svg}`);
    }
    return failed ? 1 : 0;
  } finally {
    rmSync(tempDir, { recursive: true, force: true });
  }
}

async function benchBackend(
  entry: BackendEntry,
  settings: { durationMs: number; concurrencies: number[]; runId: string },
): Promise<{ rows: Row[]; failed: boolean }> {
  const backend = entry.name;
  const unreachable = await entry.reachable();
  if (unreachable) return { rows: [{ backend, skipped: unreachable }], failed: false };

  let baseline: Baseline;
  const prefix = `bench/${settings.runId}/`;
  try {
    const opened = await entry.baseline();
    if ("skipped" in opened) return { rows: [{ backend, skipped: opened.skipped }], failed: false };
    baseline = opened;
  } catch (error) {
    return {
      rows: [{ backend, skipped: `baseline cannot open: ${(error as Error).message}` }],
      failed: true,
    };
  }
  let store: PoisonStoreClient | null = null;
  try {
    try {
      await checkBaseline(baseline, prefix);
    } catch (error) {
      // A wrong baseline would make every ratio meaningless: report it loudly.
      return { rows: [{ backend, skipped: (error as Error).message }], failed: true };
    }
    log(`  baseline self-checks passed`);

    let ours: PoisonStoreClient | string = entry.oursUnavailable() ?? "";
    if (ours === "") {
      store = await entry.ours({ namespace: `/__poison_bench__/${settings.runId}/` });
      try {
        await store.getPoison("probe");
        ours = store;
      } catch (error) {
        ours = `cannot open our store: ${(error as Error).message}`;
      }
    }
    let guard: GuardLike | string = typeof ours === "string" ? ours : "";
    if (typeof ours !== "string") {
      const Guard = await loadGuard();
      guard = typeof Guard === "string" ? Guard : new Guard(ours);
      await ours.tryPutPoison(PRESENT_KEY, HOLDER);
      await ours.tryPutPoison(HELD_KEY, HOLDER);
    }
    await baseline.tryPut(prefix + PRESENT_KEY, HOLDER);
    await baseline.tryPut(prefix + HELD_KEY, HOLDER);

    const rows: Row[] = [];
    for (const operation of OPERATION_NAMES) {
      for (const concurrency of settings.concurrencies) {
        const cell = `${operation}/${concurrency}`;
        const sides = operationSides(operation, ours, guard, baseline, prefix, cell);
        const checks = cellChecks(operation, ours, baseline, prefix, cell);
        const options = {
          concurrency,
          durationMs: settings.durationMs,
          slices: 8,
          warmupMs: Math.min(500, settings.durationMs / 4),
        };
        if (typeof sides.ours === "string" && typeof ours !== "string") {
          // Only this operation is missing on our side (the guard): its baseline is measured
          // in the put+delete row already.
          rows.push({ backend, operation, concurrency, skipped: sides.ours });
          continue;
        }
        await checks.before();
        const figures = await compare(
          typeof sides.ours === "string" ? null : sides.ours,
          sides.baseline,
          options,
        );
        await checks.after();
        if (figures.ours) {
          const ratio = figures.ours.opsPerSec / figures.baseline.opsPerSec;
          rows.push({
            backend,
            operation,
            concurrency,
            ours: figures.ours,
            baseline: figures.baseline,
            ratio,
          });
          log(`  ${operation} ×${concurrency}: ratio ${ratio.toFixed(2)}`);
        } else {
          rows.push({
            backend,
            operation,
            concurrency,
            skipped: String(sides.ours),
            baseline: figures.baseline,
          });
          log(`  ${operation} ×${concurrency}: ours skipped, baseline measured alone`);
        }
      }
    }
    return { rows, failed: false };
  } finally {
    // The servers are shared: remove the fixed keys even when a measurement failed.
    const cleanups = [PRESENT_KEY, HELD_KEY].flatMap((key) => [
      store?.deletePoison(key, HOLDER),
      baseline.delete(prefix + key, HOLDER),
    ]);
    await Promise.allSettled(cleanups);
    await store?.close();
    await baseline.close();
  }
}

/**
 * The watch delay on one backend (bench/watch.ts): a watching store and a writing store, two
 * objects on one backend and namespace. memory: and SQLite are private to the store object that
 * `entry.ours` opens (a fresh map, a fresh file), so both objects are opened here on one shared
 * map name / one file; a server backend's two objects are simply two `entry.ours`.
 */
async function benchWatch(
  entry: BackendEntry,
  settings: { changes: number; runId: string; tempDir: string },
): Promise<{ row: WatchRow; failed: boolean }> {
  const backend = entry.name;
  const unavailable = (await entry.reachable()) ?? entry.oursUnavailable();
  if (unavailable) return { row: { backend, watch: { skipped: unavailable } }, failed: false };
  const namespace = `/__poison_bench__/${settings.runId}/watch/`;
  const open = async (): Promise<PoisonStoreClient> => {
    switch (backend) {
      case "memory":
        return openPoisonStore(`memory:poison-bench-watch-${settings.runId}`, { namespace });
      case "sqlite":
        return openPoisonStore(`sqlite:${join(settings.tempDir, "watch.db")}`, { namespace });
      default:
        return entry.ours({ namespace });
    }
  };
  const opened: PoisonStoreClient[] = [];
  try {
    const watcher = await open();
    opened.push(watcher);
    const writer = await open();
    opened.push(writer);
    const figures = await measureWatch({ watcher, writer }, { changes: settings.changes });
    log(
      `  watch (${figures.source}): p50 ${figures.p50Ms.toFixed(1)} ms, p99 ${figures.p99Ms.toFixed(1)} ms over ${figures.changes} changes`,
    );
    return { row: { backend, watch: figures }, failed: false };
  } catch (error) {
    // A watch that loses or mislabels a change is a failure of the run, not a slow figure.
    log(`  watch failed: ${(error as Error).message}`);
    return {
      row: { backend, watch: { skipped: `failed: ${(error as Error).message}` } },
      failed: true,
    };
  } finally {
    await Promise.allSettled(opened.map((store) => store.close()));
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
    ) {
      log(`${(error as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    log(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exitCode = 2;
  },
);
