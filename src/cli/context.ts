/** What every command receives, and the shape of a command. */
import { userInfo } from "node:os";
import type { PoisonStoreClient } from "../core/contract.js";
import { openPoisonStore, redactUrl } from "../open.js";
import { usageError } from "./errors.js";
import { type CliIo, type Printer, redactor } from "./io.js";

/** Where the store comes from when neither --store nor POISON_STORE_URL says. */
export const DEFAULT_STORE_URL = "sqlite:./poison.db";

/** One option of a command, as `util.parseArgs` takes it, plus its help line. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  /** Placeholder shown in help, for string options (`URL`, `N`…). */
  value?: string;
  help: string;
}

export type OptionValues = Readonly<Record<string, string | boolean | undefined>>;

export interface Command {
  name: string;
  /** One line, for `poison --help`. */
  summary: string;
  /** The synopsis, for example `poison show KEY`. */
  usage: string;
  /** A paragraph or two for `poison CMD --help`. */
  description: string;
  options: Record<string, OptionSpec>;
  /** How many positional arguments it takes. */
  positionals: { min: number; max: number };
  /** Each an example command line, optionally followed by `  # why`. */
  examples: string[];
  run(ctx: CommandContext): Promise<number>;
}

/** The options every command accepts. */
export interface GlobalOptions {
  /** The store URL as given (never print it: use `storeLabel`). */
  storeUrl: string;
  /** The store URL with any password hidden, safe to print. */
  storeLabel: string;
  namespace: string | undefined;
  timeoutMs: number | undefined;
  /** `--allow-write`: the store may write although it opens read-only (greptimedb layout). */
  allowWrite: boolean;
  json: boolean;
  verbose: boolean;
}

export class CommandContext {
  readonly command: Command;
  readonly args: readonly string[];
  readonly options: OptionValues;
  readonly global: GlobalOptions;
  readonly out: Printer;
  readonly err: Printer;
  readonly io: CliIo;

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

  flag(name: string): boolean {
    return this.options[name] === true;
  }

  /** A positive integer option, or undefined when absent; a usage error otherwise. */
  positiveInt(name: string): number | undefined {
    const text = this.string(name);
    if (text === undefined) return undefined;
    if (!/^[1-9][0-9]*$/.test(text) || !Number.isSafeInteger(Number(text))) {
      throw usageError(
        `--${name} must be a positive whole number, not ${JSON.stringify(text)}`,
        `for example --${name} 50`,
      );
    }
    return Number(text);
  }

  /** Who did it, for the audit log: --actor, else POISON_ACTOR, else the OS user. */
  actor(): string {
    const given = this.string("actor") ?? this.io.env.POISON_ACTOR;
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
      const message = error instanceof Error ? error.message : String(error);
      await this.err.line(`poison: warning: closing the store failed: ${message}`);
    }
    return result;
  }

  /** The fields every `--json` document starts with. */
  where(store: PoisonStoreClient): { store: string; backend: string; namespace: string } {
    return { store: this.global.storeLabel, backend: store.backend, namespace: store.namespace };
  }
}

/** The store URL as it may be printed: `redactUrl`, then the CLI's stricter pass (which also
 *  hides a password that contains `@`). */
export function labelOf(url: string): string {
  return redactor([])(redactUrl(url));
}
