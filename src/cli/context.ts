/** What every command receives, and the shape of a command. */
import { existsSync } from "node:fs";
import { userInfo } from "node:os";
import { resolve } from "node:path";
import type { PoisonStoreClient } from "../core/contract.js";
import { DEFAULT_NAMESPACE } from "../core/namespace.js";
import { shellQuote, storeFlags } from "../core/shell.js";
import { checkKey, checkToken } from "../core/validation.js";
import { openPoisonStore, redactUrl } from "../open.js";
import type { OptionSpec } from "./args.js";
import {
  CliError,
  describe,
  type ErrorWhere,
  ExitCode,
  type FailureContext,
  usageError,
} from "./errors.js";
import { type CliIo, type Printer, redactor } from "./io.js";

export type { OptionSpec } from "./args.js";

/** Where the store comes from when neither a flag, the environment nor a context says. */
export const DEFAULT_STORE_URL = "sqlite:./poison.db";

export type OptionValues = Readonly<Record<string, string | boolean | string[] | undefined>>;

/** A command's option declarations, by name (without the leading `--`). */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/**
 * The names `O` declares with `type: T`; any name for declarations whose names are not known
 * (the plain `Command`, as the list of commands holds them).
 */
type NamesOf<O extends OptionSpecs, T extends OptionSpec["type"]> = string extends keyof O
  ? string
  : { [K in keyof O]: O[K] extends { type: T } ? K : never }[keyof O] & string;
/** A string option of `O`: `ctx.string(name)`, `ctx.strings(name)`, `ctx.token(name)`… */
export type StringOptionName<O extends OptionSpecs> = NamesOf<O, "string">;
/** A boolean option of `O`: `ctx.flag(name)`. */
export type BooleanOptionName<O extends OptionSpecs> = NamesOf<O, "boolean">;

/** An example command line and, optionally, why one would run it. */
export type Example = readonly [command: string, why?: string];

/**
 * A command. `O` is its option declarations: `run` receives a context whose `string`, `flag`…
 * accept only the names declared there with that type, so a misspelt or mistyped option does
 * not compile. Declare commands with {@link defineCommand}, which infers `O`.
 */
export interface Command<O extends OptionSpecs = OptionSpecs> {
  name: string;
  /** One line, for `poison --help`. */
  summary: string;
  /** The synopsis lines, each naming every option that form takes. */
  usage: readonly string[];
  /** A paragraph or two for `poison CMD --help`. */
  description: string;
  options: O;
  /** How many positional arguments it takes. */
  positionals: { min: number; max: number };
  examples: readonly Example[];
  /** `store`: works on a store, and takes the store options (--store, --context…);
   *  `local`: touches no store, and takes only --json, --verbose and --help. */
  scope: "store" | "local";
  /** Only reads the store: creates and changes nothing, so a failure leaves nothing unknown. */
  readOnly?: boolean;
  /** A better sentence than "unknown option" for an option this command refuses on purpose. */
  unknownOption?(name: string): { message: string; fix: string } | undefined;
  run(ctx: CommandContextOf<O>): Promise<number>;
}

/**
 * A command whose `run` is typed by its own option declarations (see {@link Command}), as the
 * list of commands holds it. The cast forgets `O` only where nothing can misuse it: the CLI
 * builds each command's context from that command's declarations (plus the store and output
 * options, which it reads itself), so `run` never sees a name it did not declare.
 */
export function defineCommand<const O extends OptionSpecs>(command: Command<O>): Command {
  return command as unknown as Command;
}

/** The settings every store command runs with, and where each came from. */
export interface GlobalOptions {
  /** The store URL as used, possibly with a password (never print it: use `storeLabel`). */
  storeUrl: string;
  /** The store URL with any password hidden, safe to print. */
  storeLabel: string;
  /** `--store`, `POISON_STORE_URL`, `context "prod"` or `default`. */
  storeSource: string;
  namespace: string | undefined;
  namespaceSource: string | undefined;
  timeoutMs: number | undefined;
  /** `--timeout 2000`, `timeoutMs 10000 of context "prod"`, or undefined for the default. */
  timeoutSource: string | undefined;
  /** The context in use, or null. */
  context: string | null;
  /** The namespace the context in use sets, if any. */
  contextNamespace: string | undefined;
  /** `--allow-write`: a store that opens read-only (the greptimedb layout) may be written. */
  allowWrite: boolean;
  json: boolean;
  verbose: boolean;
}

