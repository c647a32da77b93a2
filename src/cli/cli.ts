/**
 * The `poison` command line, as a function: `runCli(argv, io)` parses, runs one command and
 * resolves with the exit code. It never calls process.exit and writes only to the injected
 * streams, so it runs the same in the bin and in tests.
 */
import { readFileSync } from "node:fs";
import { MAX_TIMER_MS } from "../core/validation.js";
import { webhookSecretParts } from "../observability/webhook.js";
import { supportedUrlForms } from "../open.js";
import { closest, type OptionSpec, parseArgs } from "./args.js";
import { checkCommand } from "./commands/check.js";
import { clearCommand } from "./commands/clear.js";
import { completionCommand } from "./commands/completion.js";
import { contextCommand } from "./commands/contexts.js";
import { demoCommand } from "./commands/demo.js";
import { historyCommand } from "./commands/history.js";
import { listCommand } from "./commands/list.js";
import { putCommand } from "./commands/put.js";
import { serveCommand } from "./commands/serve.js";
import { showCommand } from "./commands/show.js";
import { watchCommand } from "./commands/watch.js";
import { configPath, contextNamed, readConfig, withPassword } from "./config.js";
import {
  type Command,
  CommandContext,
  DEFAULT_STORE_URL,
  type GlobalOptions,
  labelOf,
} from "./context.js";
import {
  type CliError,
  describe,
  type ErrorWhere,
  ExitCode,
  errorJson,
  type FailureContext,
  isInstance,
  toCliError,
  usageError,
} from "./errors.js";
import { type CliIo, colourEnabled, Printer, redactor, urlPasswords } from "./io.js";

export type { CliIo } from "./io.js";

export const COMMANDS: readonly Command[] = [
  listCommand,
  showCommand,
  checkCommand,
  putCommand,
  clearCommand,
  historyCommand,
  watchCommand,
  contextCommand,
  completionCommand,
  demoCommand,
  serveCommand,
];

/** Options of every command that works on a store. */
export const STORE_OPTIONS: Record<string, OptionSpec> = {
  store: {
    type: "string",
    value: "URL",
    help: `the store (default: $POISON_STORE_URL, else the context's, else ${DEFAULT_STORE_URL})`,
  },
  context: {
    type: "string",
    value: "NAME",
    help: "use the named context of the config file (default: $POISON_CONTEXT, else the current one)",
  },
  namespace: {
    type: "string",
    value: "NS",
    help: "key namespace (default: $POISON_NAMESPACE, else the context's, else /__procedure_poison/)",
  },
  timeout: {
    type: "string",
    value: "MS",
    help: "give up on the backend after MS milliseconds (default: the context's, else 5000)",
  },
  "allow-write": {
    type: "boolean",
    help: "let a store that opens read-only be written (?layout=greptimedb; see docs/GREPTIMEDB.md)",
  },
};

