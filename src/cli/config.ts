/**
 * Named contexts, as kubectl has them: a config file of stores by name and a current one, so an
 * operator types `poison list --context prod` (or nothing at all) instead of a URL.
 *
 * ```json
 * { "current": "prod",
 *   "contexts": {
 *     "prod": { "store": "postgres://ops@db:5432/control", "passwordEnv": "POISON_PROD_PASSWORD",
 *               "namespace": "/__procedure_poison/", "timeoutMs": 10000 } } }
 * ```
 *
 * Which settings apply (docs/CLI.md, "Contexts"): each setting comes from its flag, else its
 * environment variable, else the context in use, else the default. The context in use is the one
 * `--context` names, else `POISON_CONTEXT`, else the file's current one, but the current one only
 * when neither `--store` nor `POISON_STORE_URL` names a store (a store named outright is not
 * mixed with a context nobody asked for).
 */
import { randomUUID } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { MAX_TIMER_MS } from "../core/validation.js";
import { closest } from "./args.js";
import { usageError } from "./errors.js";

/** One named store. */
export interface ContextEntry {
  /** The store URL. Keep passwords out of it: use `passwordEnv`. */
  store: string;
  namespace?: string;
  timeoutMs?: number;
  /** The name of an environment variable holding the URL's password, read when the context is
   *  used; the password is never written to the file and never printed. */
  passwordEnv?: string;
}

export interface PoisonConfig {
  current?: string;
  contexts: Record<string, ContextEntry>;
}

const CONTEXT_FIELDS = ["store", "namespace", "timeoutMs", "passwordEnv"] as const;

/** `POISON_CONFIG`, else `~/.config/poison/config.json`. */
export function configPath(env: Readonly<Record<string, string | undefined>>): string {
  if (env.POISON_CONFIG) return env.POISON_CONFIG;
  return join(env.HOME || homedir(), ".config", "poison", "config.json");
}

/** The config file, or an empty config when there is none. A malformed file is a usage error
 *  naming the file and what is wrong (never silently ignored: it may name a production store). */
export function readConfig(path: string): PoisonConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { contexts: {} };
    throw usageError(
      `cannot read the config file ${path}: ${(error as Error).message}`,
      "check its permissions, or point POISON_CONFIG at another file",
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw badConfig(path, `it is not valid JSON (${(error as Error).message})`);
  }
  return checkConfig(path, parsed);
}

function checkConfig(path: string, value: unknown): PoisonConfig {
  if (!isObject(value)) throw badConfig(path, "it must be a JSON object");
  const contexts = value.contexts ?? {};
  if (!isObject(contexts)) throw badConfig(path, `"contexts" must be an object of named contexts`);
  const config: PoisonConfig = { contexts: {} };
  for (const [name, entry] of Object.entries(contexts)) {
    config.contexts[name] = checkEntry(path, name, entry);
  }
  if (value.current !== undefined) {
    if (typeof value.current !== "string") throw badConfig(path, `"current" must be a string`);
    config.current = value.current;
  }
  for (const field of Object.keys(value)) {
    if (field !== "current" && field !== "contexts")
      throw badConfig(
        path,
        `unknown field ${JSON.stringify(field)} (the fields are "current" and "contexts")`,
      );
  }
  return config;
}

