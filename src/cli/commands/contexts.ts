import { isAbsolute } from "node:path";
import { DEFAULT_NAMESPACE } from "../../core/namespace.js";
import { MAX_TIMER_MS } from "../../core/validation.js";
import { openPoisonStore } from "../../open.js";
import { closest } from "../args.js";
import {
  type ContextEntry,
  configPath,
  contextNamed,
  type PoisonConfig,
  readConfig,
  writeConfig,
} from "../config.js";
import {
  type CommandContext,
  type CommandContextOf,
  defineCommand,
  labelOf,
  type OptionSpecs,
  sqliteFileOf,
} from "../context.js";
import { ExitCode, usageError } from "../errors.js";
import { StreamingTable } from "../format.js";
import { urlPasswords } from "../io.js";

const ACTIONS = ["list", "show", "use", "set", "delete"] as const;
type Action = (typeof ACTIONS)[number];

/** The options of `poison context`; `run` and its helpers are typed by them. */
const CONTEXT_OPTIONS = {
  store: {
    type: "string",
    value: "URL",
    help: "set: the store URL (required for a new context)",
  },
  namespace: { type: "string", value: "NS", help: "set: the key namespace" },
  timeout: {
    type: "string",
    value: "MS",
    help: "set: the time limit of each call, in milliseconds",
  },
  "password-env": {
    type: "string",
    value: "VAR",
    help: "set: read the URL's password from environment variable VAR",
  },
  names: { type: "boolean", help: "list: only the names, one a line (for scripts)" },
} as const satisfies OptionSpecs;
type ContextContext = CommandContextOf<typeof CONTEXT_OPTIONS>;

export const contextCommand = defineCommand({
  name: "context",
  summary: "name stores once, as kubectl contexts: list, show, use, set, delete",
  usage: [
    "poison context list [--names]",
    "poison context show [NAME]",
    "poison context use NAME",
    "poison context set NAME [--store URL] [--namespace NS] [--timeout MS] [--password-env VAR]",
    "poison context delete NAME",
  ],
  description: `A context names a store (and optionally its namespace and time limit) in the config file:
$POISON_CONFIG, else ~/.config/poison/config.json. Pick one with --context NAME or
$POISON_CONTEXT on any command, or make it current with \`poison context use NAME\`.

Each setting comes from its flag, else its environment variable, else the context in use, else
the default. The current context applies only when no store is named outright (--store,
$POISON_STORE_URL).

Keep passwords out of the file: \`--password-env VAR\` stores the name of an environment variable
that holds the password, read each time the context is used; the password is never written to
the file and never printed. The file is written readable by its owner only.`,
  options: CONTEXT_OPTIONS,
  positionals: { min: 1, max: 2 },
  scope: "local",
  examples: [
    [
      "poison context set prod --store postgres://ops@db:5432/control --password-env PG_PASSWORD",
      "name a store",
    ],
    ["poison context use prod", "make it the current one"],
    ["poison context list"],
    ["poison list --context staging", "one command on another"],
    ["POISON_CONTEXT=staging poison check", "or through the environment"],
  ],
  async run(ctx): Promise<number> {
    const [actionText, name] = ctx.args as [string, string | undefined];
    const action = ACTIONS.find((a) => a === actionText);
    if (!action) {
      const guess = closest(actionText, ACTIONS);
      throw usageError(
        `unknown action ${JSON.stringify(actionText)} of poison context`,
        guess
          ? `did you mean \`poison context ${guess}\`?`
          : `the actions are ${ACTIONS.join(", ")}`,
      );
    }
    checkOptions(ctx, action);
    const path = configPath(ctx.io.env);
    const config = readConfig(path);
    switch (action) {
      case "list":
        noName(action, name);
        return list(ctx, config, path);
      case "show":
        return show(ctx, config, path, name);
      case "use":
        return use(ctx, config, path, needName(action, name));
      case "set":
        return set(ctx, config, path, needName(action, name));
      case "delete":
        return remove(ctx, config, path, needName(action, name));
    }
  },
});

/** The options each action takes; any other is a mistake to point out, not to ignore. */
function checkOptions(ctx: ContextContext, action: Action): void {
  const allowed: Record<Action, string[]> = {
    list: ["names"],
    show: [],
    use: [],
    set: ["store", "namespace", "timeout", "password-env"],
    delete: [],
  };
  for (const option of ["store", "namespace", "timeout", "password-env", "names"]) {
    if (ctx.options[option] !== undefined && !allowed[action].includes(option)) {
      throw usageError(
        `--${option} does not go with \`poison context ${action}\``,
        option === "names"
          ? "use it with `poison context list`"
          : "use it with `poison context set NAME`; to use another store once, run the command with --store or --context",
      );
    }
  }
}

function needName(action: Action, name: string | undefined): string {
  if (name !== undefined) return name;
  throw usageError(
    `\`poison context ${action}\` needs a context NAME`,
    `for example \`poison context ${action} prod\``,
  );
}

