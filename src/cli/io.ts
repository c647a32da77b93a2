/**
 * What the CLI talks to: injected streams and environment (so `runCli` is testable in-process),
 * colour decided once per stream, and a redaction step every byte of output goes through, so a
 * password inside a store URL is never printed, not even inside a driver's error message.
 */

import type { PoisonStoreClient } from "../core/contract.js";
import type { OpenPoisonStoreOptions } from "../open.js";

/** A stream the CLI writes to (process.stdout, process.stderr, or a test double). */
export interface OutputStream {
  write(chunk: string): boolean;
  isTTY?: boolean;
  once?(event: "drain", listener: () => void): unknown;
}

/** Where the confirmation prompt reads its answer (process.stdin, or a test double). */
export interface InputStream extends NodeJS.ReadableStream {
  isTTY?: boolean;
}

/** Everything `runCli` needs from the outside world. */
export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  stdin: InputStream;
  env: Readonly<Record<string, string | undefined>>;
  /** Where "now" comes from, for ages in tables. Default `() => new Date()`. */
  now?: () => Date;
  /** How a store URL is opened. Default `openPoisonStore`; tests inject failing stores. */
  openStore?: (url: string, options: OpenPoisonStoreOptions) => PoisonStoreClient;
}

/**
 * Colour is on for a terminal, off otherwise. `NO_COLOR` (any non-empty value) always turns it
 * off; `FORCE_COLOR` (non-empty, not `0`) turns it on for a pipe. NO_COLOR wins, so a user who
 * asked for no colour never gets it.
 */
export function colourEnabled(
  stream: OutputStream,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR && env.FORCE_COLOR !== "0") return true;
  return stream.isTTY === true;
}

export interface Palette {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  green(text: string): string;
  cyan(text: string): string;
}

const ansi = (open: number, close: number) => (text: string) =>
  text === "" ? text : `\u001b[${open}m${text}\u001b[${close}m`;

const COLOURS: Palette = {
  bold: ansi(1, 22),
  dim: ansi(2, 22),
  red: ansi(31, 39),
  yellow: ansi(33, 39),
  green: ansi(32, 39),
  cyan: ansi(36, 39),
};

const identity = (text: string) => text;
const PLAIN: Palette = {
  bold: identity,
  dim: identity,
  red: identity,
  yellow: identity,
  green: identity,
  cyan: identity,
};

export function palette(enabled: boolean): Palette {
  return enabled ? COLOURS : PLAIN;
}

/**
 * `scheme://user:PASSWORD@` anywhere in a text. The password runs to the last `@` before
 * whitespace or a quote, so a password that itself contains `@` is hidden whole (erring on the
 * side of hiding too much).
 */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"'`]*:)[^\s"'`]*@/gi;

/**
 * The password of a URL as it may have been meant, or none: up to the last `@` of the authority
 * (the URL parsers' reading), and up to the last `@` before whitespace (a password typed with a
 * raw `/`), each raw and percent-decoded. Over-reading only hides more.
 */
export function urlPasswords(url: string): string[] {
  const candidates = [
    /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*?:([^/?#]*)@[^/?#@]*(?:[/?#]|$)/is.exec(url)?.[1],
    /^[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]*:(\S*)@/i.exec(url)?.[1],
  ];
  const out = new Set<string>();
  for (const raw of candidates) {
    if (!raw) continue;
    out.add(raw);
    try {
      out.add(decodeURIComponent(raw));
    } catch {
      // Not valid percent-encoding: the raw form is all there is to hide.
    }
  }
  return [...out];
}

/**
 * Every way a secret may be spelt in output: as itself, percent-encoded (as URL parsers
 * re-encode a user's URL), and escaped once or twice for JSON or a quoted string (a message that
 * quotes the URL with JSON.stringify, inside a `--json` document). Backslashes and quotes are
 * what these escapes change; the forms that equal the secret collapse into one.
 */
export function secretForms(secret: string): string[] {
  const jsonEscaped = (text: string) => JSON.stringify(text).slice(1, -1);
  const quoted = (text: string) => text.replace(/[\\'"]/g, "\\$&");
  const bases = [secret, encodeURIComponent(secret)];
  const forms = new Set<string>();
  for (const base of bases) {
    for (const form of [base, jsonEscaped(base), jsonEscaped(jsonEscaped(base)), quoted(base)])
      forms.add(form);
  }
  // Longest first: a form that contains another is replaced whole.
  return [...forms].sort((a, b) => b.length - a.length);
}

/**
 * Build the function every output goes through. Beyond the URL pattern, the literal passwords
 * of the store URL in use are hidden too, in every spelling of {@link secretForms}, because a
 * driver may quote them outside a URL (for example "password authentication failed for
 * secret"). Very short passwords (under 3 characters) are only hidden in URL form: hiding every
 * `a` in the output would make it useless.
 */
export function redactor(secrets: readonly string[]): (text: string) => string {
  const literals = [
    ...new Set(secrets.filter((secret) => secret.length >= 3).flatMap(secretForms)),
  ].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text.replace(URL_PASSWORD, "$1***@");
    for (const secret of literals) out = out.replaceAll(secret, "***");
    return out;
  };
}

/** A redacting, colour-aware writer that respects back-pressure (a million-row list must not
 *  pile up in memory when stdout is a slow pipe). */
export class Printer {
  readonly colour: Palette;
  readonly #stream: OutputStream;
  readonly #redact: (text: string) => string;

  constructor(stream: OutputStream, redact: (text: string) => string, colour: boolean) {
    this.#stream = stream;
    this.#redact = redact;
    this.colour = palette(colour);
  }

  get isTTY(): boolean {
    return this.#stream.isTTY === true;
  }

  async write(text: string): Promise<void> {
    const flushed = this.#stream.write(this.#redact(text));
    const once = this.#stream.once?.bind(this.#stream);
    if (!flushed && once) await new Promise<void>((resolve) => once("drain", resolve));
  }

  line(text = ""): Promise<void> {
    return this.write(`${text}\n`);
  }

  /** One JSON document, pretty-printed, ending with a newline. */
  json(document: unknown): Promise<void> {
    return this.write(`${JSON.stringify(document, null, 2)}\n`);
  }
}
