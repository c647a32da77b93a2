/**
 * `notify(store, { webhooks })` (SPEC §7, Observability): a POST to each webhook when a key
 * becomes poisoned, goes stale, or is force-cleared, with a Slack-compatible `text` line and the
 * structured record.
 *
 * Where the news comes from: `store.watch()` for what changes (poisoned, force-cleared), and a
 * periodic bounded check of the keys for what only time changes (a holder that stops sending
 * heartbeats goes stale without any write) and for whatever the watch could not vouch for (a
 * `resync`, a restart of the notifier).
 *
 * At most once per key and state change: each notification has an id derived from the record
 * (kind, key, token, creation time; for staleness also the last heartbeat), a delivery is
 * recorded per webhook once the webhook answered 2xx, and with `stateFile` the record survives
 * restarts (written atomically after each delivery). The id is sent as the `Idempotency-Key`
 * header too, for a receiver that deduplicates the one case left: a crash between the webhook's
 * answer and the state file's write.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { PoisonStoreClient } from "../core/contract.js";
import { InvalidArgumentError, type PoisonStoreError } from "../core/errors.js";
import { describeLiveness, livenessOf } from "../core/liveness.js";
import type { AuditEntry, PoisonRecord } from "../core/records.js";
import { type BackoffOptions, retry, sleep } from "../core/retry.js";
import { shellQuote, storeFlags } from "../core/shell.js";
import { checkDuration, checkObject, checkString, MAX_PAGE_SIZE } from "../core/validation.js";
import type { ChangeEvent, WatchOptions } from "../core/watch.js";
import { parseWebhook, type Webhook, webhookRedactor } from "./webhook.js";

/** What a notification is about. */
export type NotificationKind = "poisoned" | "stale" | "force-cleared";

/** The JSON body POSTed to each webhook. */
export interface NotificationPayload {
  /** One line for people (Slack's incoming webhooks show it; Slack mrkdwn, `&<>` escaped). */
  text: string;
  kind: NotificationKind;
  key: string;
  /** The same for every webhook and every retry; also the `Idempotency-Key` header. */
  id: string;
  /** ISO-8601 UTC: when it happened (poisoned: the recorded error's time; stale: when it was
   *  found stale; force-cleared: the forced delete's time). */
  at: string;
  /** The store (`store.location`: no password) and namespace. */
  store: string;
  namespace: string;
  /** The record: as it stands (poisoned, stale) or as it was removed (force-cleared). */
  record: PoisonRecord | null;
  /** force-cleared: who and why, from the audit log (null when it could not be read). */
  clearedBy: { actor: string; reason: string; evenIfAlive: boolean } | null;
  /** The command that shows the key (or its history, once cleared). */
  command: string;
}

/** What the notifier reports (for logs). Every text in it is redacted: no webhook secret. */
export type NotifierEvent =
  | { type: "sent"; kind: NotificationKind; key: string; webhook: string; attempts: number }
  | {
      type: "retrying";
      kind: NotificationKind;
      key: string;
      webhook: string;
      attempt: number;
      delayMs: number;
      error: string;
    }
  | { type: "failed"; kind: NotificationKind; key: string; webhook: string; error: string }
  | { type: "error"; error: string };

export interface NotifyOptions {
  /** http(s) URLs; each gets every notification. Never printed: shown as their origin. */
  webhooks: readonly string[];
  /** A JSON file recording what was delivered, so a restart does not send it again. Without it
   *  the record is kept in memory only. One notifier per file. */
  stateFile?: string;
  /** Only keys under this prefix. */
  prefix?: string;
  /** How often the keys are checked (staleness, and what the watch missed), in ms. Default
   *  30000. Staleness is reported at most this long after it happens. */
  checkIntervalMs?: number;
  /** Keys read per check at most (pages of 1000). Default 10,000. */
  maxKeys?: number;
  /** The watch's polling fallback, for stores whose driver has no native change feed. */
  watch?: Pick<WatchOptions, "pollIntervalMs" | "maxKeys">;
  /** Retries of one delivery (network errors, timeouts, 408, 429, 5xx); other answers are not
   *  retried. Default 8 attempts, 1 s doubling to 60 s, with jitter. */
  retry?: Partial<BackoffOptions>;
  /** One POST's time limit, in ms. Default 10000. */
  timeoutMs?: number;
  /** Ends the notifier (as `close()` does). */
  signal?: AbortSignal;
  /** Called with what happened, for logs. */
  onEvent?: (event: NotifierEvent) => void;
  /** Where "now" comes from (staleness). Default `() => new Date()`. */
  now?: () => Date;
}

