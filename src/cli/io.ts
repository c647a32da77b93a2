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
  /** Where Ctrl-C arrives while a prompt waits (process, in the bin). Without it, a prompt
   *  cannot be interrupted other than by closing its input. */
  signals?: SignalSource;
}

/** The part of `process` a prompt listens to for Ctrl-C. */
export interface SignalSource {
  on(event: "SIGINT", listener: () => void): unknown;
  removeListener(event: "SIGINT", listener: () => void): unknown;
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

/** As {@link URL_PASSWORD}, but reading backslash escapes inside the password, so a URL quoted
 *  in a JSON-escaped message (`pa\"ss`, `s3c\\ret`) is hidden whole too. */
const ESCAPED_URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"'`\\]*:)(?:\\.|[^\s"'`\\])*@/gi;

/**
 * Every form in which `secret` may reach the output: as is, percent-encoded (as URLs write it,
 * in upper- and lower-case hex), and JSON-escaped once (a message quoting it with
 * JSON.stringify) and twice (a `--json` document carrying that message).
 */
export function secretForms(secret: string): string[] {
  const encoded = [secret, encodeURIComponent(secret)];
  try {
    const url = new URL("http://host");
    url.password = secret;
    encoded.push(url.password);
  } catch {
    // Not representable in a URL: the other forms remain.
  }
  for (const form of [...encoded])
    encoded.push(form.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()));
  const forms = new Set<string>();
  for (const form of encoded) {
    const once = JSON.stringify(form).slice(1, -1);
    forms.add(form).add(once).add(JSON.stringify(once).slice(1, -1));
  }
  // Longest first, so a longer form is never left half-replaced by a shorter one inside it.
  return [...forms].sort((a, b) => b.length - a.length);
}

/** The password of a URL, raw and percent-decoded, or none. */
export function urlPasswords(url: string): string[] {
  const match = /^[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]*:([^\s]*)@/i.exec(url);
  const raw = match?.[1];
  if (!raw) return [];
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // Not valid percent-encoding: the raw form is all there is to hide.
  }
  return [...new Set([raw, decoded])];
}

/**
 * Build the function every output goes through. Beyond the URL pattern, the literal passwords
 * of the store URL in use are hidden too, because a driver may quote them outside a URL
 * (for example "password authentication failed for secret"). Very short passwords (under 3
 * characters) are only hidden in URL form: hiding every `a` in the output would make it useless.
 */
export function redactor(secrets: readonly string[]): (text: string) => string {
  const literals = [
    ...new Set(secrets.filter((secret) => secret.length >= 3).flatMap(secretForms)),
  ].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text.replace(URL_PASSWORD, "$1***@").replace(ESCAPED_URL_PASSWORD, "$1***@");
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