export class CommandContext {
  /** The command running (its name, scope…). */
  readonly command: Command;
  readonly args: readonly string[];
  readonly options: OptionValues;
  readonly global: GlobalOptions;
  readonly out: Printer;
  readonly err: Printer;
  readonly io: CliIo;
  /** Set by {@link checkStorage}: the store holds nothing of this library yet. */
  neverWritten = false;
  /** The store opened by {@link withStore}, once open; set only there. (Public: a private or
   *  protected member would make the class nominal, and {@link CommandContextOf} is this class
   *  seen structurally.) */
  opened: PoisonStoreClient | null = null;

  constructor(init: {
    command: Command;
    args: readonly string[];
    options: OptionValues;
    global: GlobalOptions;
    out: Printer;
    err: Printer;
    io: CliIo;
  }) {
    this.command = init.command;
    this.args = init.args;
    this.options = init.options;
    this.global = init.global;
    this.out = init.out;
    this.err = init.err;
    this.io = init.io;
  }

  now(): Date {
    return this.io.now ? this.io.now() : new Date();
  }

  string(name: string): string | undefined {
    const value = this.options[name];
    return typeof value === "string" ? value : undefined;
  }

  /** Every value of a repeatable option, in the order given. */
  strings(name: string): string[] {
    const value = this.options[name];
    if (Array.isArray(value)) return [...value];
    return typeof value === "string" ? [value] : [];
  }

  flag(name: string): boolean {
    return this.options[name] === true;
  }

  /** The KEY argument, checked as the library checks keys, before anything is read. */
  key(index = 0): string | undefined {
    const key = this.args[index];
    return key === undefined ? undefined : checkKey(key);
  }

  /** A token option (`--token`, `--expect-token`…), checked before anything is read. */
  token(name: string): string | undefined {
    const token = this.string(name);
    return token === undefined ? undefined : checkToken(token, `--${name}`);
  }

  /** A positive integer option, or undefined when absent; a usage error otherwise. */
  positiveInt(name: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const text = this.string(name);
    if (text === undefined) return undefined;
    if (!/^[1-9][0-9]*$/.test(text) || Number(text) > max) {
      throw usageError(
        `--${name} must be a positive whole number${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ""}, not ${JSON.stringify(text)}`,
        `for example --${name} 50`,
      );
    }
    return Number(text);
  }

  /** Who did it, for the audit log: --actor, else POISON_ACTOR, else the OS user. */
  actor(): string {
    // `actor` is declared by the commands that write; the others never receive it.
    const actor = this.options.actor;
    const given = (typeof actor === "string" ? actor : undefined) ?? this.io.env.POISON_ACTOR;
    if (given) return given;
    try {
      return userInfo().username;
    } catch {
      // No passwd entry (some containers): the environment is the next best witness.
      return this.io.env.USER || this.io.env.USERNAME || "unknown";
    }
  }

  /** Open the store, run `body`, and always close the store, whatever happens. */
  async withStore<T>(body: (store: PoisonStoreClient) => Promise<T>): Promise<T> {
    const options: { namespace?: string; timeoutMs?: number; allowWrite?: boolean } = {};
    if (this.global.namespace !== undefined) options.namespace = this.global.namespace;
    if (this.global.allowWrite) options.allowWrite = true;
    if (this.global.timeoutMs !== undefined) options.timeoutMs = this.global.timeoutMs;
    const store = (this.io.openStore ?? openPoisonStore)(this.global.storeUrl, options);
    this.opened = store;
    let result: T;
    try {
      result = await body(store);
    } catch (error) {
      // The command's own failure is what the operator needs; a failed close must not hide it.
      await store.close().catch(() => undefined);
      throw error;
    }
    try {
      await store.close();
    } catch (error) {
      // The work is done and reported; only the release failed (the process exit frees it).
      await this.err.line(`poison: warning: closing the store failed: ${describe(error)}`);
    }
    return result;
  }

  /**
   * Before reading (or clearing): whether the store holds this library's storage. A `sqlite:`
   * file that does not exist is an error naming the path (a typo must not read as "no poison
   * keys", and reading never creates the file); storage that was never written sets
   * {@link neverWritten}, which the answer then says. Creates nothing.
   */
  async checkStorage(store: PoisonStoreClient): Promise<void> {
    if (await store.exists()) return;
    const file = store.backend === "sqlite" ? sqliteFileOf(this.global.storeUrl) : null;
    if (file !== null && !existsSync(file)) {
      const absolute = resolve(file);
      throw new CliError(
        "STORE_NOT_FOUND",
        ExitCode.BackendUnavailable,
        `the SQLite file ${absolute} does not exist (store ${this.global.storeLabel}, from ${this.global.storeSource}); nothing was read, nothing was created`,
        `check the path in --store${absolute === file ? "" : ` (a relative path is read from the working directory, ${process.cwd()})`}; only a write such as \`poison put\` creates the file`,
        { path: absolute },
      );
    }
    this.neverWritten = true;
  }