/** A running notifier. */
export interface Notifier {
  /** Check the keys now (what the periodic check does). */
  check(): Promise<void>;
  /** Resolves when nothing is queued or being delivered. */
  idle(): Promise<void>;
  /** Stop: the watch, the checks, and deliveries still queued or retrying (they are not recorded
   *  as sent, so a restart with the same state file delivers them). */
  close(): Promise<void>;
}

export const DEFAULT_NOTIFY_CHECK_INTERVAL_MS = 30_000;
export const DEFAULT_NOTIFY_MAX_KEYS = 10_000;
export const DEFAULT_NOTIFY_RETRY: BackoffOptions = {
  maxAttempts: 8,
  minDelayMs: 1000,
  maxDelayMs: 60_000,
};
const DEFAULT_NOTIFY_TIMEOUT_MS = 10_000;
/** A notification whose delivery gave up is not tried again for this long. */
const PAUSE_AFTER_GIVING_UP_MS = 15 * 60_000;
/** Notifications queued per webhook at most; past it, new ones are dropped (and reported). */
const MAX_QUEUED = 1000;
/** Delivered force-clear ids are remembered this long (nothing can resend them after). */
const FORCE_CLEARED_RETENTION_MS = 7 * 24 * 3600_000;
/** After a `resync`, a check runs no sooner than this after the previous one. */
const MIN_RESYNC_CHECK_GAP_MS = 5000;
const STATE_VERSION = 1;

interface StateEntry {
  kind: NotificationKind;
  /** When it was delivered. */
  at: string;
}

interface StateFile {
  version: number;
  /** Per webhook id, the notifications delivered. */
  sent: Record<string, Record<string, StateEntry>>;
}

interface Notification {
  payload: NotificationPayload;
}

/** Start notifying. Rejects with InvalidArgumentError for bad options (a webhook that is not an
 *  http(s) URL). */
export async function notify(store: PoisonStoreClient, options: NotifyOptions): Promise<Notifier> {
  const notifier = new WebhookNotifier(store, options);
  await notifier.start();
  return notifier;
}

class WebhookNotifier implements Notifier {
  readonly #store: PoisonStoreClient;
  readonly #webhooks: Webhook[];
  readonly #redact: (text: string) => string;
  readonly #stateFile: string | undefined;
  readonly #prefix: string;
  readonly #checkIntervalMs: number;
  readonly #maxKeys: number;
  readonly #watchOptions: Pick<WatchOptions, "pollIntervalMs" | "maxKeys">;
  readonly #retry: BackoffOptions;
  readonly #timeoutMs: number;
  readonly #onEvent: ((event: NotifierEvent) => void) | undefined;
  readonly #now: () => Date;
  readonly #stop = new AbortController();
  #state: StateFile = { version: STATE_VERSION, sent: {} };
  #saving: Promise<void> = Promise.resolve();
  /** Per webhook: ids queued or being delivered. */
  readonly #pending = new Map<string, Set<string>>();
  /** Per webhook: the delivery chain (one at a time, in order). */
  readonly #chains = new Map<string, Promise<void>>();
  /** `webhook id + notification id` → when delivery gave up. */
  readonly #gaveUp = new Map<string, number>();
  #checking: Promise<void> | null = null;
  #lastCheck = Number.NEGATIVE_INFINITY;
  #checkTimer: NodeJS.Timeout | null = null;
  #watching: Promise<void> = Promise.resolve();

