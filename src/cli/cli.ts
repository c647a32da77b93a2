/**
 * The `poison` command line, as a function: `runCli(argv, io)` parses, runs one command and
 * resolves with the exit code. It never calls process.exit and writes only to the injected
 * streams, so it runs the same in the bin and in tests.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { supportedUrlForms } from "../open.js";
import { clearCommand } from "./commands/clear.js";
import { demoCommand } from "./commands/demo.js";
import { historyCommand } from "./commands/history.js";
import { listCommand } from "./commands/list.js";
import { putCommand } from "./commands/put.js";
import { serveCommand } from "./commands/serve.js";
import { showCommand } from "./commands/show.js";
import {
  type Command,
  CommandContext,
  DEFAULT_STORE_URL,
  type GlobalOptions,
  labelOf,
  type OptionSpec,
} from "./context.js";
import { type CliError, ExitCode, errorJson, toCliError, usageError } from "./errors.js";
import { type CliIo, colourEnabled, Printer, redactor, urlPasswords } from "./io.js";

export type { CliIo } from "./io.js";

export const COMMANDS: readonly Command[] = [
  listCommand,
  showCommand,
  putCommand,
  clearCommand,
  historyCommand,
  demoCommand,
  serveCommand,
];

/** Options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  store: {
    type: "string",
    value: "URL",
    help: `store URL (default: $POISON_STORE_URL, else ${DEFAULT_STORE_URL})`,
  },
  namespace: {
    type: "string",
    value: "NS",
    help: "key namespace (default: $POISON_NAMESPACE, else /__procedure_poison/)",
  },
  timeout: {
    type: "string",
    value: "MS",
    help: "give up on the backend after MS milliseconds (default 5000)",
  },
  "allow-write": {
    type: "boolean",
    help: "let a store that opens read-only be written: ?layout=greptimedb (see docs/GREPTIMEDB.md)",
  },
  json: { type: "boolean", help: "print one JSON document on stdout instead of text" },
  verbose: { type: "boolean", help: "on failure, also print the stack trace" },
  help: { type: "boolean", short: "h", help: "show help" },
};

const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  unexpected error (or a confirmation that was declined)
  2  usage error: bad option, argument or store URL
  3  conflict: the key is held by another token
  4  not found: the key is not present
  5  backend unavailable (the store could not be reached or timed out) or misconfigured
     (a wrong password, a missing database, an untrusted certificate: the message says what to fix)`;

/** Run one command line; resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const env = io.env;
  const secrets = [
    ...urlPasswords(findStoreArgument(argv) ?? ""),
    ...urlPasswords(env.POISON_STORE_URL ?? ""),
  ];
  const redact = redactor(secrets);
  const out = new Printer(io.stdout, redact, colourEnabled(io.stdout, env));
  const err = new Printer(io.stderr, redact, colourEnabled(io.stderr, env));
  const json = argv.includes("--json");
  const verbose = argv.includes("--verbose");

  let command: Command | undefined;
  try {
    const { name, rest } = splitCommand(argv);
    if (name === undefined) {
      if (rest.includes("--version")) {
        await out.line(version());
        return ExitCode.Ok;
      }
      if (rest.length === 0 || rest.includes("--help") || rest.includes("-h")) {
        await out.write(mainHelp());
        return ExitCode.Ok;
      }
      throw usageError("no command given", "run `poison --help` to see the commands");
    }
    if (name === "help") {
      const topic = COMMANDS.find((c) => c.name === rest.find((a) => !a.startsWith("-")));
      await out.write(topic ? commandHelp(topic) : mainHelp());
      return ExitCode.Ok;
    }
    command = COMMANDS.find((c) => c.name === name);
    if (!command) {
      throw usageError(
        `unknown command ${JSON.stringify(name)}`,
        `the commands are ${COMMANDS.map((c) => c.name).join(", ")}; see \`poison --help\``,
      );
    }
    const parsed = parseArgs({
      args: [...rest],
      options: toParseArgsOptions({ ...GLOBAL_OPTIONS, ...command.options }),
      allowPositionals: true,
      strict: true,
    });
    const values = parsed.values as Record<string, string | boolean | undefined>;
    if (values.help) {
      await out.write(commandHelp(command));
      return ExitCode.Ok;
    }
    checkPositionals(command, parsed.positionals);
    const ctx = new CommandContext({
      command,
      args: parsed.positionals,
      options: values,
      global: globalOptions(values, env),
      out,
      err,
      io,
    });
    return await command.run(ctx);
  } catch (error) {
    return await report(toCliError(error, command?.name), { out, err, json, verbose });
  }
}

/** One clear line plus the fix on stderr; with --json, also one error document on stdout. */
async function report(
  error: CliError,
  { out, err, json, verbose }: { out: Printer; err: Printer; json: boolean; verbose: boolean },
): Promise<number> {
  const c = err.colour;
  await err.line(`${c.red("poison: error:")} ${error.message}`);
  if (error.fix) await err.line(`  ${c.bold("fix:")} ${error.fix}`);
  if (verbose) {
    let cause: unknown = error.cause ?? error;
    while (cause instanceof Error) {
      await err.line(c.dim(cause.stack ?? String(cause)));
      cause = cause.cause;
      if (cause !== undefined) await err.line(c.dim("caused by:"));
    }
    if (cause !== undefined && !(cause instanceof Error)) await err.line(c.dim(String(cause)));
  }
  if (json && !error.inJsonDocument) await out.json({ error: errorJson(error) });
  return error.exitCode;
}

