/**
 * Who may call the admin service: bearer tokens with a name and a role, kept in a token file as
 * hashes only. Tokens are 256-bit random secrets, so one SHA-256 is the right hash: a slow
 * password hash protects guessable secrets and adds nothing here but latency on every request.
 * Comparison is constant-time over every entry, and failed attempts are slowed down per client.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmod, readFile, rename, writeFile } from "node:fs/promises";
import { InvalidArgumentError } from "../core/errors.js";

/** `viewer` reads; `operator` reads, clears and puts. */
export type AdminRole = "viewer" | "operator";
export const ADMIN_ROLES: readonly AdminRole[] = ["viewer", "operator"];

/** One entry of the token file. The secret itself is never stored. */
export interface AdminToken {
  /** Who holds it: the actor written to the audit log for its clears and puts. */
  name: string;
  role: AdminRole;
  /** `sha256:` and the hex SHA-256 of the secret (see {@link hashAdminToken}). */
  hash: string;
  /** ISO-8601, when it was created (informational). */
  createdAt?: string;
}

/** The token file: `{ "version": 1, "tokens": [AdminToken…] }`. */
export interface AdminTokenFile {
  version: 1;
  tokens: AdminToken[];
}

/** The caller, once authenticated. */
export interface AdminPrincipal {
  name: string;
  role: AdminRole;
}

const TOKEN_PREFIX = "pst_";
const HASH_PREFIX = "sha256:";
/** Names become audit actors and log fields: short, printable, no spaces. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;

/** A new secret: `pst_` and 32 random bytes in base64url (256 bits). Shown once, never stored. */
export function generateAdminToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

/** What the token file stores for `secret`. */
export function hashAdminToken(secret: string): string {
  return HASH_PREFIX + sha256(secret).toString("hex");
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Check a token file's text; `source` names it in errors. */
export function parseAdminTokens(text: string, source = "tokens file"): AdminToken[] {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(source, `is not valid JSON (${(error as Error).message})`);
  }
  const file = document as Partial<AdminTokenFile> | null;
  if (typeof file !== "object" || file === null || !Array.isArray(file.tokens)) {
    throw new InvalidArgumentError(source, 'must be an object { "version": 1, "tokens": [...] }');
  }
  if (file.version !== 1) {
    throw new InvalidArgumentError(
      source,
      `has version ${JSON.stringify(file.version)}; this poison-store reads version 1`,
    );
  }
  return checkAdminTokens(file.tokens, source);
}

/** Check a list of token entries (names unique, roles known, hashes well-formed). */
export function checkAdminTokens(tokens: readonly unknown[], source = "tokens"): AdminToken[] {
  const names = new Set<string>();
  return tokens.map((entry, i) => {
    const where = `${source}[${i}]`;
    const token = entry as Partial<AdminToken> | null;
    if (typeof token !== "object" || token === null)
      throw new InvalidArgumentError(where, "must be an object { name, role, hash }");
    if (typeof token.name !== "string" || !NAME_PATTERN.test(token.name))
      throw new InvalidArgumentError(
        `${where}.name`,
        "must be 1..64 characters of letters, digits and . _ @ + - (it is the audit actor)",
      );
    if (names.has(token.name))
      throw new InvalidArgumentError(`${where}.name`, `${JSON.stringify(token.name)} is repeated`);
    names.add(token.name);
    if (!ADMIN_ROLES.includes(token.role as AdminRole))
      throw new InvalidArgumentError(`${where}.role`, `must be one of ${ADMIN_ROLES.join(", ")}`);
    if (typeof token.hash !== "string" || !/^sha256:[0-9a-f]{64}$/.test(token.hash))
      throw new InvalidArgumentError(
        `${where}.hash`,
        'must be "sha256:" and 64 lowercase hex digits (never the token itself)',
      );
    const checked: AdminToken = {
      name: token.name,
      role: token.role as AdminRole,
      hash: token.hash,
    };
    if (typeof token.createdAt === "string") checked.createdAt = token.createdAt;
    return checked;
  });
}

/** Read and check a token file. A missing file is an error: no file never means "no auth". */
export async function readAdminTokens(path: string): Promise<AdminToken[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new InvalidArgumentError(
      "tokens file",
      `cannot read ${JSON.stringify(path)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); create one with \`poison serve --add-token NAME --role viewer --tokens ${path}\``,
    );
  }
  return parseAdminTokens(text, `tokens file ${path}`);
}

/**
 * Add a token named `name` to the file at `path` (created, mode 0600, if missing) and return its
 * secret: the only time it is ever shown. The file is replaced atomically (write, then rename).
 */
