/**
 * The `greptimedb` layout's settings, from `openPoisonStore` options and from the URL
 * (`?layout=greptimedb&storeKeyPrefix=P&table=T&schema=S&allowWrite=true`). A setting given in
 * both places must agree. The URL handed to the client library has these parameters removed (pg
 * and mysql2 would otherwise take them for their own).
 */
import { InvalidArgumentError } from "../core/errors.js";
import { redactUrl } from "../core/url.js";
import { MAX_NAMESPACE_BYTES, utf8Length } from "../core/validation.js";
import { DEFAULT_META_TABLE_NAME, POISON_KEY_PREFIX } from "./layout.js";

/** The options `openPoisonStore(url, options)` takes for this layout. */
export interface GreptimeLayoutOptions {
  /** `"greptimedb"`: read and clear the poison keys a GreptimeDB metasrv wrote, in its own
   *  metadata (etcd, or its PostgreSQL / MySQL table). Same as `?layout=greptimedb`. */
  layout?: "greptimedb";
  /** The metasrv's `store_key_prefix` (default empty). */
  storeKeyPrefix?: string;
  /** PostgreSQL / MySQL: the metasrv's `meta_table_name` (default `greptime_metakv`). */
  table?: string;
  /** PostgreSQL: the metasrv's `meta_schema_name` (default: none, found through `search_path`).
   *  MySQL: the database holding the table (default: the URL's). */
  schema?: string;
  /** Permit writes (clearing above all). Default false: the layout opens read-only. */
  allowWrite?: boolean;
}

export type GreptimeBackend = "etcd" | "postgres" | "mysql";

/** The settings a greptimedb store runs with. */
export interface GreptimeLayout {
  backend: GreptimeBackend;
  storeKeyPrefix: string;
  /** The metadata table (SQL backends): its name and schema (null: unqualified). */
  table: string;
  schema: string | null;
  allowWrite: boolean;
}

export interface ResolvedLayout {
  layout: GreptimeLayout;
  /** The URL for the client library: the layout's parameters removed. */
  clientUrl: string;
  /** Where the store is, safe to print and to pass back as `--store`: the redacted URL with the
   *  layout's parameters, except `allowWrite` (a printed command stays read-only until the
   *  operator adds `--allow-write`). */
  location: string;
}

const PARAMETERS = ["layout", "storeKeyPrefix", "table", "schema", "allowWrite"] as const;
type Parameter = (typeof PARAMETERS)[number];

const BACKENDS: Record<string, GreptimeBackend> = {
  "etcd:": "etcd",
  "etcds:": "etcd",
  "postgres:": "postgres",
  "postgresql:": "postgres",
  "mysql:": "mysql",
  "mariadb:": "mysql",
};

/** The longest store key prefix whose poison namespace still fits a namespace. */
export const MAX_STORE_KEY_PREFIX_BYTES = MAX_NAMESPACE_BYTES - POISON_KEY_PREFIX.length;
/** PostgreSQL truncates identifiers past 63 bytes; MySQL allows 64 characters. */
const MAX_IDENTIFIER_BYTES = 63;

/** Splits `url` at its query (after the user info, which may hold a raw `?` in a password). */
function splitQuery(url: string): { base: string; query: URLSearchParams } {
  const at = url.lastIndexOf("@");
  const question = url.indexOf("?", at + 1);
  if (question < 0) return { base: url, query: new URLSearchParams() };
  const hash = url.indexOf("#", question);
  const query = url.slice(question + 1, hash < 0 ? undefined : hash);
  return { base: url.slice(0, question), query: new URLSearchParams(query) };
}

/** True when the URL or the options ask for the greptimedb layout. */
export function wantsGreptimeLayout(url: string, options: GreptimeLayoutOptions): boolean {
  if (options.layout !== undefined) return true;
  return splitQuery(url).query.has("layout");
}

/**
 * The layout's settings for `url` (a URL of etcd, PostgreSQL or MySQL) and `options`. Throws
 * InvalidArgumentError for an unknown layout, another backend, malformed or contradicting
 * settings.
 */