/** The first argument that is not an option (or an option's value) names the command. */
function splitCommand(argv: readonly string[]): { name: string | undefined; rest: string[] } {
  const takesValue = new Set(
    Object.entries(GLOBAL_OPTIONS)
      .filter(([, spec]) => spec.type === "string")
      .map(([name]) => `--${name}`),
  );
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") break;
    if (takesValue.has(arg)) {
      i++;
      continue;
    }
    if (!arg.startsWith("-"))
      return { name: arg, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { name: undefined, rest: [...argv] };
}

/** `--store URL` or `--store=URL`, read before parsing so even a usage error is redacted. */
function findStoreArgument(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--store") return argv[i + 1];
    if (arg.startsWith("--store=")) return arg.slice("--store=".length);
  }
  return undefined;
}

function globalOptions(
  values: Record<string, string | boolean | undefined>,
  env: CliIo["env"],
): GlobalOptions {
  const pick = (name: string) =>
    typeof values[name] === "string" ? (values[name] as string) : undefined;
  const storeUrl = pick("store") ?? (env.POISON_STORE_URL || DEFAULT_STORE_URL);
  const timeout = pick("timeout");
  let timeoutMs: number | undefined;
  if (timeout !== undefined) {
    timeoutMs = Number(timeout);
    if (!/^[1-9][0-9]*$/.test(timeout) || !Number.isSafeInteger(timeoutMs)) {
      throw usageError(
        `--timeout must be a positive number of milliseconds, not ${JSON.stringify(timeout)}`,
        "for example --timeout 10000",
      );
    }
  }
  return {
    storeUrl,
    storeLabel: labelOf(storeUrl),
    namespace: pick("namespace") ?? (env.POISON_NAMESPACE || undefined),
    timeoutMs,
    allowWrite: values["allow-write"] === true,
    json: values.json === true,
    verbose: values.verbose === true,
  };
}

function checkPositionals(command: Command, positionals: readonly string[]): void {
  const { min, max } = command.positionals;
  if (positionals.length < min) {
    throw usageError(
      `missing argument: usage is \`${command.usage}\``,
      `see \`poison ${command.name} --help\``,
    );
  }
  if (positionals.length > max) {
    throw usageError(
      `unexpected argument ${JSON.stringify(positionals[max])}: usage is \`${command.usage}\``,
      `quote a key that contains spaces; see \`poison ${command.name} --help\``,
    );
  }
}

function toParseArgsOptions(
  specs: Record<string, OptionSpec>,
): Record<string, { type: "string" | "boolean"; short?: string }> {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = spec.short ? { type: spec.type, short: spec.short } : { type: spec.type };
  }
  return options;
}

function optionLines(specs: Record<string, OptionSpec>): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : ""}--${name}${spec.value ? ` ${spec.value}` : ""}`;
    return [flag, spec.help] as const;
  });
  const width = Math.max(...rows.map(([flag]) => flag.length));
  return rows.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`).join("\n");
}

function version(): string {
  const pkg = JSON.parse(
    readFileSync(new URL("../../../package.json", import.meta.url), "utf8"),
  ) as {
    version: string;
  };
  return pkg.version;
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `poison — find, understand and recover poisoned resources (poison-store ${version()})

A poison key quarantines a resource that an operation may have left inconsistent. It never
expires: it stays until an operator inspects the resource, repairs it and clears the key.

Usage: poison <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

Options for every command:
${optionLines(GLOBAL_OPTIONS)}

Store URLs: ${supportedUrlForms().join(", ")}
Environment: POISON_STORE_URL, POISON_NAMESPACE, POISON_ACTOR, NO_COLOR, FORCE_COLOR

Examples:
  poison demo                                  # the whole story in 30 seconds
  poison list --state poisoned
  poison show table/1024
  poison clear table/1024 --force --reason "re-ran ALTER on shard 4"

${EXIT_CODES_HELP}

Run \`poison <command> --help\` for a command's options and examples.
`;
}

export function commandHelp(command: Command): string {
  return `${command.summary}

Usage: ${command.usage}

${command.description}

Options:
${optionLines(command.options)}
${optionLines(GLOBAL_OPTIONS)}

Examples:
${command.examples.map((e) => `  ${e}`).join("\n")}

${EXIT_CODES_HELP}
`;
}