/** Options of every command. */
export const OUTPUT_OPTIONS: Record<string, OptionSpec> = {
  json: { type: "boolean", help: "print one JSON document on stdout instead of text" },
  verbose: { type: "boolean", help: "on failure, also print the stack trace" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

const EXIT_CODES_HELP = `Exit codes:
  0    ok (check: nothing matches)
  1    unexpected error, or a declined confirmation (check: something matches)
  2    usage error: bad option, argument, store URL or config file
  3    conflict: the key is held by another token
  4    not found: the key is not present
  5    store unavailable or misconfigured: unreachable, timed out, no such SQLite file
  6    refused: the holder is live (its heartbeat is recent); see --even-if-alive
  130  interrupted (Ctrl-C at a prompt)`;

/** Run one command line; resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const env = io.env;
  const secrets = [
    ...urlPasswords(findOption(argv, "store") ?? ""),
    ...urlPasswords(env.POISON_STORE_URL ?? ""),
    // Webhook URLs (`serve --notify`) are credentials in their path or query.
    ...findOptions(argv, "notify").flatMap(webhookSecretParts),
  ];
  let redact = redactor(secrets);
  const redactNow = (text: string) => redact(text);
  const addSecrets = (more: readonly string[]) => {
    if (more.length === 0) return;
    secrets.push(...more);
    redact = redactor(secrets);
  };
  const out = new Printer(io.stdout, redactNow, colourEnabled(io.stdout, env));
  const err = new Printer(io.stderr, redactNow, colourEnabled(io.stderr, env));
  const options = argv.slice(0, endOfOptions(argv));
  const json = options.includes("--json");
  const verbose = options.includes("--verbose");

  let command: Command | undefined;
  let ctx: CommandContext | undefined;
  try {
    const { name, rest } = splitCommand(argv);
    if (name === undefined) return await topLevel(rest, out);
    if (name === "help") {
      await out.write(helpFor(rest.filter((a) => !a.startsWith("-"))[0]));
      return ExitCode.Ok;
    }
    command = COMMANDS.find((c) => c.name === name);
    if (!command) throw unknownCommand(name);
    const specs = optionsOf(command);
    const parsed = parseArgs(rest, specs, {
      help: `poison ${command.name} --help`,
      others: optionOwners(),
      ...(command.unknownOption ? { explain: command.unknownOption.bind(command) } : {}),
    });
    const values = parsed.values;
    if (values.help) {
      await out.write(commandHelp(command));
      return ExitCode.Ok;
    }
    checkPositionals(command, parsed.positionals);
    const { global, warnings, passwords } =
      command.scope === "store"
        ? resolveSettings(values, env)
        : { global: localSettings(values), warnings: [], passwords: [] };
    addSecrets(passwords);
    for (const warning of warnings) await err.line(`poison: warning: ${warning}`);
    ctx = new CommandContext({
      command,
      args: parsed.positionals,
      options: values,
      global,
      out,
      err,
      io,
    });
    return await command.run(ctx);
  } catch (error) {
    const failure: FailureContext = ctx?.failure() ?? { command: command?.name };
    const where: ErrorWhere = ctx?.errorWhere() ?? { store: null, namespace: null, context: null };
    return await report(toCliError(error, failure), where, { out, err, json, verbose });
  }
}

/** `poison` with no command: --version, --help, or a usage error. */
async function topLevel(rest: readonly string[], out: Printer): Promise<number> {
  if (rest.includes("--version") || rest.includes("-V")) {
    await out.line(version());
    return ExitCode.Ok;
  }
  if (rest.length === 0 || rest.includes("--help") || rest.includes("-h")) {
    await out.write(mainHelp());
    return ExitCode.Ok;
  }
  const option = rest.find((a) => a.startsWith("-"));
  if (option !== undefined && !(option.replace(/^-+|=.*$/gs, "") in STORE_OPTIONS)) {
    const known = [
      "version",
      "help",
      ...Object.keys(STORE_OPTIONS),
      ...Object.keys(OUTPUT_OPTIONS),
    ];
    const guess = closest(option.replace(/^-+|=.*$/gs, ""), known);
    throw usageError(
      `unknown option ${JSON.stringify(option.replace(/=.*$/s, ""))}`,
      guess ? `did you mean --${guess}? see \`poison --help\`` : "see `poison --help`",
    );
  }
  throw usageError("no command given", "run `poison --help` to see the commands");
}

function unknownCommand(name: string): CliError {
  const guess = closest(
    name,
    COMMANDS.map((c) => c.name),
  );
  return usageError(
    `unknown command ${JSON.stringify(name)}`,
    guess
      ? `did you mean \`poison ${guess}\`? see \`poison --help\``
      : `the commands are ${COMMANDS.map((c) => c.name).join(", ")}; see \`poison --help\``,
  );
}

/** One clear line plus the fix on stderr; with --json, also one error document on stdout. */
async function report(
  error: CliError,
  where: ErrorWhere,
  { out, err, json, verbose }: { out: Printer; err: Printer; json: boolean; verbose: boolean },
): Promise<number> {
  const c = err.colour;
  await err.line(`${c.red("poison: error:")} ${error.message}`);
  if (error.fix) await err.line(`  ${c.bold("fix:")} ${error.fix}`);
  if (verbose) {
    let cause: unknown = error.cause ?? error;
    // Bounded, and every read guarded: a thrown value may be hostile (getters that throw, a
    // cause that points back at itself).
    for (let depth = 0; isInstance(cause, Error) && depth < 16; depth++) {
      await err.line(c.dim(safeStack(cause)));
      cause = safeCause(cause);
      if (cause !== undefined) await err.line(c.dim("caused by:"));
    }
    if (cause !== undefined && !isInstance(cause, Error)) await err.line(c.dim(describe(cause)));
  }
  if (json && !error.inJsonDocument) await out.json({ error: errorJson(error, where) });
  return error.exitCode;
}

function safeCause(error: Error): unknown {
  try {
    return error.cause;
  } catch {
    return undefined;
  }
}

function safeStack(error: Error): string {
  try {
    return String(error.stack ?? error);
  } catch {
    return "(an error whose stack cannot be read)";
  }
}

/** Where options end: at `--`, everything after is positional. */
function endOfOptions(argv: readonly string[]): number {
  const end = argv.indexOf("--");
  return end < 0 ? argv.length : end;
}

/** The first argument that is not an option (or a store option's value) names the command. */
function splitCommand(argv: readonly string[]): { name: string | undefined; rest: string[] } {
  const takesValue = new Set(Object.keys(STORE_OPTIONS).map((name) => `--${name}`));
  for (let i = 0; i < endOfOptions(argv); i++) {
    const arg = argv[i] as string;
    if (takesValue.has(arg)) {
      i++;
      continue;
    }
    if (!arg.startsWith("-"))
      return { name: arg, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { name: undefined, rest: [...argv] };
}

/** `--NAME VALUE` or `--NAME=VALUE`, read before parsing so even a usage error is redacted. */
/** Every value of a repeatable option, before any `--`. */
function findOptions(argv: readonly string[], name: string): string[] {
  const found: string[] = [];
  for (let i = 0; i < endOfOptions(argv); i++) {
    const arg = argv[i] as string;
    if (arg === `--${name}` && argv[i + 1] !== undefined) found.push(argv[i + 1] as string);
    else if (arg.startsWith(`--${name}=`)) found.push(arg.slice(name.length + 3));
  }
  return found;
}

function findOption(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < endOfOptions(argv); i++) {
    const arg = argv[i] as string;
    if (arg === `--${name}`) return argv[i + 1];
    if (arg.startsWith(`--${name}=`)) return arg.slice(name.length + 3);
  }
  return undefined;
}

function optionsOf(command: Command): Record<string, OptionSpec> {
  return command.scope === "store"
    ? { ...command.options, ...STORE_OPTIONS, ...OUTPUT_OPTIONS }
    : { ...command.options, ...OUTPUT_OPTIONS };
}

/** Which commands take each option, for "--force is an option of `poison clear`". */
function optionOwners(): Map<string, string[]> {
  const owners = new Map<string, string[]>();
  for (const command of COMMANDS) {
    for (const name of Object.keys(optionsOf(command)))
      owners.set(name, [...(owners.get(name) ?? []), command.name]);
  }
  return owners;
}

/**
 * The settings of a store command. Each comes from its flag, else its environment variable, else
 * the context in use, else the default. The context in use: `--context`, else `POISON_CONTEXT`,
 * else the config file's current one unless a store was named outright (`--store`,
 * `POISON_STORE_URL`). The config file is read only when a context may apply.
 */
function resolveSettings(
  values: Readonly<Record<string, string | boolean | string[]>>,
  env: CliIo["env"],
): { global: GlobalOptions; warnings: string[]; passwords: string[] } {
  const pick = (name: string) =>
    typeof values[name] === "string" ? (values[name] as string) : undefined;
  const warnings: string[] = [];
  const passwords: string[] = [];
  const storeFlag = pick("store");
  const storeEnv = env.POISON_STORE_URL || undefined;
  const namespaceFlag = pick("namespace");
  const namespaceEnv = env.POISON_NAMESPACE || undefined;

  let contextName: string | null = null;
  let contextSource = "";
  if (pick("context") !== undefined) {
    contextName = pick("context") as string;
    contextSource = "--context";
  } else if (env.POISON_CONTEXT) {
    contextName = env.POISON_CONTEXT;
    contextSource = "POISON_CONTEXT";
  }
  const path = configPath(env);
  let entry: ReturnType<typeof contextNamed> | undefined;
  if (contextName !== null) {
    entry = contextNamed(readConfig(path), contextName, path, contextSource);
  } else if (storeFlag === undefined && storeEnv === undefined) {
    const config = readConfig(path);
    if (config.current !== undefined) {
      contextName = config.current;
      entry = contextNamed(config, contextName, path, `"current" of ${path}`);
    }
  }
  const ofContext = `context ${JSON.stringify(contextName)}`;

  let storeUrl: string;
  let storeSource: string;
  if (storeFlag !== undefined) {
    storeUrl = storeFlag;
    storeSource = "--store";
  } else if (storeEnv !== undefined) {
    storeUrl = storeEnv;
    storeSource = "POISON_STORE_URL";
  } else if (entry) {
    storeUrl = entry.store;
    storeSource = ofContext;
    if (entry.passwordEnv !== undefined) {
      const password = env[entry.passwordEnv];
      if (!password) {
        throw usageError(
          `context ${JSON.stringify(contextName)} takes its password from $${entry.passwordEnv}, which is not set`,
          `set it (export ${entry.passwordEnv}=…) in the environment of poison, or name a store with --store`,
        );
      }
      passwords.push(password);
      storeUrl = withPassword(storeUrl, password, contextName as string);
    }
    passwords.push(...urlPasswords(entry.store));
  } else {
    storeUrl = DEFAULT_STORE_URL;
    storeSource = "default";
  }
  if (entry && contextSource === "--context" && storeSource === "POISON_STORE_URL")
    warnings.push(
      `POISON_STORE_URL overrides the store of ${ofContext} (flags, then environment, then context)`,
    );

  let namespace: string | undefined;
  let namespaceSource: string | undefined;
  if (namespaceFlag !== undefined) [namespace, namespaceSource] = [namespaceFlag, "--namespace"];
  else if (namespaceEnv !== undefined)
    [namespace, namespaceSource] = [namespaceEnv, "POISON_NAMESPACE"];
  else if (entry?.namespace !== undefined)
    [namespace, namespaceSource] = [entry.namespace, ofContext];
  if (namespace !== undefined && namespace !== "" && /[A-Za-z0-9]$/.test(namespace)) {
    warnings.push(
      `namespace ${JSON.stringify(namespace)} (${namespaceSource}) does not end with a separator: it is prefixed to every key as is, so key "table/1" is stored as ${JSON.stringify(`${namespace}table/1`)}; did you mean ${JSON.stringify(`${namespace}/`)}?`,
    );
  }

  let timeoutMs: number | undefined;
  let timeoutSource: string | undefined;
  const timeout = pick("timeout");
  if (timeout !== undefined) {
    if (!/^[1-9][0-9]*$/.test(timeout) || Number(timeout) > MAX_TIMER_MS) {
      throw usageError(
        `--timeout must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}, not ${JSON.stringify(timeout)}`,
        "for example --timeout 10000",
      );
    }
    timeoutMs = Number(timeout);
    timeoutSource = `--timeout ${timeout}`;
  } else if (entry?.timeoutMs !== undefined) {
    timeoutMs = entry.timeoutMs;
    timeoutSource = `timeoutMs ${entry.timeoutMs} of ${ofContext}`;
  }

  return {
    global: {
      storeUrl,
      // A context's URL as written: the password its passwordEnv supplies is no part of it.
      storeLabel: labelOf(storeSource === ofContext && entry ? entry.store : storeUrl),
      storeSource,
      namespace,
      namespaceSource,
      timeoutMs,
      timeoutSource,
      context: entry ? contextName : null,
      contextNamespace: entry?.namespace,
      allowWrite: values["allow-write"] === true,
      json: values.json === true,
      verbose: values.verbose === true,
    },
    warnings,
    passwords,
  };
}

/** A command that touches no store still gets the output settings. */
function localSettings(
  values: Readonly<Record<string, string | boolean | string[]>>,
): GlobalOptions {
  return {
    storeUrl: "",
    storeLabel: "",
    storeSource: "none",
    namespace: undefined,
    namespaceSource: undefined,
    timeoutMs: undefined,
    timeoutSource: undefined,
    context: null,
    contextNamespace: undefined,
    allowWrite: false,
    json: values.json === true,
    verbose: values.verbose === true,
  };
}

function checkPositionals(command: Command, positionals: readonly string[]): void {
  const { min, max } = command.positionals;
  const usage = command.usage.map((u) => `\`${u}\``).join(" or ");
  if (positionals.length < min) {
    throw usageError(
      `missing argument: usage is ${usage}`,
      `see \`poison ${command.name} --help\``,
    );
  }
  if (positionals.length > max) {
    throw usageError(
      `unexpected argument ${JSON.stringify(positionals[max])}: usage is ${usage}`,
      `quote a key that contains spaces; see \`poison ${command.name} --help\``,
    );
  }
}

/** Option rows aligned on one column, across every section of a help text. */
function optionRows(specs: Record<string, OptionSpec>): [string, string][] {
  return Object.entries(specs).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : "    "}--${name}${spec.value ? ` ${spec.value}` : ""}`;
    const choices = spec.choices ? ` (${spec.choices.join(", ")})` : "";
    return [
      flag,
      `${spec.help}${spec.help.includes(spec.choices?.[0] ?? "\u0000") ? "" : choices}`,
    ];
  });
}

function alignRows(rows: [string, string][], width: number): string {
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`).join("\n");
}

function examplesText(examples: readonly (readonly [string, string?])[]): string {
  const width = Math.max(...examples.filter(([, why]) => why).map(([line]) => line.length), 0);
  return examples
    .map(([line, why]) => (why ? `  ${line.padEnd(width)}  # ${why}` : `  ${line}`))
    .join("\n");
}

export function version(): string {
  const pkg = JSON.parse(
    readFileSync(new URL("../../../package.json", import.meta.url), "utf8"),
  ) as {
    version: string;
  };
  return pkg.version;
}

function helpFor(topic: string | undefined): string {
  if (topic === undefined) return mainHelp();
  const command = COMMANDS.find((c) => c.name === topic);
  if (!command) throw unknownCommand(topic);
  return commandHelp(command);
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const store = optionRows(STORE_OPTIONS);
  const output = optionRows(OUTPUT_OPTIONS);
  const optionWidth = Math.max(...[...store, ...output].map(([flag]) => flag.length));
  return `poison: find, understand and recover poisoned resources (poison-store ${version()})

A poison key quarantines a resource that an operation may have left inconsistent. It never
expires: it stays until an operator inspects the resource, repairs it and clears the key.

Usage: poison <command> [options]
       poison help <command>

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

Options of every command that works on a store:
${alignRows(store, optionWidth)}

Options of every command:
${alignRows(output, optionWidth)}

  -V, --version${" ".repeat(Math.max(0, optionWidth - 13))}  print the version

Store URLs: ${supportedUrlForms().join(", ")}
Each setting comes from its flag, else its environment variable, else the context, else the default.
Environment: POISON_STORE_URL, POISON_NAMESPACE, POISON_CONTEXT, POISON_CONFIG, POISON_ACTOR,
             NO_COLOR, FORCE_COLOR

Examples:
${examplesText([
  ["poison demo", "the whole story in 30 seconds"],
  ["poison list --state poisoned", "what needs an operator"],
  ["poison show table/1024", "everything about one key"],
  ['poison clear table/1024 --force --reason "re-ran ALTER on shard 4"', "audited recovery"],
  ["poison check --older-than 15m", "for cron jobs and alerts"],
  ["poison context set prod --store postgres://ops@db:5432/control", "name a store once"],
])}

${EXIT_CODES_HELP}

Run \`poison help <command>\` for a command's options and examples.
`;
}

export function commandHelp(command: Command): string {
  const own = optionRows(command.options);
  const common = optionRows(command.scope === "store" ? STORE_OPTIONS : {});
  const output = optionRows(OUTPUT_OPTIONS);
  const width = Math.max(...[...own, ...common, ...output].map(([flag]) => flag.length));
  const sections = [`poison ${command.name}: ${command.summary}`];
  sections.push(`Usage:\n${command.usage.map((u) => `  ${u}`).join("\n")}`);
  sections.push(command.description);
  if (own.length > 0) sections.push(`Options:\n${alignRows(own, width)}`);
  if (common.length > 0)
    sections.push(`Options of every command that works on a store:\n${alignRows(common, width)}`);
  sections.push(`Options of every command:\n${alignRows(output, width)}`);
  sections.push(`Examples:\n${examplesText(command.examples)}`);
  sections.push(EXIT_CODES_HELP);
  return `${sections.join("\n\n")}\n`;
}
