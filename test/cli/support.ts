/**
 * Runs the BUILT `poison` bin as a child process, the way an operator runs it.
 *
 * Stores: every command test runs once per URL of {@link cliStores}: a fresh file of each file
 * backend (SQLite) and each networked backend of the registry (test/support/backends.ts) that
 * answers, plus the URLs in POISON_CLI_STORES (comma-separated). BACKENDS narrows both; a new
 * backend joins through its registry entry, nothing here.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { backendSkipReason } from "../conformance/index.js";
import { type Backend, selectedBackends } from "../support/backends.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const BIN = join(ROOT, "bin", "poison.js");
const BUILT = join(ROOT, "dist", "src", "cli", "main.js");

/**
 * The networked backends the CLI tests also run on: every `server` entry of the registry that
 * BACKENDS selects. One that does not answer is reported as skipped (a failure in CI).
 */
export const NETWORKED_STORE_URLS: readonly string[] = await reachable(
  selectedBackends().filter((backend) => backend.kind === "server"),
);

/** The URLs of the backends that answer; the others are reported as skipped (a failure in CI). */
async function reachable(backends: readonly Backend[]): Promise<string[]> {
  const urls: string[] = [];
  for (const backend of backends) {
    if ((await backendSkipReason(backend.name, backend.unavailable)) === null && backend.url)
      urls.push(backend.url);
  }
  return urls;
}

export interface CliStore {
  /** For test names: the scheme, or "sqlite". */
  name: string;
  url: string;
}

/** The stores the command matrix runs on. */
export function cliStores(): CliStore[] {
  const fromEnv = (process.env.POISON_CLI_STORES ?? "")
    .split(",")
    .map((url) => url.trim())
    .filter(Boolean);
  const networked = [...new Set([...NETWORKED_STORE_URLS, ...fromEnv])].map((url) => ({
    name: url.slice(0, url.indexOf(":")),
    url,
  }));
  // A file backend (SQLite) runs on a fresh file in this test file's scratch directory.
  const files = selectedBackends()
    .filter((backend) => backend.kind === "file")
    .map((backend) => ({
      name: backend.name,
      url: backend.place({ dir: scratchDir() }).url,
    }));
  return [...files, ...networked];
}

let scratch: string | null = null;
/** A temporary directory for this test file, removed when the process exits. */
export function scratchDir(): string {
  if (!scratch) {
    const dir = mkdtempSync(join(tmpdir(), "poison-cli-test-"));
    scratch = dir;
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  return scratch;
}

/** A namespace no other run uses, so reruns against a shared server never collide. */
export function freshNamespace(): string {
  return `/poison-cli-test/${randomUUID()}/`;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as exactly one JSON document. */
  json<T = Record<string, unknown>>(): T;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  /** Written to the child's stdin (a pipe, so not a terminal). */
  input?: string;
  cwd?: string;
}

/** The environment without anything of the caller's that would change the CLI's behaviour. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [
    "POISON_STORE_URL",
    "POISON_NAMESPACE",
    "POISON_CONTEXT",
    "POISON_ACTOR",
    "NO_COLOR",
    "FORCE_COLOR",
  ])
    delete env[name];
  // Never the developer's own contexts: a config file that does not exist, unless a test says.
  env.POISON_CONFIG = join(scratchDir(), "no-config.json");
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** Run `poison ARGS` and wait for it. */
export function runPoison(args: readonly string[], options: RunOptions = {}): RunResult {
  ensureBuilt();
  return runChildSync(process.execPath, [BIN, ...args], options);
}

/** Run `file ARGS` to its end (60 s at most) in the test's environment, typing `input`. */
function runChildSync(file: string, args: readonly string[], options: RunOptions): RunResult {
  const child = spawnSync(file, args, {
    env: cleanEnv(options.env),
    input: options.input ?? "",
    encoding: "utf8",
    cwd: options.cwd ?? scratchDir(),
    timeout: 60_000,
  });
  if (child.error) throw child.error;
  return result(child.status, child.stdout, child.stderr);
}

function result(code: number | null, stdout: string, stderr: string): RunResult {
  return {
    code,
    stdout,
    stderr,
    json<T>() {
      try {
        return JSON.parse(stdout) as T;
      } catch (error) {
        throw new Error(
          `stdout is not one JSON document (${(error as Error).message}):\n${stdout}\nstderr:\n${stderr}`,
        );
      }
    },
  };
}

/** Run `poison ARGS` without blocking the test process (so suites can run side by side). */
export function runPoisonAsync(
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  ensureBuilt();
  return runChild(process.execPath, [BIN, ...args], options);
}

/** What `child` prints, gathered as it arrives: read the fields at any time. */
export function collectOutput(child: { stdout: Readable; stderr: Readable }): {
  stdout: string;
  stderr: string;
} {
  const output = { stdout: "", stderr: "" };
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    output.stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    output.stderr += chunk;
  });
  return output;
}

