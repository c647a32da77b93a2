/**
 * The package as a consumer gets it: `npm pack`, installed into a new project from the local npm
 * cache only (offline, no install scripts), with none of the optional peers (pg, mysql2,
 * ioredis, prom-client). The consumer compiles with `tsc --strict` without skipLibCheck, `require()` works,
 * and the `poison` bin runs.
 *
 * `npm ci` installs from a lockfile built here from this repository's own (the production
 * dependencies, whose tarballs `npm install` in this checkout put in the cache): an offline
 * `npm install` would ask for registry metadata that the cache may not hold.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureBuilt, ROOT } from "../cli/support.js";

interface LockEntry {
  version: string;
  dev?: boolean;
  devOptional?: boolean;
  [field: string]: unknown;
}

const work = mkdtempSync(join(tmpdir(), "poison-package-test-"));
const consumer = join(work, "consumer");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional: boolean }>;
};
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");

function run(command: string, args: string[], cwd: string) {
  const child = spawnSync(command, args, { cwd, encoding: "utf8", timeout: 120_000 });
  if (child.error) throw child.error;
  return child;
}

/** The consumer's lockfile: the packed tarball, and this repository's production closure. */
/** Compiles the consumer's `file` as a strict nodenext project (`config`, written here) with this
 *  checkout's tsc, into out/; it must compile. */
function compileInConsumer(config: string, file: string): void {
  writeFileSync(
    join(consumer, config),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        skipLibCheck: false,
        module: "nodenext",
        moduleResolution: "nodenext",
        target: "es2022",
        outDir: "out",
        types: ["node"],
        // @types/node from this checkout: the consumer's lockfile holds only the package's own.
        typeRoots: [join(ROOT, "node_modules", "@types")],
      },
      files: [file],
    }),
  );
  const tsc = run(process.execPath, [TSC, "-p", config], consumer);
  assert.equal(tsc.status, 0, `tsc:\n${tsc.stdout}${tsc.stderr}`);
}

function consumerLock(tarball: string): unknown {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, LockEntry>;
  };
  const integrity = `sha512-${createHash("sha512").update(readFileSync(tarball)).digest("base64")}`;
  const packages: Record<string, unknown> = {
    "": {
      name: "consumer",
      version: "1.0.0",
      dependencies: { "poison-store": `file:../${tarball.split("/").pop()}` },
    },
    "node_modules/poison-store": {
      version: pkg.version,
      resolved: `file:../${tarball.split("/").pop()}`,
      integrity,
      dependencies: pkg.dependencies,
      peerDependencies: pkg.peerDependencies,
      peerDependenciesMeta: pkg.peerDependenciesMeta,
      bin: { poison: "bin/poison.js" },
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === "" || entry.dev || entry.devOptional) continue;
    const name = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
    const { dev: _dev, devOptional: _devOptional, ...kept } = entry;
    packages[path] = {
      ...kept,
      resolved: `https://registry.npmjs.org/${name}/-/${name.split("/").pop()}-${entry.version}.tgz`,
    };
  }
  return { name: "consumer", version: "1.0.0", lockfileVersion: 3, requires: true, packages };
}

