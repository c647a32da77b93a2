#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's test runner (TypeScript through tsx).
// Extra arguments are passed to `node --test` (for example --test-name-pattern=race).
// Builds first: the CLI tests run the built bin (bin/poison.js -> dist/) as a child process.
// Ends with one line naming the backends that were tested and those that were skipped (each test
// process appends its decisions to POISON_TEST_REPORT; see test/conformance/harness.ts).
// BACKENDS=memory,sqlite narrows the backends; the others are reported as not selected.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { tsImport } from "tsx/esm/api";

const root = new URL("..", import.meta.url).pathname;
/** Every backend name, in report order, from the one registry (its secured twins after it). */
const { ALL_NAMES: BACKENDS } = await tsImport("../test/support/backends.ts", import.meta.url);

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return find(path);
    return entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

const build = spawnSync("npm", ["run", "build", "--silent"], { stdio: "inherit", cwd: root });
if (build.status !== 0) process.exit(build.status ?? 1);

const reportDir = mkdtempSync(join(tmpdir(), "poison-test-report-"));
const report = join(reportDir, "backends.jsonl");
const files = find(join(root, "test"))
  .map((f) => relative(root, f))
  .sort();
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-reporter=spec", ...process.argv.slice(2), ...files],
  { stdio: "inherit", cwd: root, env: { ...process.env, POISON_TEST_REPORT: report } },
);
process.stdout.write(`\n${summary()}\n`);
rmSync(reportDir, { recursive: true, force: true });
process.exit(result.status ?? 1);

/** "backends: tested memory, sqlite, …; skipped redis (why), …; not selected etcd, …" from
 *  the decisions recorded. A backend BACKENDS left out is never counted as tested. */
function summary() {
  let lines = [];
  try {
    lines = readFileSync(report, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line));
  } catch {
    // No test recorded anything (a name pattern that matched no backend suite).
  }
  const notSelected = new Set(lines.filter((l) => l.notSelected).map((l) => l.backend));
  const decided = lines.filter((l) => !l.notSelected);
  const tested = new Set(decided.filter((l) => l.skipped === null).map((l) => l.backend));
  const skipped = new Map();
  for (const line of decided) {
    if (line.skipped !== null && !skipped.has(line.backend))
      skipped.set(line.backend, line.skipped);
  }
  const rank = (name) => (BACKENDS.includes(name) ? BACKENDS.indexOf(name) : BACKENDS.length);
  const order = (names) => [...names].sort((a, b) => rank(a) - rank(b));
  const never = BACKENDS.filter((b) => !tested.has(b) && !skipped.has(b) && !notSelected.has(b));
  const skippedText = order(skipped.keys()).map((name) => {
    const why = String(skipped.get(name)).split("\n")[0];
    const partly = tested.has(name) ? "in some files, " : "";
    return `${name} (${partly}${why.length > 70 ? `${why.slice(0, 69)}…` : why})`;
  });
  const filter = process.env.BACKENDS ?? process.env.POISON_DRIVERS;
  const notSelectedText =
    notSelected.size > 0
      ? `; not selected (BACKENDS=${filter}): ${order(notSelected).join(", ")}`
      : "";
  return `backends: tested ${order(tested).join(", ") || "none"}; skipped ${skippedText.join(", ") || "none"}${notSelectedText}${never.length > 0 ? `; not run by these tests: ${never.join(", ")}` : ""}`;
}
