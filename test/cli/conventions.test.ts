/** Help, usage errors, exit codes, colour and password redaction, through the built bin. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ANSI,
  cliOn,
  cliStores,
  hasScript,
  runPoison,
  runPoisonOnTty,
  scratchDir,
} from "./support.js";

const COMMANDS = ["list", "show", "put", "clear", "history", "demo"];
const sqlite = cliStores()[0] as { name: string; url: string };

describe("poison --help", () => {
  it("the main help lists every command, the exit codes and the environment", () => {
    for (const args of [[], ["--help"], ["-h"], ["help"]]) {
      const run = runPoison(args);
      assert.equal(run.code, 0, run.stderr);
      for (const command of COMMANDS) assert.match(run.stdout, new RegExp(`\\n  ${command} `));
      assert.match(
        run.stdout,
        /Exit codes:\n {2}0 {2}ok\n {2}1 .*\n {2}2 .*usage.*\n {2}3 .*conflict.*\n {2}4 .*not found.*\n {2}5 .*backend unavailable/,
      );
      assert.match(run.stdout, /POISON_STORE_URL/);
    }
  });

  it("every command has --help with its usage, options, examples and exit codes", () => {
    for (const command of COMMANDS) {
      for (const args of [
        [command, "--help"],
        ["help", command],
        [command, "-h"],
      ]) {
        const run = runPoison(args);
        assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
        assert.match(run.stdout, new RegExp(`Usage: poison ${command}`));
        assert.match(run.stdout, /Examples:\n {2}poison /);
        assert.match(run.stdout, /--store URL/);
        assert.match(run.stdout, /--json/);
        assert.match(run.stdout, /Exit codes:/);
      }
    }
  });

  it("--version prints the package version", () => {
    const run = runPoison(["--version"]);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^\d+\.\d+\.\d+/);
  });
});

describe("usage errors exit 2 with one line and the fix, never a stack", () => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /unknown command "frobnicate"/],
    [["list", "--bogus"], /Unknown option '--bogus'/],
    [["show"], /missing argument: usage is `poison show KEY`/],
    [["show", "a", "b"], /unexpected argument "b"/],
    [["list", "--limit", "0"], /--limit must be a positive whole number/],
    [["list", "--state", "stuck"], /--state must be one of in-progress, poisoned/],
    [["list", "--timeout", "soon"], /--timeout must be a positive number/],
    [["put", "k"], /put needs --token/],
    [["put", "k", "--token", "t", "--data", "{oops"], /--data is not valid JSON/],
    [["clear", "k"], /clear needs --token T .* or --force --reason R/],
    [
      ["clear", "k", "--token", "t", "--force", "--reason", "r"],
      /--token and --force do not go together/,
    ],
    [["clear", "k", "--token", "t", "--expect-token", "u"], /--expect-token goes with --force/],
    [["show", ""], /invalid key/],
    [["demo", "--store", "sqlite:x.db"], /demo always runs on a temporary SQLite store/],
    [["list", "--store", "ftp://example.com/x"], /unsupported backend URL/],
  ];
  for (const [args, message] of cases) {
    it(`poison ${args.join(" ")}`, () => {
      const run = runPoison(
        [...args, "--store", args.includes("--store") ? "" : `${sqlite.url}`].slice(
          0,
          args.includes("--store") ? args.length : args.length + 2,
        ),
      );
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.match(run.stderr, /^poison: error: .*\n {2}fix: .*\n$/);
      assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
      const json = runPoison([...args, "--json"]);
      assert.equal(json.code, 2);
      const doc = json.json<{ error: { code: string; exitCode: number; fix: string } }>();
      assert.equal(doc.error.exitCode, 2);
      assert.ok(doc.error.fix);
    });
  }
});

describe("exit codes 1 and 5, and --verbose", () => {
  it("a store that cannot be opened exits 5 with the fix; --verbose adds the stack", () => {
    const url = `sqlite:${scratchDir()}/missing-dir/x.db`;
    for (const command of [
      ["list"],
      ["show", "k"],
      ["put", "k", "--token", "t"],
      ["clear", "k", "--token", "t"],
      ["clear", "k", "--force", "--reason", "r", "--yes"],
      ["history"],
    ]) {
      const run = runPoison([...command, "--store", url]);
      assert.equal(run.code, 5, `${command.join(" ")}: ${run.stderr}`);
      assert.match(
        run.stderr,
        /^poison: error: sqlite backend unavailable: .*\n {2}fix: check that the backend/,
      );
      assert.doesNotMatch(run.stderr, /\n\s+at /);
      const json = runPoison([...command, "--store", url, "--json"]);
      assert.equal(json.json<{ error: { code: string } }>().error.code, "BACKEND_UNAVAILABLE");
    }
    const verbose = runPoison(["list", "--store", url, "--verbose"]);
    assert.equal(verbose.code, 5);
    assert.match(verbose.stderr, /\n\s+at /, "--verbose prints the stack");
  });

  it("POISON_STORE_URL and POISON_NAMESPACE are used when no option says otherwise", () => {
    const cli = cliOn(sqlite);
    assert.equal(cli.run(["put", "env/1", "--token", "t"]).code, 0);
    const viaEnv = runPoison(["list", "--json"], {
      env: { POISON_STORE_URL: sqlite.url, POISON_NAMESPACE: cli.namespace },
    });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.deepEqual(
      viaEnv.json<{ records: { key: string }[] }>().records.map((r) => r.key),
      ["env/1"],
    );
    // Without either, the default is sqlite:./poison.db in the working directory.
    const dflt = runPoison(["list", "--json"]);
    assert.equal(dflt.json<{ store: string }>().store, "sqlite:./poison.db");
  });
});

describe("colour", () => {
  it("none on a pipe; FORCE_COLOR turns it on; NO_COLOR wins over FORCE_COLOR", () => {
    const cli = cliOn(sqlite);
    assert.equal(cli.run(["put", "colour/1", "--token", "t"]).code, 0);
    assert.doesNotMatch(cli.run(["list"]).stdout, ANSI);
    assert.match(cli.run(["list"], { env: { FORCE_COLOR: "1" } }).stdout, ANSI);
    assert.doesNotMatch(
      cli.run(["list"], { env: { FORCE_COLOR: "1", NO_COLOR: "1" } }).stdout,
      ANSI,
    );
    assert.doesNotMatch(cli.run(["show", "nope"], { env: { NO_COLOR: "1" } }).stderr, ANSI);
    assert.doesNotMatch(
      cli.run(["list", "--json"], { env: { FORCE_COLOR: "1" } }).stdout.replace(/\\u001b/g, ""),
      ANSI,
    );
  });

  it("on a terminal: colour by default, none with NO_COLOR", {
    skip: !hasScript() && "util-linux script is not installed",
  }, () => {
    const cli = cliOn(sqlite);
    assert.equal(cli.run(["put", "colour/2", "--token", "t"]).code, 0);
    const args = ["list", "--store", sqlite.url, "--namespace", cli.namespace];
    const tty = runPoisonOnTty(args);
    assert.equal(tty.code, 0, tty.stdout);
    assert.match(tty.stdout, ANSI);
    const plain = runPoisonOnTty(args, { env: { NO_COLOR: "1" } });
    assert.equal(plain.code, 0);
    assert.match(plain.stdout, /colour\/2/);
    assert.doesNotMatch(plain.stdout, ANSI);
  });
});

describe("a password in a store URL is never printed", () => {
  const urls = [
    "postgres://u:secret@127.0.0.1:1/x",
    "mysql://root:secret@127.0.0.1:1/test",
    "redis://:secret@127.0.0.1:1",
    "etcd://u:s3cr%40t-with-at@127.0.0.1:1",
    "postgres://u:p@secret@127.0.0.1:1/x",
  ];
  const commands = [
    ["list"],
    ["show", "k"],
    ["put", "k", "--token", "t"],
    ["clear", "k", "--token", "t"],
    ["clear", "k", "--force", "--reason", "r", "--yes"],
    ["history"],
    ["list", "--bogus"],
    ["frobnicate"],
  ];
  const variants = [[], ["--json"], ["--verbose"], ["--json", "--verbose"]];
  const secrets = ["secret", "s3cr%40t", "s3cr@t"];
  // Every URL through every command, each run in one of the ways a URL and flags can be given
  // (rotated, to keep the number of processes small).
  urls.forEach((url, u) => {
    it(`URL #${u + 1} (${url.slice(0, url.indexOf(":"))}), through every command`, () => {
      commands.forEach((command, c) => {
        const extra = variants[(u + c) % variants.length] as string[];
        const runs = [
          () => runPoison([...command, "--store", url, "--timeout", "2000", ...extra]),
          () => runPoison([...command, `--store=${url}`, "--timeout", "2000", ...extra]),
          () =>
            runPoison([...command, "--timeout", "2000", ...extra], {
              env: { POISON_STORE_URL: url },
            }),
        ];
        const run = (runs[(u + c) % runs.length] as () => ReturnType<typeof runPoison>)();
        const output = run.stdout + run.stderr;
        for (const secret of secrets)
          assert.ok(
            !output.includes(secret),
            `${command.join(" ")} ${extra.join(" ")} leaked the password:\n${output}`,
          );
        assert.ok(
          [2, 5].includes(run.code ?? -1),
          `exit 2 (unknown scheme) or 5 (unreachable), not ${run.code}:\n${output}`,
        );
      });
    });
  });
});
