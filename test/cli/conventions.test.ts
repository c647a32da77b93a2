/** Help, usage errors, exit codes, colour and password redaction, through the built bin. */
import assert from "node:assert/strict";
import { existsSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { openPoisonStore } from "../../src/index.js";
import {
  ANSI,
  cliOn,
  hasScript,
  runPoison,
  runPoisonAsync,
  runPoisonOnTty,
  scratchDir,
} from "./support.js";

const STORE_COMMANDS = ["list", "show", "check", "put", "clear", "history", "watch", "serve"];
const LOCAL_COMMANDS = ["context", "completion", "demo"];
const COMMANDS = [...STORE_COMMANDS, ...LOCAL_COMMANDS];
/** A SQLite store with something in it (reads of a missing file are exit 5). */
const sqlite = { name: "sqlite", url: `sqlite:${scratchDir()}/conventions.db` };

before(async () => {
  const store = openPoisonStore(sqlite.url);
  await store.tryPutPoison("setup", "setup");
  await store.deletePoison("setup", "setup");
  await store.close();
});

describe("poison --help", () => {
  it("the main help lists every command, the exit codes and the environment", () => {
    for (const args of [[], ["--help"], ["-h"], ["help"]]) {
      const run = runPoison(args);
      assert.equal(run.code, 0, run.stderr);
      for (const command of COMMANDS) assert.match(run.stdout, new RegExp(`\\n  ${command} +\\S`));
      assert.match(
        run.stdout,
        /Exit codes:\n {2}0 +ok.*\n {2}1 .*\n {2}2 .*usage.*\n {2}3 .*conflict.*\n {2}4 .*not found.*\n {2}5 .*unavailable.*\n {2}6 .*live.*\n {2}130 .*Ctrl-C/,
      );
      for (const variable of ["POISON_STORE_URL", "POISON_CONTEXT", "POISON_CONFIG"])
        assert.match(run.stdout, new RegExp(variable));
    }
  });

  it("every command has --help: usage naming every option, aligned options, examples, exit codes", () => {
    for (const command of COMMANDS) {
      const outputs = [
        [command, "--help"],
        ["help", command],
        [command, "-h"],
      ].map((args) => {
        const run = runPoison(args);
        assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
        return run.stdout;
      });
      assert.equal(new Set(outputs).size, 1, "the three ways print the same help");
      const help = outputs[0] as string;
      const usage = /Usage:\n((?: {2}poison .*\n)+)/.exec(help)?.[1] ?? "";
      assert.ok(usage, `${command}: a usage section`);
      const options = /\nOptions:\n((?: {2}.*\n)+)/.exec(help)?.[1] ?? "";
      for (const [, flag] of options.matchAll(/--([a-z-]+)/g))
        assert.ok(usage.includes(`--${flag}`), `${command}: the usage names --${flag}`);
      // Every option row of every section starts its help text in the same column.
      const rows = help.split("\n").filter((line) => /^ {2}(-[a-zA-Z], | {4})--/.test(line));
      const columns = new Set(rows.map((row) => /^ *\S.*?\S {2,}(?=\S)/.exec(row)?.[0].length));
      assert.equal(columns.size, 1, `${command}: aligned options\n${rows.join("\n")}`);
      assert.match(help, /Examples:\n {2}poison /);
      assert.match(help, /--json/);
      assert.match(help, /Exit codes:/);
      if (STORE_COMMANDS.includes(command)) assert.match(help, /--store URL/);
      else assert.doesNotMatch(help, /--store URL +the store/, `${command} takes no --store`);
    }
  });

  it("--version and -V print the package version", () => {
    for (const flag of ["--version", "-V"]) {
      const run = runPoison([flag]);
      assert.equal(run.code, 0);
      assert.match(run.stdout, /^\d+\.\d+\.\d+\n$/);
    }
  });
});

describe("usage errors exit 2 with one line and the fix, never a stack or a parser's message", () => {
  const cases: [string[], RegExp, RegExp?][] = [
    [["frobnicate"], /unknown command "frobnicate"/],
    [["lst"], /unknown command "lst"/, /did you mean `poison list`\?/],
    [["help", "shwo"], /unknown command "shwo"/, /did you mean `poison show`\?/],
    [["list", "--bogus"], /unknown option "--bogus"/],
    [["list", "--prefx", "a/"], /unknown option "--prefx"/, /did you mean --prefix\?/],
    [
      ["show", "k", "--force"],
      /unknown option "--force"/,
      /--force is an option of `poison clear`/,
    ],
    [["--stroe=x", "list"], /unknown option "--stroe"/, /did you mean --store\?/],
    [["list", "--limit"], /--limit needs a value \(N\)/],
    [["clear", "k", "--reason", "--yes"], /--reason needs a value/],
    [["list", "--json=yes"], /--json takes no value/],
    [["list", "--prefix", "a", "--prefix", "b"], /--prefix is given twice/],
    [["show"], /missing argument: usage is `poison show KEY`/],
    [["show", "a", "b"], /unexpected argument "b"/],
    [["list", "--limit", "0"], /--limit must be a positive whole number/],
    [["list", "--state", "stuck"], /--state must be one of poisoned, in-progress, stale, any/],
    [["list", "--state", "stal"], /--state must be one of/, /did you mean --state stale\?/],
    [["list", "--timeout", "soon"], /--timeout must be a whole number of milliseconds/],
    [
      ["list", "--timeout", "2147483648"],
      /--timeout must be a whole number of milliseconds from 1 to 2147483647/,
    ],
    [["check", "--older-than", "5x"], /--older-than must be a duration such as 90s/],
    [["put", "k"], /put needs --token/],
    [["put", "k", "--token", "t", "--data", "{oops"], /--data is not valid JSON/],
    [["clear", "k"], /clear needs --token T .* or --force --reason R/],
    [
      ["clear", "k", "--token", "t", "--force", "--reason", "r"],
      /--token and --force do not go together/,
    ],
    [["clear", "k", "--token", "t", "--expect-token", "u"], /--expect-token goes with --force/],
    [["clear", "--all-of-token", "t", "--reason", "r"], /--all-of-token needs --force --reason R/],
    [["clear", "k", "--all-of-token", "t", "--force", "--reason", "r"], /takes no KEY/],
    [
      ["clear", "k", "--prefix", "p", "--force", "--reason", "r"],
      /--prefix goes with --all-of-token/,
    ],
    [["show", ""], /invalid key/],
    [["demo", "--store", "sqlite:x.db"], /demo always runs on a temporary SQLite store/],
    [["context", "use"], /`poison context use` needs a context NAME/],
    [["context", "lst"], /unknown action "lst"/, /did you mean `poison context list`\?/],
    [["completion", "tcsh"], /no completion for "tcsh"/],
    [["list", "--store", "ftp://example.com/x"], /unsupported backend URL/],
  ];
  for (const [args, message, fix] of cases) {
    it(`poison ${args.join(" ")}`, () => {
      const run = runPoison(args);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      if (fix) assert.match(run.stderr, fix);
      assert.match(run.stderr, /^poison: error: .*\n {2}fix: .*\n$/);
      assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
      assert.doesNotMatch(
        run.stderr,
        /ERR_PARSE_ARGS|Unknown option '|argument is ambiguous|Use `--/,
      );
      const json = runPoison([...args, "--json"]);
      assert.equal(json.code, 2);
      const doc = json.json<{ error: { code: string; exitCode: number; fix: string } }>();
      assert.equal(doc.error.exitCode, 2);
      assert.ok(doc.error.fix);
    });
  }
});

describe("exit code 5, the store named, and what a failed call says", () => {
  it("a store that cannot be opened exits 5 with the fix; --verbose adds the stack", () => {
    const url = `sqlite:${scratchDir()}/missing-dir/x.db`;
    for (const command of [
      ["list"],
      ["show", "k"],
      ["check"],
      ["put", "k", "--token", "t"],
      ["clear", "k", "--token", "t"],
      ["clear", "k", "--force", "--reason", "r", "--yes"],
      ["history"],
    ]) {
      const run = runPoison([...command, "--store", url]);
      assert.equal(run.code, 5, `${command.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, /^poison: error: .*missing-dir\/x\.db.*\n {2}fix: /);
      assert.doesNotMatch(run.stderr, /\n\s+at /);
      const json = runPoison([...command, "--store", url, "--json"]);
      const doc = json.json<{ error: { code: string; store: string; namespace: string } }>();
      assert.ok(["BACKEND_UNAVAILABLE", "STORE_NOT_FOUND"].includes(doc.error.code));
      assert.deepEqual([doc.error.store, doc.error.namespace], [url, "/__procedure_poison/"]);
    }
    assert.equal(existsSync(`${scratchDir()}/missing-dir`), false);
    const verbose = runPoison(["put", "k", "--token", "t", "--store", url, "--verbose"]);
    assert.equal(verbose.code, 5);
    assert.match(verbose.stderr, /\n\s+at /, "--verbose prints the stack");
  });

  it('a SQLite file without our tables: "never been written", and reading leaves it untouched', () => {
    const file = `${scratchDir()}/empty.db`;
    writeFileSync(file, "");
    for (const [command, expected] of [
      [
        ["list"],
        /^no poison keys in sqlite:\S+empty\.db \(namespace \/__procedure_poison\/\) \(this store has never been written\)\n$/,
      ],
      [
        ["check"],
        /^ok: no poison keys match \(state poisoned\) in sqlite:\S+empty\.db .*\(this store has never been written\)\n$/,
      ],
      [
        ["history"],
        /^no audit entries in sqlite:\S+empty\.db .*\(this store has never been written\)\n$/,
      ],
    ] as const) {
      const run = runPoison([...command, "--store", `sqlite:${file}`]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, expected);
    }
    const show = runPoison(["show", "k", "--store", `sqlite:${file}`]);
    assert.equal(show.code, 4);
    assert.match(
      show.stderr,
      /is not present in sqlite:\S+empty\.db .*\(this store has never been written\)/,
    );
    assert.equal(statSync(file).size, 0, "no table was created");
  });

  it('an unreachable store: reads say nothing changed, never "retry with the same token"', () => {
    const url = "postgres://postgres@127.0.0.1:1/test";
    for (const command of [["list"], ["show", "k"], ["check"], ["history"]]) {
      const run = runPoison([...command, "--store", url]);
      assert.equal(run.code, 5, run.stderr);
      assert.doesNotMatch(run.stderr, /retry with the same token/);
      assert.match(run.stderr, /Nothing was changed \(this command only reads\)/);
    }
    const write = runPoison(["put", "k", "--token", "t", "--store", url]);
    assert.equal(write.code, 5);
    assert.match(write.stderr, /The outcome is unknown/);
    assert.match(write.stderr, /run the same command again \(it is idempotent/);
  });

  describe("a store that does not answer", () => {
    let server: net.Server;
    let port = 0;
    const sockets: net.Socket[] = [];
    before(async () => {
      server = net.createServer((socket) => sockets.push(socket)); // accepts, never answers
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      port = (server.address() as net.AddressInfo).port;
    });
    after(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    });

    it("times out naming --timeout when it was given, and the default when not", async () => {
      const url = `etcd://127.0.0.1:${port}`;
      const given = await runPoisonAsync(["list", "--store", url, "--timeout", "700"]);
      assert.equal(given.code, 5, given.stderr);
      assert.match(given.stderr, /no answer within 700 ms \(--timeout 700\)/);
      assert.doesNotMatch(given.stderr, /options\.timeoutMs/);
    });
  });

  it("POISON_STORE_URL and POISON_NAMESPACE are used when no option says otherwise", async () => {
    const cli = cliOn(sqlite);
    assert.equal((await cli.run(["put", "env/1", "--token", "t"])).code, 0);
    const viaEnv = runPoison(["list", "--json"], {
      env: { POISON_STORE_URL: sqlite.url, POISON_NAMESPACE: cli.namespace },
    });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.deepEqual(
      viaEnv.json<{ records: { key: string }[] }>().records.map((r) => r.key),
      ["env/1"],
    );
    // Without either, the default is sqlite:./poison.db in the working directory, never created
    // by a read.
    const dflt = runPoison(["list", "--json"]);
    assert.equal(dflt.code, 5);
    assert.equal(dflt.json<{ error: { store: string } }>().error.store, "sqlite:./poison.db");
    assert.equal(existsSync(`${scratchDir()}/poison.db`), false);
  });

  it("a namespace without a trailing separator gets a warning", () => {
    const run = runPoison(["list", "--store", sqlite.url, "--namespace", "jobs"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      /^poison: warning: namespace "jobs" \(--namespace\) does not end with a separator.*did you mean "jobs\/"\?\n$/,
    );
    const fine = runPoison(["list", "--store", sqlite.url, "--namespace", "jobs/"]);
    assert.equal(fine.stderr, "");
  });
});

describe("colour", () => {
  it("none on a pipe; FORCE_COLOR turns it on; NO_COLOR wins over FORCE_COLOR", async () => {
    const cli = cliOn(sqlite);
    assert.equal((await cli.run(["put", "colour/1", "--token", "t"])).code, 0);
    assert.doesNotMatch((await cli.run(["list"])).stdout, ANSI);
    assert.match((await cli.run(["list"], { env: { FORCE_COLOR: "1" } })).stdout, ANSI);
    assert.doesNotMatch(
      (await cli.run(["list"], { env: { FORCE_COLOR: "1", NO_COLOR: "1" } })).stdout,
      ANSI,
    );
    assert.doesNotMatch((await cli.run(["show", "nope"], { env: { NO_COLOR: "1" } })).stderr, ANSI);
    assert.doesNotMatch(
      (await cli.run(["list", "--json"], { env: { FORCE_COLOR: "1" } })).stdout.replace(
        /\\u001b/g,
        "",
      ),
      ANSI,
    );
  });

  it("on a terminal: colour by default, none with NO_COLOR", {
    skip: !hasScript() && "util-linux script is not installed",
  }, async () => {
    const cli = cliOn(sqlite);
    assert.equal((await cli.run(["put", "colour/2", "--token", "t"])).code, 0);
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

/** A password as it may leak: raw, percent-encoded, JSON-escaped once and twice. */
function leakForms(password: string): string[] {
  const forms = new Set<string>();
  for (const form of [password, encodeURIComponent(password)]) {
    const once = JSON.stringify(form).slice(1, -1);
    forms.add(form).add(once).add(JSON.stringify(once).slice(1, -1));
    forms.add(form.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()));
  }
  return [...forms];
}

describe("a password in a store URL is never printed", () => {
  const urls: [url: string, password: string][] = [
    ["postgres://u:secret@127.0.0.1:1/x", "secret"],
    ["mysql://root:secret@127.0.0.1:1/test", "secret"],
    ["redis://:secret@127.0.0.1:1", "secret"],
    ["etcd://u:s3cr%40t-with-at@127.0.0.1:1", "s3cr@t-with-at"],
    ["postgres://u:p@secret@127.0.0.1:1/x", "p@secret"],
    // The forms an escaping step makes: a backslash and a quote (JSON-escaped in messages and
    // again in --json documents), percent-encoded `@` and `%`.
    ["etcd://u:s3c\\retpw@127.0.0.1:1", "s3c\\retpw"],
    ['etcd://u:pa"sswd@127.0.0.1:1', 'pa"sswd'],
    ['postgres://u:qu"o\\te@127.0.0.1:1/x', 'qu"o\\te'],
    ["mysql://root:pe%25rc%40nt@127.0.0.1:1/test", "pe%rc@nt"],
    ["postgres://u:back%5Cslash@127.0.0.1:1/x", "back\\slash"],
  ];
  const commands = [
    ["list"],
    ["show", "k"],
    ["put", "k", "--token", "t"],
    ["clear", "k", "--token", "t"],
    ["clear", "k", "--force", "--reason", "r", "--yes"],
    ["history"],
    ["check"],
    ["list", "--bogus"],
    ["frobnicate"],
  ];
  const variants = [[], ["--json"], ["--verbose"], ["--json", "--verbose"]];
  // Every URL through every command, each run in one of the ways a URL and flags can be given
  // (rotated, to keep the number of processes small).
  urls.forEach(([url, password], u) => {
    const forms = leakForms(password);
    it(`URL #${u + 1} (${url.slice(0, url.indexOf(":"))}), through every command`, async () => {
      // Side by side: a driver that keeps reconnecting holds its process for a while.
      const runs = commands.map((command, c) => {
        const extra = variants[(u + c) % variants.length] as string[];
        const ways = [
          () => runPoisonAsync([...command, "--store", url, "--timeout", "500", ...extra]),
          () => runPoisonAsync([...command, `--store=${url}`, "--timeout", "500", ...extra]),
          () =>
            runPoisonAsync([...command, "--timeout", "500", ...extra], {
              env: { POISON_STORE_URL: url },
            }),
        ];
        const run = (ways[(u + c) % ways.length] as (typeof ways)[number])();
        return run.then((result) => ({ result, label: `${command.join(" ")} ${extra.join(" ")}` }));
      });
      for (const { result: run, label } of await Promise.all(runs)) {
        const output = run.stdout + run.stderr;
        for (const form of forms)
          assert.ok(!output.includes(form), `${label} leaked the password as ${form}:\n${output}`);
        assert.ok(
          [2, 5].includes(run.code ?? -1),
          `exit 2 (unknown scheme) or 5 (unreachable), not ${run.code}:\n${output}`,
        );
      }
    });
  });
});