describe("the packed package, in a consumer without the optional peers", () => {
  let tarball = "";
  before(() => {
    ensureBuilt();
    const pack = run(
      "npm",
      ["pack", "--ignore-scripts", "--json", "--pack-destination", work],
      ROOT,
    );
    assert.equal(pack.status, 0, pack.stderr);
    const [packed] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    tarball = join(work, (packed as { filename: string }).filename);
    mkdirSync(consumer);
    writeFileSync(
      join(consumer, "package.json"),
      JSON.stringify({
        name: "consumer",
        version: "1.0.0",
        private: true,
        type: "module",
        dependencies: { "poison-store": `file:../${tarball.split("/").pop()}` },
      }),
    );
    writeFileSync(join(consumer, "package-lock.json"), JSON.stringify(consumerLock(tarball)));
    const install = run(
      "npm",
      ["ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"],
      consumer,
    );
    assert.equal(install.status, 0, `npm ci --offline: ${install.stderr}`);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it("ships the LICENSE, the docs the README links to, and the repository fields", () => {
    const installed = join(consumer, "node_modules", "poison-store");
    assert.match(
      readFileSync(join(installed, "LICENSE"), "utf8"),
      /Apache License\s+Version 2\.0, January 2004/,
    );
    const readme = readFileSync(join(installed, "README.md"), "utf8");
    // Documentation links resolve inside the package; links into the source (src/, test/,
    // examples/) are rewritten by the npm page to the repository named in package.json.
    const links = [...readme.matchAll(/\]\((?!https?:|#|mailto:)([^)#\s]+)/g)].map(
      (m) => m[1] as string,
    );
    assert.ok(links.some((link) => link.startsWith("docs/")));
    for (const link of links.filter((l) => l.startsWith("docs/") || !l.includes("/")))
      assert.ok(
        existsSync(join(installed, link)),
        `README links to ${link}, which is in the package`,
      );
    const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"));
    for (const field of ["repository", "homepage", "bugs"])
      assert.ok(manifest[field], `package.json has ${field}`);
    for (const peer of ["pg", "mysql2", "ioredis", "prom-client"])
      assert.equal(
        existsSync(join(consumer, "node_modules", peer)),
        false,
        `${peer} is not installed`,
      );
  });

  // With @types/node, as a TypeScript project on Node has it (the admin handler's types name
  // node:http's request and response).
  it("compiles with tsc --strict, without skipLibCheck", () => {
    writeFileSync(
      join(consumer, "index.ts"),
      `import { type ChangeEvent, collectMetrics, HolderAliveError, MissingDependencyError, openPoisonStore, PoisonGuard, type PoisonRecord, redisDriver, type RedisDriverOptions } from "poison-store";
const store = openPoisonStore("memory:");
const guard = new PoisonGuard(store, { owner: "consumer" });
await guard.run({ keys: ["k"], token: "t" }, async () => {});
const records: PoisonRecord[] = (await store.listPoisons({ state: "poisoned" })).records;
const options: RedisDriverOptions = { url: "redis://127.0.0.1:6379" };
void redisDriver;
void options;
console.log(records.length, HolderAliveError.name);
const changes = store.watch({ signal: AbortSignal.abort() });
const seen: ChangeEvent[] = [];
for await (const change of changes) seen.push(change);
// prom-client is an optional peer, not installed here: a typed error naming it.
const missing = await collectMetrics(store).catch((error: unknown) => error);
console.log(await changes.ready, seen.length, missing instanceof MissingDependencyError && missing.dependency);
await store.close();
`,
    );
    compileInConsumer("tsconfig.json", "index.ts");
    const ran = run(process.execPath, ["out/index.js"], consumer);
    assert.equal(ran.status, 0, ran.stderr);
    assert.equal(ran.stdout, "0 HolderAliveError\nfalse 0 prom-client\n");
  });

  // A third-party driver runs the shipped conformance suite: here the memory driver, typed by
  // the package's own declarations and run by node --test from the consumer.
  it("poison-store/testing runs the conformance suite on a driver, typed", () => {
    writeFileSync(
      join(consumer, "conformance.test.ts"),
      `import { memoryDriver, createPoisonStore } from "poison-store";
import { type DriverHarness, testDriver } from "poison-store/testing";
const harness: DriverHarness = {
  name: "consumer-memory",
  durable: true,
  open: (options) => createPoisonStore(memoryDriver({ name: "consumer" }), options),
};
await testDriver(harness);
`,
    );
    compileInConsumer("tsconfig.testing.json", "conformance.test.ts");
    const env = { ...process.env };
    // NODE_TEST_CONTEXT would make the child report to this runner instead of printing TAP.
    for (const name of ["BACKENDS", "POISON_DRIVERS", "POISON_TEST_REPORT", "NODE_TEST_CONTEXT"])
      delete env[name];
    const tested = spawnSync(
      process.execPath,
      ["--test", "--test-reporter=tap", "out/conformance.test.js"],
      { cwd: consumer, encoding: "utf8", timeout: 300_000, env },
    );
    assert.equal(tested.status, 0, `${tested.stdout.slice(-4000)}${tested.stderr}`);
    assert.match(tested.stdout, /^# fail 0$/m);
    const passed = Number(/^# pass (\d+)$/m.exec(tested.stdout)?.[1]);
    assert.ok(passed >= 100, `the whole suite ran (${passed} cases passed)`);
    assert.match(tested.stdout, /conformance: consumer-memory/);
    // The main entry never loads the test runner: only ./testing does.
    const main = run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        'await import("poison-store"); console.log(process.moduleLoadList.some((m) => m.includes("test_runner")))',
      ],
      consumer,
    );
    assert.equal(main.status, 0, main.stderr);
    assert.equal(main.stdout, "false\n");
  });

  it("require() works (a default export condition)", () => {
    const required = run(
      process.execPath,
      ["-e", 'console.log(typeof require("poison-store").openPoisonStore)'],
      consumer,
    );
    assert.equal(required.status, 0, required.stderr);
    assert.equal(required.stdout, "function\n");
  });

  it("the poison bin runs from the consumer", () => {
    const bin = join(consumer, "node_modules", ".bin", "poison");
    const version = run(bin, ["--version"], consumer);
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout, `${pkg.version}\n`);
    const list = run(bin, ["list", "--store", "memory:"], consumer);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^no poison keys in memory: \(namespace \/__procedure_poison\/\)\n$/);
  });
});