function checkEntry(path: string, name: string, entry: unknown): ContextEntry {
  const where = `context ${JSON.stringify(name)}`;
  if (!isObject(entry)) throw badConfig(path, `${where} must be an object`);
  for (const field of Object.keys(entry)) {
    if (!(CONTEXT_FIELDS as readonly string[]).includes(field)) {
      const guess = closest(field, CONTEXT_FIELDS);
      throw badConfig(
        path,
        `${where} has an unknown field ${JSON.stringify(field)}${guess ? ` (did you mean "${guess}"?)` : ""}; the fields are ${CONTEXT_FIELDS.join(", ")}`,
      );
    }
  }
  if (typeof entry.store !== "string" || entry.store === "")
    throw badConfig(path, `${where} needs "store": the store URL`);
  const checked: ContextEntry = { store: entry.store };
  if (entry.namespace !== undefined) {
    if (typeof entry.namespace !== "string")
      throw badConfig(path, `${where}: "namespace" must be a string`);
    checked.namespace = entry.namespace;
  }
  if (entry.timeoutMs !== undefined) {
    const ms = entry.timeoutMs;
    if (typeof ms !== "number" || !Number.isInteger(ms) || ms < 1 || ms > MAX_TIMER_MS)
      throw badConfig(
        path,
        `${where}: "timeoutMs" must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}`,
      );
    checked.timeoutMs = ms;
  }
  if (entry.passwordEnv !== undefined) {
    if (
      typeof entry.passwordEnv !== "string" ||
      !/^[A-Za-z_][A-Za-z0-9_]*$/.test(entry.passwordEnv)
    )
      throw badConfig(path, `${where}: "passwordEnv" must be the name of an environment variable`);
    checked.passwordEnv = entry.passwordEnv;
  }
  return checked;
}

function badConfig(path: string, what: string) {
  return usageError(
    `the config file ${path} is malformed: ${what}`,
    "correct it (see `poison context --help`), or point POISON_CONFIG at another file",
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Write the config atomically (a reader never sees half a file), readable by its owner only:
 *  it names production stores even when it holds no password. */
export function writeConfig(path: string, config: PoisonConfig): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${randomUUID()}.tmp`;
  const document: Record<string, unknown> = {};
  if (config.current !== undefined) document.current = config.current;
  document.contexts = config.contexts;
  try {
    writeFileSync(temporary, `${JSON.stringify(document, null, 2)}\n`, { mode: 0o600 });
    chmodSync(temporary, 0o600);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw usageError(
      `cannot write the config file ${path}: ${(error as Error).message}`,
      "check that its directory is writable, or point POISON_CONFIG at another file",
    );
  }
}

/** The context named `name`, or a usage error that lists the names (and a likely typo). */
export function contextNamed(
  config: PoisonConfig,
  name: string,
  path: string,
  source: string,
): ContextEntry {
  const entry = config.contexts[name];
  if (entry && Object.hasOwn(config.contexts, name)) return entry;
  const names = Object.keys(config.contexts);
  const guess = closest(name, names);
  throw usageError(
    `there is no context ${JSON.stringify(name)} (${source}) in ${path}`,
    guess
      ? `did you mean ${JSON.stringify(guess)}? \`poison context list\` shows them`
      : names.length > 0
        ? `the contexts are ${names.map((n) => JSON.stringify(n)).join(", ")}; \`poison context set ${name} --store URL\` adds one`
        : `add one with \`poison context set ${name} --store URL\``,
  );
}

/**
 * `url` with `password` as the password of its authority, percent-encoded. A URL that already
 * carries a password is refused: two sources for one secret is a mistake to point out.
 */
export function withPassword(url: string, password: string, context: string): string {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*@)?(.*)$/is.exec(url);
  if (!match) {
    throw usageError(
      `context ${JSON.stringify(context)} has passwordEnv, but its store ${JSON.stringify(url.split(":")[0])}: URL takes no password`,
      "remove passwordEnv from the context, or give it a scheme://user@host URL",
    );
  }
  const [, scheme, userinfo, rest] = match as unknown as [
    string,
    string,
    string | undefined,
    string,
  ];
  const user = userinfo ? userinfo.slice(0, -1) : "";
  if (user.includes(":")) {
    throw usageError(
      `context ${JSON.stringify(context)} has both a password in its store URL and passwordEnv`,
      "remove the password from the URL (`poison context set NAME --store URL`): passwordEnv supplies it",
    );
  }
  return `${scheme}${user}:${encodeURIComponent(password)}@${rest}`;
}