export async function addAdminToken(
  path: string,
  name: string,
  role: AdminRole,
  now: Date = new Date(),
): Promise<{ secret: string; token: AdminToken }> {
  const existing = await readTokenFileIfPresent(path);
  const secret = generateAdminToken();
  const [token] = checkAdminTokens(
    [{ name, role, hash: hashAdminToken(secret), createdAt: now.toISOString() }],
    "new token",
  ) as [AdminToken];
  if (existing.some((entry) => entry.name === name)) {
    throw new InvalidArgumentError(
      "name",
      `a token named ${JSON.stringify(name)} is already in ${path}; remove it first (--remove-token) or pick another name`,
    );
  }
  await writeTokenFile(path, [...existing, token]);
  return { secret, token };
}

/** Remove the token named `name`; false when there was none. */
export async function removeAdminToken(path: string, name: string): Promise<boolean> {
  const existing = await readTokenFileIfPresent(path);
  const kept = existing.filter((entry) => entry.name !== name);
  if (kept.length === existing.length) return false;
  await writeTokenFile(path, kept);
  return true;
}

async function readTokenFileIfPresent(path: string): Promise<AdminToken[]> {
  try {
    return parseAdminTokens(await readFile(path, "utf8"), `tokens file ${path}`);
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw error;
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

async function writeTokenFile(path: string, tokens: AdminToken[]): Promise<void> {
  const document: AdminTokenFile = { version: 1, tokens };
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(temporary, `${JSON.stringify(document, null, 2)}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}

/** Who a bearer token belongs to. */
export class TokenVerifier {
  readonly #entries: Array<{ principal: AdminPrincipal; digest: Buffer }>;

  constructor(tokens: readonly AdminToken[]) {
    this.#entries = checkAdminTokens(tokens).map((token) => ({
      principal: { name: token.name, role: token.role },
      digest: Buffer.from(token.hash.slice(HASH_PREFIX.length), "hex"),
    }));
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The principal whose secret this is, or null. Every entry is compared (constant time each,
   *  no early exit), so the time taken does not tell which entry, if any, matched. */
  verify(secret: string): AdminPrincipal | null {
    const digest = sha256(secret);
    let found: AdminPrincipal | null = null;
    for (const entry of this.#entries) {
      if (timingSafeEqual(digest, entry.digest) && found === null) found = entry.principal;
    }
    return found;
  }
}

/** The secret of an `Authorization: Bearer …` header; undefined when there is no header, null
 *  when there is one that is not a well-formed bearer credential. */
export function bearerSecret(header: string | null): string | null | undefined {
  if (header === null) return undefined;
  const match = /^Bearer[ ]+([A-Za-z0-9._~+/=-]{1,512})[ ]*$/i.exec(header);
  return match ? (match[1] as string) : null;
}

export interface AuthFailureDelay {
  /** Failed attempts from one client answered at once before slowing down. Default 3. */
  freeAttempts?: number;
  /** The first delay; each further failure doubles it. Default 250 ms. */
  baseMs?: number;
  /** The longest delay. Default 5000 ms. */
  maxMs?: number;
  /** A client's failures are forgotten this long after its last one. Default 60 s. */
  forgetAfterMs?: number;
}

/** Failed requests held back at once, beyond which new failures are answered 429 at once (a
 *  flood of bad tokens must not pile up open connections). */
const MAX_WAITING = 64;
/** Clients remembered; the oldest are forgotten first. */
const MAX_CLIENTS = 10_000;

/**
 * Slows down repeated failed authentication, per client address: the first few failures are
 * answered at once, then each waits twice as long as the one before, up to `maxMs`. A success
 * does not reset the count (a valid viewer token must not make guessing an operator's cheaper);
 * it is forgotten `forgetAfterMs` after the last failure.
 */
export class FailureThrottle {
  readonly #free: number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #forgetMs: number;
  readonly #clients = new Map<string, { failures: number; lastAt: number }>();
  #waiting = 0;

  constructor(options: AuthFailureDelay = {}) {
    this.#free = options.freeAttempts ?? 3;
    this.#baseMs = options.baseMs ?? 250;
    this.#maxMs = options.maxMs ?? 5000;
    this.#forgetMs = options.forgetAfterMs ?? 60_000;
  }

  /** Record a failure by `client` and wait as long as it deserves; false when too many
   *  failures are already waiting (answer 429 at once). */
  async failed(client: string, signal?: AbortSignal): Promise<boolean> {
    const now = Date.now();
    let entry = this.#clients.get(client);
    if (entry && now - entry.lastAt > this.#forgetMs) entry = undefined;
    const failures = (entry?.failures ?? 0) + 1;
    // Re-insert so that Map order is least-recently-failed first.
    this.#clients.delete(client);
    this.#clients.set(client, { failures, lastAt: now });
    if (this.#clients.size > MAX_CLIENTS) {
      const oldest = this.#clients.keys().next().value;
      if (oldest !== undefined) this.#clients.delete(oldest);
    }
    const over = failures - this.#free;
    if (over <= 0) return true;
    if (this.#waiting >= MAX_WAITING) return false;
    const delay = Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(over - 1, 30));
    this.#waiting++;
    try {
      await sleep(delay, signal);
    } finally {
      this.#waiting--;
    }
    return true;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