function noName(action: Action, name: string | undefined): void {
  if (name !== undefined)
    throw usageError(
      `\`poison context ${action}\` takes no NAME (got ${JSON.stringify(name)})`,
      "`poison context show NAME` shows one",
    );
}

/** A context as it may be printed: no password, ever. */
function publicView(
  name: string,
  entry: ContextEntry,
  config: PoisonConfig,
  env: CommandContext["io"]["env"],
) {
  return {
    name,
    current: config.current === name,
    store: labelOf(entry.store),
    namespace: entry.namespace ?? null,
    timeoutMs: entry.timeoutMs ?? null,
    passwordEnv: entry.passwordEnv ?? null,
    passwordSet: entry.passwordEnv === undefined ? null : Boolean(env[entry.passwordEnv]),
  };
}

async function list(ctx: ContextContext, config: PoisonConfig, path: string): Promise<number> {
  const names = Object.keys(config.contexts);
  if (ctx.flag("names") && !ctx.global.json) {
    for (const name of names) await ctx.out.line(name);
    return ExitCode.Ok;
  }
  const views = names.map((name) =>
    publicView(name, config.contexts[name] as ContextEntry, config, ctx.io.env),
  );
  if (ctx.global.json) {
    await ctx.out.json({ config: path, current: config.current ?? null, contexts: views });
    return ExitCode.Ok;
  }
  if (views.length === 0) {
    await ctx.out.line(
      `no contexts in ${path}; add one with \`poison context set NAME --store URL\``,
    );
    return ExitCode.Ok;
  }
  const table = new StreamingTable<(typeof views)[number]>(ctx.out, [
    { title: "CURRENT", max: 7, value: (v) => (v.current ? "*" : " ") },
    { title: "NAME", max: 32, value: (v) => v.name },
    { title: "STORE", max: 64, value: (v) => v.store },
    { title: "NAMESPACE", max: 32, value: (v) => v.namespace ?? "" },
    { title: "TIMEOUT", max: 10, value: (v) => (v.timeoutMs === null ? "" : `${v.timeoutMs}ms`) },
    {
      title: "PASSWORD",
      max: 48,
      value: (v) =>
        v.passwordEnv === null ? "" : `$${v.passwordEnv}${v.passwordSet ? "" : " (not set)"}`,
    },
  ]);
  await table.write(views);
  await table.end();
  await ctx.out.line(ctx.out.colour.dim(`(${path})`));
  return ExitCode.Ok;
}

async function show(
  ctx: ContextContext,
  config: PoisonConfig,
  path: string,
  given: string | undefined,
): Promise<number> {
  const env = ctx.io.env;
  let name = given;
  let source = "given";
  if (name === undefined && env.POISON_CONTEXT)
    [name, source] = [env.POISON_CONTEXT, "POISON_CONTEXT"];
  if (name === undefined && config.current !== undefined)
    [name, source] = [config.current, "current"];
  if (name === undefined) {
    if (ctx.global.json) {
      await ctx.out.json({ config: path, context: null });
    } else {
      await ctx.out.line(
        `no context in use (${path} has no current context, POISON_CONTEXT is not set)`,
      );
    }
    return ExitCode.Ok;
  }
  const entry = contextNamed(config, name, path, source === "given" ? "NAME" : source);
  const view = publicView(name, entry, config, env);
  const overrides = [
    env.POISON_STORE_URL ? "POISON_STORE_URL overrides its store" : "",
    env.POISON_NAMESPACE ? "POISON_NAMESPACE overrides its namespace" : "",
  ].filter(Boolean);
  if (ctx.global.json) {
    await ctx.out.json({
      config: path,
      context: view,
      selectedBy: source,
      overriddenBy: overrides,
    });
    return ExitCode.Ok;
  }
  const c = ctx.out.colour;
  const rows: [string, string][] = [
    [
      "context",
      `${name}${view.current ? " (current)" : ""}${source === "POISON_CONTEXT" ? " (from POISON_CONTEXT)" : ""}`,
    ],
    ["config", path],
    ["store", view.store],
    [
      "password",
      view.passwordEnv === null
        ? urlPasswords(entry.store).length > 0
          ? "in the URL (stored in plain text; prefer --password-env VAR)"
          : "-"
        : `from $${view.passwordEnv} (${view.passwordSet ? "set" : "NOT set: commands on this context will refuse"})`,
    ],
    ["namespace", view.namespace ?? `${DEFAULT_NAMESPACE} (default)`],
    ["timeout", view.timeoutMs === null ? "5000 ms (default)" : `${view.timeoutMs} ms`],
  ];
  for (const [label, value] of rows) await ctx.out.line(`${c.dim(label.padEnd(10))} ${value}`);
  for (const note of overrides)
    await ctx.out.line(c.yellow(`note: ${note} (flags, then environment, then context)`));
  return ExitCode.Ok;
}