  /** " (this store has never been written)" when {@link checkStorage} found no storage. */
  neverWrittenNote(): string {
    return this.neverWritten ? " (this store has never been written)" : "";
  }

  /** `in STORE (namespace NS)`, naming where a command looked. */
  searched(store: PoisonStoreClient): string {
    const context = this.global.context === null ? "" : `, context ${this.global.context}`;
    return `in ${this.global.storeLabel} (namespace ${store.namespace}${context})`;
  }

  /**
   * The flags a printed `poison` command needs to reach this same store: `--context NAME` when
   * the store came from a context, else `--store LOCATION`; `--namespace` when not the default.
   */
  storeFlags(store: PoisonStoreClient | null = this.opened): string {
    const namespace = store?.namespace ?? this.global.namespace ?? DEFAULT_NAMESPACE;
    const g = this.global;
    if (g.context !== null && g.storeSource.startsWith("context")) {
      const fromContext = g.contextNamespace ?? DEFAULT_NAMESPACE;
      return ` --context ${shellQuote(g.context)}${namespace === fromContext ? "" : ` --namespace ${shellQuote(namespace)}`}`;
    }
    return storeFlags({ location: store?.location ?? g.storeLabel, namespace });
  }

  /** `poison WORDS --store …`: a command line an operator can paste as is. The caller quotes
   *  what it takes from the user (keys, tokens) with `shellQuote`. */
  suggest(words: string): string {
    return `poison ${words}${this.storeFlags()}`;
  }

  /** The fields every `--json` document starts with. */
  where(store: PoisonStoreClient): {
    store: string;
    backend: string;
    namespace: string;
    context: string | null;
  } {
    return {
      store: this.global.storeLabel,
      backend: store.backend,
      namespace: store.namespace,
      context: this.global.context,
    };
  }

  /** What error mapping needs to know about this command. */
  failure(): FailureContext {
    return {
      command: this.command.name,
      readOnly: this.command.readOnly === true,
      timeoutSource: this.global.timeoutSource,
      storeFlags: this.command.scope === "store" ? this.storeFlags() : "",
    };
  }

  errorWhere(): ErrorWhere {
    if (this.command.scope !== "store") return { store: null, namespace: null, context: null };
    return {
      store: this.global.storeLabel,
      namespace: this.opened?.namespace ?? this.global.namespace ?? DEFAULT_NAMESPACE,
      context: this.global.context,
    };
  }
}

/** The option accessors of {@link CommandContext}, taking only the names `O` declares. */
export interface OptionAccessors<O extends OptionSpecs> {
  string(name: StringOptionName<O>): string | undefined;
  strings(name: StringOptionName<O>): string[];
  flag(name: BooleanOptionName<O>): boolean;
  token(name: StringOptionName<O>): string | undefined;
  positiveInt(name: StringOptionName<O>, max?: number): number | undefined;
}

/**
 * The context a command's `run` (and its own helpers) receive: the {@link CommandContext}, whose
 * option accessors take only the names `O` declares with the matching type. It is still a
 * `CommandContext` for the helpers several commands share (render.ts, listing.ts, prompt.ts).
 */
export type CommandContextOf<O extends OptionSpecs> = Omit<
  CommandContext,
  keyof OptionAccessors<O>
> &
  OptionAccessors<O>;

/** The store URL as it may be printed: `redactUrl`, then the CLI's stricter pass (which also
 *  hides a password that contains `@`). */
export function labelOf(url: string): string {
  return redactor([])(redactUrl(url));
}

/** The file of a `sqlite:` URL, read as `openPoisonStore` reads it; null for `:memory:`. */
export function sqliteFileOf(url: string): string | null {
  if (!/^sqlite:/i.test(url)) return null;
  let path = url.slice("sqlite:".length);
  if (path.startsWith("//")) {
    try {
      path = decodeURIComponent(path.slice(2).replace(/^localhost(?=\/)/, ""));
    } catch {
      return null;
    }
  }
  return path === "" || path === ":memory:" ? null : path;
}
