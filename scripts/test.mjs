#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's test runner (TypeScript through tsx).
// Extra arguments are passed to `node --test` (for example --test-name-pattern=race).
// Builds first: the CLI tests run the built bin (bin/poison.js -> dist/) as a child process.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return find(path);
    return entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

const build = spawnSync("npm", ["run", "build", "--silent"], { stdio: "inherit", cwd: root });
if (build.status !== 0) process.exit(build.status ?? 1);

const files = find(join(root, "test"))
  .map((f) => relative(root, f))
  .sort();
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-reporter=spec", ...process.argv.slice(2), ...files],
  { stdio: "inherit", cwd: root },
);
process.exit(result.status ?? 1);