  constructor(store: PoisonStoreClient, options: NotifyOptions) {
    if (typeof store !== "object" || store === null || typeof store.watch !== "function")
      throw new InvalidArgumentError("store", "must be a store from openPoisonStore()");
    const checked = checkObject("options", options, false) ?? {};
    const urls = checked.webhooks;
    if (!Array.isArray(urls) || urls.length === 0)
      throw new InvalidArgumentError("options.webhooks", "must be a non-empty array of URLs");
    this.#store = store;
    this.#webhooks = urls.map((url, i) => parseWebhook(url, `options.webhooks[${i}]`));
    this.#redact = webhookRedactor([
      ...(urls as string[]),
      ...this.#webhooks.flatMap((w) => [w.url, w.authorization ?? ""]),
    ]);
    this.#stateFile =
      checked.stateFile === undefined
        ? undefined
        : checkString("options.stateFile", checked.stateFile, 4096);
    this.#prefix =
      checked.prefix === undefined ? "" : checkString("options.prefix", checked.prefix, 1024, true);
    this.#checkIntervalMs = checkDuration(
      "options.checkIntervalMs",
      checked.checkIntervalMs,
      DEFAULT_NOTIFY_CHECK_INTERVAL_MS,
    );
    const maxKeys = checked.maxKeys ?? DEFAULT_NOTIFY_MAX_KEYS;
    if (typeof maxKeys !== "number" || !Number.isInteger(maxKeys) || maxKeys < 1)
      throw new InvalidArgumentError("options.maxKeys", "must be a positive whole number");
    this.#maxKeys = maxKeys;
    this.#watchOptions = (checkObject("options.watch", checked.watch, true) ?? {}) as Pick<
      WatchOptions,
      "pollIntervalMs" | "maxKeys"
    >;
    const retryOptions = checkObject("options.retry", checked.retry, true) ?? {};
    this.#retry = {
      maxAttempts: positiveInt(
        "options.retry.maxAttempts",
        retryOptions.maxAttempts,
        DEFAULT_NOTIFY_RETRY.maxAttempts,
      ),
      minDelayMs: checkDuration(
        "options.retry.minDelayMs",
        retryOptions.minDelayMs,
        DEFAULT_NOTIFY_RETRY.minDelayMs,
        { allowZero: true },
      ),
      maxDelayMs: checkDuration(
        "options.retry.maxDelayMs",
        retryOptions.maxDelayMs,
        DEFAULT_NOTIFY_RETRY.maxDelayMs,
        { allowZero: true },
      ),
    };
    this.#timeoutMs = checkDuration(
      "options.timeoutMs",
      checked.timeoutMs,
      DEFAULT_NOTIFY_TIMEOUT_MS,
    );
    this.#onEvent =
      typeof checked.onEvent === "function"
        ? (checked.onEvent as (event: NotifierEvent) => void)
        : undefined;
    this.#now = typeof checked.now === "function" ? (checked.now as () => Date) : () => new Date();
    const signal = checked.signal;
    if (signal !== undefined) {
      if (!(signal instanceof AbortSignal))
        throw new InvalidArgumentError("options.signal", "must be an AbortSignal");
      if (signal.aborted) this.#stop.abort();
      else signal.addEventListener("abort", () => void this.close(), { once: true });
    }
  }

  async start(): Promise<void> {
    if (this.#stateFile !== undefined) this.#state = await this.#load(this.#stateFile);
    if (this.#stop.signal.aborted) return;
    this.#watching = this.#watchLoop();
    this.#scheduleCheck(0);
  }

  check(): Promise<void> {
    this.#checking ??= this.#check().finally(() => {
      this.#checking = null;
    });
    return this.#checking;
  }

  async idle(): Promise<void> {
    for (;;) {
      const chains = [...this.#chains.values()];
      await Promise.all(chains);
      if ([...this.#chains.values()].every((chain, i) => chain === chains[i])) return;
    }
  }

  async close(): Promise<void> {
    this.#stop.abort();
    if (this.#checkTimer) clearTimeout(this.#checkTimer);
    this.#checkTimer = null;
    await this.#watching;
    await this.#checking?.catch(() => undefined);
    await Promise.all(this.#chains.values());
    await this.#saving;
  }

  // ---- sources ---------------------------------------------------------------------------

  async #watchLoop(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      try {
        const changes = this.#store.watch({
          prefix: this.#prefix,
          signal: this.#stop.signal,
          ...this.#watchOptions,
          onError: (error: PoisonStoreError) => this.#report(error),
        });
        for await (const change of changes) await this.#onChange(change);
      } catch (error) {
        this.#report(error);
      }
      // The watch ended by itself (a store error it does not retry): the checks go on; try
      // the watch again after one interval.
      if (!(await sleep(this.#checkIntervalMs, this.#stop.signal))) return;
    }
  }

  async #onChange(change: ChangeEvent): Promise<void> {
    if (change.type === "resync") {
      const gap = this.#lastCheck + MIN_RESYNC_CHECK_GAP_MS - performance.now();
      this.#scheduleCheck(Math.max(0, gap));
      return;
    }
    if (change.type === "force-deleted") {
      await this.#enqueue(await this.#forceCleared(change));
      return;
    }
    if (change.type !== "deleted" && change.record?.state === "poisoned")
      await this.#enqueue(this.#poisoned(change.record));
  }

  #scheduleCheck(delayMs: number): void {
    if (this.#stop.signal.aborted) return;
    if (this.#checkTimer) clearTimeout(this.#checkTimer);
    this.#checkTimer = setTimeout(() => {
      this.#checkTimer = null;
      void this.check().finally(() => this.#scheduleCheck(this.#checkIntervalMs));
    }, delayMs);
  }

  /** One bounded pass over the keys: poisoned and stale ones not yet notified are sent, and
   *  (when the pass saw every key) the record of delivered ones that no longer apply is pruned. */
  async #check(): Promise<void> {
    this.#lastCheck = performance.now();
    const now = this.#now();
    const current = new Set<string>();
    let read = 0;
    let cursor: string | null = null;
    let complete = true;
    try {
      do {
        const limit = Math.min(MAX_PAGE_SIZE, this.#maxKeys - read);
        if (limit <= 0) {
          complete = false;
          break;
        }
        const page = await this.#store.listPoisons({ prefix: this.#prefix, limit, cursor });
        for (const record of page.records) {
          read++;
          let notification: Notification | null = null;
          if (record.state === "poisoned") notification = this.#poisoned(record);
          else if (livenessOf(record, now).stale) notification = this.#stale(record, now);
          if (notification) {
            current.add(notification.payload.id);
            await this.#enqueue(notification);
          }
        }
        cursor = page.cursor;
      } while (cursor !== null && !this.#stop.signal.aborted);
    } catch (error) {
      this.#report(error);
      return;
    }
    if (complete && !this.#stop.signal.aborted) this.#prune(current, now);
  }

  // ---- notifications ---------------------------------------------------------------------

  #poisoned(record: PoisonRecord): Notification {
    const at = record.error?.at ?? record.updatedAt;
    const what = describeHolder(record);
    const why = record.error
      ? `: ${slack(`${record.error.name}: ${firstLine(record.error.message)}`)}`
      : "";
    const command = `poison show ${shellQuote(record.key)}${this.#flags()}`;
    return this.#notification("poisoned", record.key, identity(record), at, record, null, {
      text: `:rotating_light: poison key \`${slack(record.key)}\` is *poisoned*: ${what} failed${why}. Repair the resource, then clear the key. Inspect: \`${slack(command)}\``,
      command,
    });
  }

  #stale(record: PoisonRecord, now: Date): Notification {
    const command = `poison show ${shellQuote(record.key)}${this.#flags()}`;
    return this.#notification(
      "stale",
      record.key,
      `${identity(record)}\u0000${record.heartbeatAt ?? ""}`,
      now.toISOString(),
      record,
      null,
      {
        text: `:warning: poison key \`${slack(record.key)}\` is *stale*: ${describeHolder(record)} is in progress but its holder is not live (${slack(describeLiveness(record, now))}); it may have died half-way. Inspect: \`${slack(command)}\``,
        command,
      },
    );
  }

  async #forceCleared(change: ChangeEvent): Promise<Notification> {
    const record = change.record ?? null;
    const entry = await this.#auditEntryOf(change.key, record);
    const by = entry ? `by ${slack(entry.actor)}: "${slack(firstLine(entry.reason))}"` : "";
    const was = record
      ? ` (it was ${record.state}: ${describeHolder(record)}${entry?.evenIfAlive ? "; its holder was live" : ""})`
      : "";
    const command = `poison history ${shellQuote(change.key)}${this.#flags()}`;
    return this.#notification(
      "force-cleared",
      change.key,
      record ? identity(record) : `${change.key}\u0000${change.at}`,
      entry?.at ?? change.at,
      record,
      entry
        ? { actor: entry.actor, reason: entry.reason, evenIfAlive: entry.evenIfAlive === true }
        : null,
      {
        text: `:white_check_mark: poison key \`${slack(change.key)}\` was *force-cleared*${by ? ` ${by}` : ""}${was}. History: \`${slack(command)}\``,
        command,
      },
    );
  }

  /** The audit entry of a forced delete of `record`, or null (best effort: one read). */
  async #auditEntryOf(key: string, record: PoisonRecord | null): Promise<AuditEntry | null> {
    try {
      const { entries } = await this.#store.auditLog({ key, limit: 20 });
      const forced = entries.filter((entry) => entry.action === "force-delete");
      return (
        forced.find(
          (entry) =>
            record !== null &&
            entry.record?.token === record.token &&
            entry.record.createdAt === record.createdAt,
        ) ??
        forced[0] ??
        null
      );
    } catch (error) {
      this.#report(error);
      return null;
    }
  }

  #notification(
    kind: NotificationKind,
    key: string,
    identityText: string,
    at: string,
    record: PoisonRecord | null,
    clearedBy: NotificationPayload["clearedBy"],
    words: { text: string; command: string },
  ): Notification {
    const id = createHash("sha256")
      .update(`${kind}\u0000${this.#store.namespace}\u0000${identityText}`)
      .digest("hex")
      .slice(0, 32);
    return {
      payload: {
        text: words.text,
        kind,
        key,
        id,
        at,
        store: this.#store.location,
        namespace: this.#store.namespace,
        record,
        clearedBy,
        command: words.command,
      },
    };
  }

  #flags(): string {
    return storeFlags({ location: this.#store.location, namespace: this.#store.namespace });
  }

  // ---- delivery --------------------------------------------------------------------------

  async #enqueue(notification: Notification): Promise<void> {
    const { id } = notification.payload;
    for (const webhook of this.#webhooks) {
      if (this.#stop.signal.aborted) return;
      if (this.#state.sent[webhook.id]?.[id]) continue;
      const gaveUp = this.#gaveUp.get(`${webhook.id}:${id}`);
      if (gaveUp !== undefined && performance.now() - gaveUp < PAUSE_AFTER_GIVING_UP_MS) continue;
      let pending = this.#pending.get(webhook.id);
      if (!pending) {
        pending = new Set();
        this.#pending.set(webhook.id, pending);
      }
      if (pending.has(id)) continue;
      if (pending.size >= MAX_QUEUED) {
        this.#emit({
          type: "failed",
          kind: notification.payload.kind,
          key: notification.payload.key,
          webhook: webhook.label,
          error: `${MAX_QUEUED} notifications are already queued for this webhook; dropped (a later check sends it if it still applies)`,
        });
        continue;
      }
      pending.add(id);
      const queue = pending;
      const previous = this.#chains.get(webhook.id) ?? Promise.resolve();
      const chain = previous
        .then(() => this.#deliver(webhook, notification))
        .finally(() => queue.delete(id));
      this.#chains.set(webhook.id, chain);
    }
  }

  async #deliver(webhook: Webhook, notification: Notification): Promise<void> {
    const { payload } = notification;
    if (this.#stop.signal.aborted || this.#state.sent[webhook.id]?.[payload.id]) return;
    const body = JSON.stringify(payload);
    let attempts = 0;
    try {
      await retry(
        async () => {
          attempts++;
          await this.#post(webhook, body, payload.id);
        },
        {
          ...this.#retry,
          signal: this.#stop.signal,
          shouldRetry: (error) => !this.#stop.signal.aborted && isRetryable(error),
          onRetry: (error, attempt, delayMs) =>
            this.#emit({
              type: "retrying",
              kind: payload.kind,
              key: payload.key,
              webhook: webhook.label,
              attempt,
              delayMs,
              error: this.#describe(error),
            }),
        },
      );
    } catch (error) {
      if (this.#stop.signal.aborted) return;
      this.#gaveUp.set(`${webhook.id}:${payload.id}`, performance.now());
      this.#emit({
        type: "failed",
        kind: payload.kind,
        key: payload.key,
        webhook: webhook.label,
        error: this.#describe(error),
      });
      return;
    }
    const sent = this.#state.sent[webhook.id] ?? {};
    this.#state.sent[webhook.id] = sent;
    sent[payload.id] = { kind: payload.kind, at: this.#now().toISOString() };
    await this.#save();
    this.#emit({
      type: "sent",
      kind: payload.kind,
      key: payload.key,
      webhook: webhook.label,
      attempts,
    });
  }

  async #post(webhook: Webhook, body: string, id: string): Promise<void> {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new WebhookTimeoutError(this.#timeoutMs)),
      this.#timeoutMs,
    );
    const onStop = () => controller.abort(this.#stop.signal.reason);
    this.#stop.signal.addEventListener("abort", onStop, { once: true });
    try {
      const response = await fetch(webhook.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "idempotency-key": id,
          "user-agent": "poison-store-notifier",
          ...(webhook.authorization ? { authorization: webhook.authorization } : {}),
        },
        body,
        signal: controller.signal,
        redirect: "error",
      });
      const text = await response.text().catch(() => "");
      if (!response.ok) throw new WebhookStatusError(response.status, text.slice(0, 200));
    } catch (error) {
      if (controller.signal.reason instanceof WebhookTimeoutError) throw controller.signal.reason;
      throw error;
    } finally {
      clearTimeout(timer);
      this.#stop.signal.removeEventListener("abort", onStop);
    }
  }

  // ---- the state file --------------------------------------------------------------------

  async #load(file: string): Promise<StateFile> {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT")
        return { version: STATE_VERSION, sent: {} };
      throw new InvalidArgumentError(
        "options.stateFile",
        `cannot be read (${(error as Error).message})`,
      );
    }
    try {
      const parsed = JSON.parse(text) as StateFile;
      if (parsed.version !== STATE_VERSION || typeof parsed.sent !== "object" || !parsed.sent)
        throw new Error(`not a version ${STATE_VERSION} state file`);
      return parsed;
    } catch (error) {
      // Starting over may repeat notifications; refusing would send none at all.
      this.#emit({
        type: "error",
        error: `the state file ${file} is not valid (${(error as Error).message}); starting with an empty one: notifications already sent may be sent again`,
      });
      return { version: STATE_VERSION, sent: {} };
    }
  }

  /** Write the state file (atomically: a temporary file renamed over it), one write at a time. */
  #save(): Promise<void> {
    const file = this.#stateFile;
    if (file === undefined) return Promise.resolve();
    this.#saving = this.#saving.then(async () => {
      try {
        await mkdir(dirname(file), { recursive: true });
        const temporary = `${file}.${process.pid}.tmp`;
        await writeFile(temporary, `${JSON.stringify(this.#state)}\n`, { mode: 0o600 });
        await rename(temporary, file);
      } catch (error) {
        this.#report(error);
      }
    });
    return this.#saving;
  }

  /** Forget deliveries that can no longer repeat: poisoned and stale ids whose record no longer
   *  is so (a check that saw every key), and force-clear ids past their retention. */
  #prune(current: ReadonlySet<string>, now: Date): void {
    let changed = false;
    const horizon = now.getTime() - FORCE_CLEARED_RETENTION_MS;
    for (const sent of Object.values(this.#state.sent)) {
      for (const [id, entry] of Object.entries(sent)) {
        // Only what was delivered before this check began: a delivery during the check may
        // be of a key the listing had already passed.
        const expired =
          entry.kind === "force-cleared"
            ? Date.parse(entry.at) < horizon
            : !current.has(id) && Date.parse(entry.at) < now.getTime();
        if (expired) {
          delete sent[id];
          changed = true;
        }
      }
    }
    if (changed) void this.#save();
  }

  // ---- reporting -------------------------------------------------------------------------

  #report(error: unknown): void {
    if (this.#stop.signal.aborted) return;
    this.#emit({ type: "error", error: this.#describe(error) });
  }

  #describe(error: unknown): string {
    const message = error instanceof Error ? error.message : String(error);
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : "";
    return this.#redact(cause && !message.includes(cause) ? `${message} (${cause})` : message);
  }

  #emit(event: NotifierEvent): void {
    try {
      this.#onEvent?.(event);
    } catch {
      // A logger must not stop the notifier.
    }
  }
}