function runChild(file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const child = spawn(file, args, {
    env: cleanEnv(options.env),
    cwd: options.cwd ?? scratchDir(),
    stdio: ["pipe", "pipe", "pipe"],
  });
  const output = collectOutput(child);
  child.stdin.on("error", () => undefined);
  child.stdin.end(options.input ?? "");
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill(), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve(result(code, output.stdout, output.stderr));
    });
  });
}

/** `poison` bound to one store and namespace. */
export function cliOn(store: CliStore, namespace = freshNamespace()) {
  return {
    store,
    namespace,
    run(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
      return runPoisonAsync([...args, "--store", store.url, "--namespace", namespace], options);
    },
  };
}

/**
 * Run, through bash, the `poison …` command a message suggests (the first backticked one of
 * `command`, or what `pattern` captures), exactly as printed: suggestions must paste as is.
 */
export function runSuggested(
  text: string,
  command: string,
  pattern?: RegExp,
  options: RunOptions = {},
): Promise<RunResult> {
  const match = (pattern ?? new RegExp(`\`(poison ${command}\\b[^\`]*)\``)).exec(text);
  if (!match?.[1]) throw new Error(`no suggested \`poison ${command}\` in:\n${text}`);
  ensureBuilt();
  const words = match[1].slice("poison ".length);
  return runChild("bash", ["-c", `exec "$0" "$1" ${words}`, process.execPath, BIN], options);
}

/** True when util-linux `script` can give the child a pseudo-terminal. */
export function hasScript(): boolean {
  const probe = spawnSync("script", ["--version"], { encoding: "utf8" });
  return probe.status === 0 && /util-linux/.test(probe.stdout + probe.stderr);
}

/**
 * Run `poison ARGS` on a pseudo-terminal (util-linux `script`), typing `input`. stdout and
 * stderr both arrive on the terminal, so they come back together.
 */
export function runPoisonOnTty(args: readonly string[], options: RunOptions = {}): RunResult {
  ensureBuilt();
  const command = [process.execPath, BIN, ...args].map(shellQuote).join(" ");
  return runChildSync("script", ["-q", "-e", "-c", command, "/dev/null"], options);
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

let built = false;
/** `npm test` builds first (scripts/test.mjs); running one file by hand builds when stale. */
export function ensureBuilt(): void {
  if (built) return;
  if (!existsSync(BUILT) || newestSource(join(ROOT, "src")) > statSync(BUILT).mtimeMs) {
    const build = spawnSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "inherit" });
    if (build.status !== 0)
      throw new Error("npm run build failed; the CLI tests need the built bin");
  }
  built = true;
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** An ANSI escape sequence (colour). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: detecting them is the point
export const ANSI = /\u001b\[/;

/**
 * Start `poison ARGS` on a pseudo-terminal and answer the first prompt matching `prompt` with
 * what `answer()` returns, once it has run (so a test can change the store while the operator
 * reads the record).
 */
export function answerOnTty(
  args: readonly string[],
  prompt: RegExp,
  answer: () => Promise<string>,
  options: RunOptions = {},
): Promise<RunResult> {
  ensureBuilt();
  const command = [process.execPath, BIN, ...args].map(shellQuote).join(" ");
  const child = spawn("script", ["-q", "-e", "-c", command, "/dev/null"], {
    env: cleanEnv(options.env),
    cwd: options.cwd ?? scratchDir(),
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let answered = false;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill(), 60_000);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      if (!answered && prompt.test(stdout)) {
        answered = true;
        answer().then(
          (line) => child.stdin.end(line),
          (error: unknown) => {
            child.kill();
            reject(error);
          },
        );
      }
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve(result(code, stdout, stderr));
    });
  });
}
