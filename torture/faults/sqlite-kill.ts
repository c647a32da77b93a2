/**
 * SIGKILL a SQLite writer at random points, many times: after each kill, every put that was
 * acknowledged is present, every acknowledged delete is gone, and `PRAGMA integrity_check`
 * says ok. The writer is a separate process (sqlite-writer.ts), killed without warning.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { openPoisonStore } from "../../src/index.js";
import { prng } from "../lin/generate.js";

export interface KillReport {
  kills: number;
  /** Acknowledged puts checked after the kills (the last state of each key). */
  acknowledgedChecked: number;
  /** Acknowledged puts missing, or acknowledged deletes back. Must be 0. */
  lostWrites: number;
  /** Keys whose call was in flight when a writer died, found applied (either way is allowed). */
  inFlightApplied: number;
  integrityFailures: number;
  problems: string[];
  elapsedMs: number;
}

const LANES = 2;
const writer = new URL("./sqlite-writer.ts", import.meta.url).pathname;

export async function runSqliteKills(options: { kills: number; seed: number; maxRunMs: number }) {
  const started = performance.now();
  const random = prng(options.seed);
  const dir = mkdtempSync(join(tmpdir(), "poison-kill-"));
  const path = join(dir, "kill.db");
  const report: KillReport = {
    kills: 0,
    acknowledgedChecked: 0,
    lostWrites: 0,
    inFlightApplied: 0,
    integrityFailures: 0,
    problems: [],
    elapsedMs: 0,
  };
  // The expected final state of every acknowledged key: present (with its token) or deleted.
  const expected = new Map<string, string | null>();
  // Keys whose last call was in flight when its writer died: either state is allowed.
  const inFlight = new Set<string>();
  // Two writers at a time on the same file, each killed at its own random moment.
  const lane = async (first: number) => {
    for (let run = first; run < options.kills; run += LANES) {
      const lines = await killOne(path, run, random() * options.maxRunMs);
      report.kills++;
      let pending: string[] = [];
      for (const line of lines) {
        const [verb, ...keys] = line.split(" ");
        if (verb === "try") {
          pending = keys.slice(1);
          continue;
        }
        pending = [];
        for (const key of keys) expected.set(key, verb === "put" ? `writer-${run}` : null);
      }
      for (const key of pending) {
        expected.delete(key);
        inFlight.add(key);
      }
      // Check after every kill: the next writer must start on a sound file.
      const integrity = checkIntegrity(path);
      if (integrity !== "ok") {
        report.integrityFailures++;
        report.problems.push(`after kill ${run}: integrity_check said ${integrity}`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: LANES }, (_, first) => lane(first)));
    const store = openPoisonStore(`sqlite:${path}`, { namespace: "/kill/" });
    try {
      for (const [key, token] of expected) {
        report.acknowledgedChecked++;
        const holder = await store.getPoison(key);
        if (holder !== token) {
          report.lostWrites++;
          report.problems.push(
            `${key}: expected ${token ?? "absent"}, found ${holder ?? "absent"}`,
          );
        }
      }
      // Whatever else is stored was in flight when its writer died.
      let cursor: string | null = null;
      do {
        const page = await store.listPoisons({ limit: 1000, cursor });
        for (const record of page.records) {
          if (expected.has(record.key)) continue;
          if (inFlight.has(record.key)) report.inFlightApplied++;
          else {
            report.lostWrites++;
            report.problems.push(`${record.key} is present but was never written`);
          }
        }
        cursor = page.cursor;
      } while (cursor);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  report.elapsedMs = performance.now() - started;
  return report;
}

/** Start a writer, let it write for `afterMs` after it is ready, SIGKILL it; its acked lines. */
function killOne(path: string, run: number, afterMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", writer, path, String(run)], {
      stdio: ["ignore", "pipe", "pipe"],
      // tsx resolves from the working directory: the repository root.
      cwd: new URL("../..", import.meta.url).pathname,
    });
    let out = "";
    let err = "";
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      if (!timer && out.startsWith("ready\n")) {
        timer = setTimeout(() => child.kill("SIGKILL"), afterMs);
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      err += chunk;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (signal !== "SIGKILL") {
        reject(new Error(`writer ${run} exited by itself (code ${code}): ${err.slice(0, 2000)}`));
        return;
      }
      // A line cut by the kill was not acknowledged.
      const lines = out.split("\n");
      lines.pop();
      resolve(lines.filter((line) => line !== "ready"));
    });
  });
}

function checkIntegrity(path: string): string {
  const db = new Database(path);
  try {
    const rows = db.pragma("integrity_check") as { integrity_check: string }[];
    return rows.map((row) => row.integrity_check).join("; ");
  } finally {
    db.close();
  }
}