class WebhookStatusError extends Error {
  readonly status: number;
  constructor(status: number, body: string) {
    super(`the webhook answered HTTP ${status}${body ? `: ${body.replace(/\s+/g, " ")}` : ""}`);
    this.status = status;
  }
}

class WebhookTimeoutError extends Error {
  constructor(ms: number) {
    super(`the webhook did not answer within ${ms} ms`);
  }
}

/** Worth another attempt: the network, a timeout, or an answer that says "later". */
function isRetryable(error: unknown): boolean {
  if (error instanceof WebhookStatusError)
    return error.status >= 500 || error.status === 429 || error.status === 408;
  return true;
}

/** Which incarnation of a key: a key cleared and put again is another one. */
function identity(record: PoisonRecord): string {
  return `${record.key}\u0000${record.token}\u0000${record.createdAt}`;
}

/** "alter-table (token t, owner o)" */
function describeHolder(record: PoisonRecord): string {
  const details = [`token ${record.token}`];
  if (record.owner) details.push(`owner ${record.owner}`);
  return slack(`${record.operation ?? "an operation"} (${details.join(", ")})`);
}

function firstLine(text: string): string {
  const line = text.split("\n")[0] ?? "";
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}

/** Slack's three control characters, escaped as its docs ask. */
function slack(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function positiveInt(argument: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1)
    throw new InvalidArgumentError(argument, "must be a positive whole number");
  return value;
}