export function resolveGreptimeLayout(url: string, options: GreptimeLayoutOptions): ResolvedLayout {
  const scheme = /^([a-z][a-z0-9+.-]*:)/i.exec(url)?.[1]?.toLowerCase() ?? "";
  const backend = BACKENDS[scheme];
  const { base, query } = splitQuery(url);
  const fromUrl = (name: Parameter): string | undefined => {
    const values = query.getAll(name);
    if (values.length > 1) throw new InvalidArgumentError("url", `names ${name} more than once`);
    return values[0];
  };
  const pick = <T>(name: Parameter, option: T | undefined, parse: (text: string) => T) => {
    const text = fromUrl(name);
    const inUrl = text === undefined ? undefined : parse(text);
    if (option !== undefined && inUrl !== undefined && option !== inUrl) {
      throw new InvalidArgumentError(
        `options.${name}`,
        `is ${JSON.stringify(option)} but the URL says ${JSON.stringify(inUrl)}; give it in one place`,
      );
    }
    return option ?? inUrl;
  };

  const layoutName = pick("layout", options.layout as string | undefined, (t) => t);
  if (layoutName !== "greptimedb") {
    throw new InvalidArgumentError(
      "options.layout",
      `unknown layout ${JSON.stringify(layoutName)}; the only layout is "greptimedb"`,
    );
  }
  if (!backend) {
    throw new InvalidArgumentError(
      "url",
      `the greptimedb layout reads GreptimeDB's metadata backends: etcd:// (etcds://), postgres:// or mysql:// URLs, not ${JSON.stringify(redactUrl(url))}`,
    );
  }
  const storeKeyPrefix = checkPrefix(
    pick("storeKeyPrefix", options.storeKeyPrefix, (t) => t) ?? "",
  );
  const table = pick("table", options.table, (t) => t);
  const schema = pick("schema", options.schema, (t) => t);
  const allowWrite = pick("allowWrite", options.allowWrite, parseBoolean) ?? false;
  if (typeof allowWrite !== "boolean") {
    throw new InvalidArgumentError("options.allowWrite", "must be true or false");
  }
  if (backend === "etcd") {
    if (table !== undefined || schema !== undefined) {
      throw new InvalidArgumentError(
        table !== undefined ? "options.table" : "options.schema",
        "applies to PostgreSQL and MySQL only: on etcd GreptimeDB's keys are not in a table",
      );
    }
    if (query.has("metaPrefix")) {
      throw new InvalidArgumentError(
        "url",
        "metaPrefix is set by the greptimedb layout (<storeKeyPrefix>/__poison_store/); remove it",
      );
    }
  }
  const layout: GreptimeLayout = {
    backend,
    storeKeyPrefix,
    table: checkIdentifier("options.table", table) ?? DEFAULT_META_TABLE_NAME,
    schema: checkIdentifier("options.schema", schema) ?? null,
    allowWrite,
  };

  for (const name of PARAMETERS) query.delete(name);
  const rest = query.toString();
  const clientUrl = rest ? `${base}?${rest}` : base;
  const shown: string[] = ["layout=greptimedb"];
  if (storeKeyPrefix !== "") shown.push(`storeKeyPrefix=${readable(storeKeyPrefix)}`);
  if (table !== undefined) shown.push(`table=${readable(layout.table)}`);
  if (layout.schema !== null) shown.push(`schema=${readable(layout.schema)}`);
  const location = `${redactUrl(clientUrl)}${rest ? "&" : "?"}${shown.join("&")}`;
  return { layout, clientUrl, location };
}

function parseBoolean(text: string): boolean {
  if (text === "true") return true;
  if (text === "false") return false;
  throw new InvalidArgumentError(
    "url",
    `allowWrite must be true or false, got ${JSON.stringify(text)}`,
  );
}

function checkPrefix(value: unknown): string {
  if (typeof value !== "string") {
    throw new InvalidArgumentError("options.storeKeyPrefix", "must be a string");
  }
  if (value.includes("\u0000") || !value.isWellFormed()) {
    throw new InvalidArgumentError(
      "options.storeKeyPrefix",
      "must be text without NUL or lone surrogates",
    );
  }
  if (utf8Length(value) > MAX_STORE_KEY_PREFIX_BYTES) {
    throw new InvalidArgumentError(
      "options.storeKeyPrefix",
      `must be at most ${MAX_STORE_KEY_PREFIX_BYTES} UTF-8 bytes`,
    );
  }
  return value;
}

/** A table or schema name. GreptimeDB quotes names without escaping them; we quote and escape,
 *  so any name without NUL is safe here. */
function checkIdentifier(argument: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidArgumentError(argument, "must be a non-empty string");
  }
  if (value.includes("\u0000") || !value.isWellFormed()) {
    throw new InvalidArgumentError(argument, "must be text without NUL or lone surrogates");
  }
  if (utf8Length(value) > MAX_IDENTIFIER_BYTES) {
    throw new InvalidArgumentError(argument, `must be at most ${MAX_IDENTIFIER_BYTES} UTF-8 bytes`);
  }
  return value;
}

/** A URL parameter value, escaped but with `/` left readable. */
function readable(value: string): string {
  return encodeURIComponent(value).replaceAll("%2F", "/");
}
