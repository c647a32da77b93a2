/**
 * Commands the library and the CLI print for an operator to copy: arguments quoted for a POSIX
 * shell, and the flags that name the store the command must go to.
 */
import { DEFAULT_NAMESPACE } from "./namespace.js";

/**
 * `value` as one shell word, pasted as is. Plain words stay bare; anything else is single-quoted;
 * text with control characters (an escape sequence or a carriage return inside a key) becomes
 * `$'…'` with every such character escaped, so printing it cannot move the cursor or hide part
 * of the command (bash, zsh and ksh read `$'…'`).
 */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
  if (!/[\u0000-\u001f\u007f-\u009f]/.test(value)) return `'${value.replaceAll("'", `'\\''`)}'`;
  let out = "";
  for (const char of value) {
    const code = char.codePointAt(0) as number;
    if (char === "\\" || char === "'") out += `\\${char}`;
    else if (char === "\n") out += "\\n";
    else if (char === "\t") out += "\\t";
    else if (char === "\r") out += "\\r";
    else if (code < 0x20 || (code >= 0x7f && code <= 0x9f))
      out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += char;
  }
  return `$'${out}'`;
}

/** Where a printed command must go. */
export interface StoreWhere {
  /** The store's location (`store.location`): a URL without password, or a description. */
  location?: string | undefined;
  namespace?: string | undefined;
}

/**
 * ` --store URL --namespace NS` for a printed `poison` command: `--store` whenever the location
 * is a URL (a store built from a driver has only a description, which no flag can name), and
 * `--namespace` when it is not the default.
 */
export function storeFlags(where: StoreWhere = {}): string {
  let flags = "";
  // A `memory:` store lives in one process: no command elsewhere can reach it.
  if (where.location && /^(?!memory:)[a-z][a-z0-9+.-]*:/i.test(where.location))
    flags += ` --store ${shellQuote(where.location)}`;
  if (where.namespace !== undefined && where.namespace !== DEFAULT_NAMESPACE)
    flags += ` --namespace ${shellQuote(where.namespace)}`;
  return flags;
}
