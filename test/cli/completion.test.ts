/** `poison completion bash|zsh|fish`: scripts a shell accepts, that complete what the CLI takes. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { before, describe, it } from "node:test";
import { BIN, runPoison, scratchDir } from "./support.js";

const has = (shell: string) => spawnSync(shell, ["-c", "exit 0"]).status === 0;
const dir = `${scratchDir()}/completion`;
const config = `${dir}/config.json`;

/** A `poison` on PATH (the scripts call it for context names), with its own config file. */
function shellEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${dir}/bin:${process.env.PATH}`, POISON_CONFIG: config };
}

before(() => {
  mkdirSync(`${dir}/bin`, { recursive: true });
  writeFileSync(`${dir}/bin/poison`, `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(`${dir}/bin/poison`, 0o755);
  writeFileSync(
    config,
    JSON.stringify({
      contexts: { prod: { store: "sqlite:p.db" }, staging: { store: "sqlite:s.db" } },
    }),
  );
});

function script(shell: string): string {
  const run = runPoison(["completion", shell]);
  assert.equal(run.code, 0, run.stderr);
  const path = `${dir}/poison.${shell}`;
  writeFileSync(path, run.stdout);
  return path;
}

describe("poison completion", () => {
  it("bash: commands, options, --state values and context names", {
    skip: !has("bash") && "no bash",
  }, () => {
    const path = script("bash");
    assert.equal(spawnSync("bash", ["-n", path]).status, 0, "bash accepts the script");
    const complete = (...words: string[]) => {
      const run = spawnSync(
        "bash",
        [
          "-c",
          `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _poison; printf '%s\\n' "\${COMPREPLY[@]}"`,
          path,
          "poison",
          ...words,
        ],
        { encoding: "utf8", env: shellEnv() },
      );
      assert.equal(run.status, 0, run.stderr);
      return run.stdout.trim().split("\n").filter(Boolean);
    };
    assert.deepEqual(complete("lis"), ["list"]);
    assert.deepEqual(complete("c"), ["check", "clear", "context", "completion"]);
    assert.deepEqual(complete("list", "--st"), ["--state", "--store"]);
    assert.deepEqual(complete("list", "--state", ""), ["poisoned", "in-progress", "stale", "any"]);
    assert.ok(complete("clear", "--").includes("--even-if-alive"));
    assert.ok(complete("clear", "--").includes("--all-of-token"));
    assert.deepEqual(complete("list", "--context", ""), ["prod", "staging"]);
    assert.deepEqual(complete("context", "use", ""), ["prod", "staging"]);
    assert.ok(!complete("demo", "--").includes("--store"), "demo takes no --store");
  });

  it("zsh accepts its script", { skip: !has("zsh") && "zsh is not installed" }, () => {
    const path = script("zsh");
    const run = spawnSync("zsh", ["-n", path], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    const loaded = spawnSync(
      "zsh",
      [
        "-f",
        "-c",
        `autoload -U compinit && compinit -u -D && source "$0" && whence -w _poison`,
        path,
      ],
      {
        encoding: "utf8",
        env: shellEnv(),
      },
    );
    assert.match(loaded.stdout, /_poison: function/, loaded.stderr);
  });

  it("fish: commands, options, --state values and context names", {
    skip: !has("fish") && "fish is not installed",
  }, () => {
    const path = script("fish");
    assert.equal(spawnSync("fish", ["-n", path]).status, 0, "fish accepts the script");
    const complete = (line: string) => {
      const run = spawnSync("fish", ["-c", `source $argv[1]; complete -C $argv[2]`, path, line], {
        encoding: "utf8",
        env: shellEnv(),
      });
      assert.equal(run.status, 0, run.stderr);
      return run.stdout
        .trim()
        .split("\n")
        .map((l) => l.split("\t")[0]);
    };
    assert.deepEqual(complete("poison lis"), ["list"]);
    assert.deepEqual(complete("poison list --state ").sort(), [
      "any",
      "in-progress",
      "poisoned",
      "stale",
    ]);
    assert.deepEqual(complete("poison show --context ").sort(), ["prod", "staging"]);
    assert.ok(complete("poison clear --").includes("--even-if-alive"));
  });
});
