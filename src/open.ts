/**
 * `openPoisonStore(url)`: pick the driver by URL scheme. Drivers are small factories imported
 * here; each loads its client library (better-sqlite3, pg, …) only when first used, so importing
 * the package loads none of them.
 */
import type { PoisonStoreClient } from "./core/contract.js";
import type { PoisonDriver } from "./core/driver.js";
import { InvalidArgumentError } from "./core/errors.js";
import { createPoisonStore, type PoisonStoreOptions } from "./core/store.js";
import { redactUrl } from "./core/url.js";
import { etcdDriver } from "./drivers/etcd.js";
import { memoryDriver } from "./drivers/memory.js";
import { mysqlDriver } from "./drivers/mysql.js";
import { postgresDriver } from "./drivers/postgres.js";
import { redisDriver } from "./drivers/redis.js";
import { sqliteDriver } from "./drivers/sqlite.js";
import { openGreptimeStore } from "./greptimedb/open.js";
import { type GreptimeLayoutOptions, wantsGreptimeLayout } from "./greptimedb/options.js";

/** The store's options, and (with `layout: "greptimedb"`) the layout's: see docs/GREPTIMEDB.md. */
export type OpenPoisonStoreOptions = PoisonStoreOptions & GreptimeLayoutOptions;

/** Options that only the greptimedb layout takes. */
const LAYOUT_OPTIONS = ["storeKeyPrefix", "table", "schema", "allowWrite"] as const;

interface Scheme {
  /** How the URL looks, for error messages and docs. */
  form: string;
  open(url: string): PoisonDriver;
}

/** Every supported scheme. A new backend adds its line here, its driver under drivers/, and the
 *  rest of CONTRIBUTING.md's checklist (an export, a test registry entry, its server). */
const SCHEMES: Record<string, Scheme> = {
  "memory:": { form: "memory:[NAME]", open: (url) => memoryDriver(nameOf(url)) },
  "sqlite:": { form: "sqlite:PATH", open: (url) => sqliteDriver({ path: sqlitePath(url) }) },
  "postgres:": { form: "postgres://USER@HOST:PORT/DB", open: (url) => postgresDriver({ url }) },
  "postgresql:": { form: "postgresql://USER@HOST:PORT/DB", open: (url) => postgresDriver({ url }) },
  "mysql:": { form: "mysql://USER@HOST:PORT/DB", open: (url) => mysqlDriver({ url }) },
  "mariadb:": { form: "mariadb://USER@HOST:PORT/DB", open: (url) => mysqlDriver({ url }) },
  "etcd:": {
    form: "etcd://[user:password@]host:port[,host:port…]",
    open: (url) => etcdDriver({ url }),
  },
  "etcds:": {
    form: "etcds://[user:password@]host:port[,host:port…][?ca=PATH&cert=PATH&key=PATH]",
    open: (url) => etcdDriver({ url }),
  },
  "redis:": { form: "redis://host:port[/db][?keyPrefix=P]", open: (url) => redisDriver({ url }) },
  "rediss:": {
    form: "rediss://[user:password@]host:port[/db][?ca=PATH&cert=PATH&key=PATH]",
    open: (url) => redisDriver({ url }),
  },
};

/** The URL forms `openPoisonStore` accepts, for help texts. */
export function supportedUrlForms(): string[] {
  return Object.values(SCHEMES).map((scheme) => scheme.form);
}

/**
 * Open a store on the backend named by `url` (see the README's backend table), or on a driver
 * built by hand (for example `sqliteDriver({ path })`). Nothing is connected until the first call;
 * a backend that is down surfaces as BackendUnavailableError from that call.
 */
export function openPoisonStore(
  url: string | PoisonDriver,
  options: OpenPoisonStoreOptions = {},
): PoisonStoreClient {
  const given = options ?? {};
  if (typeof url === "string" && wantsGreptimeLayout(url, given)) {
    return openGreptimeStore(url, given);
  }
  const stray = [...LAYOUT_OPTIONS, "layout" as const].find((name) => given[name] !== undefined);
  if (stray !== undefined) {
    throw new InvalidArgumentError(
      `options.${stray}`,
      'applies only to the greptimedb layout: open a URL with layout: "greptimedb" (or ?layout=greptimedb)',
    );
  }
  if (typeof url !== "string") return createPoisonStore(url, options);
  const match = /^([a-z][a-z0-9+.-]*:)/i.exec(url);
  const scheme = match ? SCHEMES[(match[1] as string).toLowerCase()] : undefined;
  if (!scheme) {
    throw new InvalidArgumentError(
      "url",
      `unsupported backend URL ${JSON.stringify(redactUrl(url))}; supported: ${supportedUrlForms().join(", ")}`,
    );
  }
  return createPoisonStore(scheme.open(url), { location: redactUrl(url), ...options });
}

function nameOf(url: string): { name?: string } {
  const name = url.slice("memory:".length).replace(/^\/\//, "");
  return name ? { name } : {};
}

/** `sqlite:PATH` takes PATH verbatim; `sqlite:///abs/path` (URL form) is accepted too. */
function sqlitePath(url: string): string {
  let path = url.slice("sqlite:".length);
  if (path.startsWith("//")) {
    try {
      path = decodeURIComponent(path.slice(2).replace(/^localhost(?=\/)/, ""));
    } catch {
      throw new InvalidArgumentError(
        "url",
        `${JSON.stringify(url)} has a malformed %-escape; write the path plainly (sqlite:./poison.db) or escape % as %25`,
      );
    }
  }
  if (!path)
    throw new InvalidArgumentError(
      "url",
      "sqlite: needs a file path, for example sqlite:./poison.db",
    );
  return path;
}

export { redactUrl };