async function use(
  ctx: ContextContext,
  config: PoisonConfig,
  path: string,
  name: string,
): Promise<number> {
  const entry = contextNamed(config, name, path, "NAME");
  config.current = name;
  writeConfig(path, config);
  if (ctx.global.json) {
    await ctx.out.json({
      config: path,
      current: name,
      context: publicView(name, entry, config, ctx.io.env),
    });
  } else {
    await ctx.out.line(
      `current context: ${name} (store ${labelOf(entry.store)}); saved in ${path}`,
    );
  }
  return ExitCode.Ok;
}

async function set(
  ctx: ContextContext,
  config: PoisonConfig,
  path: string,
  name: string,
): Promise<number> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.length > 64) {
    throw usageError(
      `context name ${JSON.stringify(name)} is not allowed`,
      "use letters, digits, '.', '_' and '-' (at most 64), starting with a letter or digit",
    );
  }
  const existing = Object.hasOwn(config.contexts, name) ? config.contexts[name] : undefined;
  const store = ctx.string("store");
  if (store === undefined && !existing) {
    throw usageError(
      `context ${JSON.stringify(name)} is new: it needs --store URL`,
      `for example \`poison context set ${name} --store postgres://ops@db:5432/control\``,
    );
  }
  const entry: ContextEntry = { ...(existing ?? { store: store as string }) };
  if (store !== undefined) {
    // Opening connects nothing: it only checks that the URL names a backend this version knows.
    await openPoisonStore(store).close();
    entry.store = store;
  }
  const namespace = ctx.string("namespace");
  if (namespace !== undefined) entry.namespace = namespace;
  const timeout = ctx.string("timeout");
  if (timeout !== undefined) {
    if (!/^[1-9][0-9]*$/.test(timeout) || Number(timeout) > MAX_TIMER_MS)
      throw usageError(
        `--timeout must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}, not ${JSON.stringify(timeout)}`,
        "for example --timeout 10000",
      );
    entry.timeoutMs = Number(timeout);
  }
  const passwordEnv = ctx.string("password-env");
  if (passwordEnv !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(passwordEnv))
      throw usageError(
        `--password-env takes the NAME of an environment variable, not ${JSON.stringify(passwordEnv)}`,
        "for example --password-env PG_PASSWORD (the variable holds the password)",
      );
    entry.passwordEnv = passwordEnv;
  }
  if (entry.passwordEnv !== undefined && urlPasswords(entry.store).length > 0) {
    throw usageError(
      `context ${JSON.stringify(name)} would have a password both in its URL and in $${entry.passwordEnv}`,
      "give the URL without its password (scheme://user@host/…): --password-env supplies it",
    );
  }
  config.contexts[name] = entry;
  const madeCurrent = config.current === undefined;
  if (madeCurrent) config.current = name;
  writeConfig(path, config);
  const view = publicView(name, entry, config, ctx.io.env);
  if (ctx.global.json) {
    await ctx.out.json({ config: path, created: !existing, context: view });
  } else {
    await ctx.out.line(
      `context ${name} ${existing ? "updated" : "saved"} in ${path}: store ${view.store}${entry.namespace === undefined ? "" : `, namespace ${entry.namespace}`}${entry.timeoutMs === undefined ? "" : `, timeout ${entry.timeoutMs} ms`}${entry.passwordEnv === undefined ? "" : `, password from $${entry.passwordEnv}`}`,
    );
    await ctx.out.line(
      madeCurrent
        ? `it is the current context (the first one); \`poison context use NAME\` switches`
        : `use it with --context ${name}, or make it current: \`poison context use ${name}\``,
    );
  }
  const file = sqliteFileOf(entry.store);
  if (file !== null && !isAbsolute(file))
    await ctx.err.line(
      `poison: warning: the SQLite path of context ${name} is relative: it is read from the working directory of each command; prefer an absolute path`,
    );
  if (urlPasswords(entry.store).length > 0)
    await ctx.err.line(
      `poison: warning: the store URL of context ${name} holds a password, now stored in plain text in ${path}; prefer --password-env VAR`,
    );
  return ExitCode.Ok;
}

async function remove(
  ctx: ContextContext,
  config: PoisonConfig,
  path: string,
  name: string,
): Promise<number> {
  contextNamed(config, name, path, "NAME");
  delete config.contexts[name];
  const wasCurrent = config.current === name;
  if (wasCurrent) delete config.current;
  writeConfig(path, config);
  if (ctx.global.json) {
    await ctx.out.json({ config: path, deleted: name, current: config.current ?? null });
  } else {
    await ctx.out.line(
      `context ${name} deleted from ${path}${wasCurrent ? "; no context is current now" : ""}`,
    );
  }
  return ExitCode.Ok;
}
