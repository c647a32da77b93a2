import { createHash } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import {
  ADMIN_ROLES,
  type AdminRole,
  addAdminToken,
  readAdminTokens,
  removeAdminToken,
} from "../../admin/auth.js";
import { type AdminRequestLog, createPoisonAdmin } from "../../admin/handler.js";
import type { PoisonStoreClient } from "../../core/contract.js";
import { MissingDependencyError } from "../../core/errors.js";
import { collectMetrics, type PoisonMetrics } from "../../observability/metrics.js";
import { type Notifier, type NotifierEvent, notify } from "../../observability/notify.js";
import { parseWebhook, webhookLabel } from "../../observability/webhook.js";
import { type CommandContextOf, defineCommand, type OptionSpecs } from "../context.js";
import { ExitCode, usageError } from "../errors.js";

export const DEFAULT_LISTEN = "127.0.0.1:7433";
/** How long a SIGTERM waits for requests in flight before closing their connections. */
const SHUTDOWN_GRACE_MS = 10_000;

/** The options of `poison serve`; `run` and its helpers are typed by them. */
const SERVE_OPTIONS = {
  listen: {
    type: "string",
    value: "HOST:PORT",
    help: `where to listen (default ${DEFAULT_LISTEN}; port 0 picks a free one)`,
  },
  tokens: { type: "string", value: "FILE", help: "the token file (names, roles, hashes)" },
  "base-path": {
    type: "string",
    value: "P",
    help: "serve under this path, for example /poison (behind a proxy)",
  },
  "add-token": {
    type: "string",
    value: "NAME",
    help: "add a token named NAME to --tokens FILE and print its secret once",
  },
  "remove-token": { type: "string", value: "NAME", help: "remove the token named NAME" },
  role: { type: "string", value: "ROLE", help: "with --add-token: viewer or operator" },
  "anonymous-role": {
    type: "string",
    value: "ROLE",
    help: "without --tokens: the role of every caller (default operator)",
  },
  actor: {
    type: "string",
    value: "A",
    help: "without --tokens: the audit actor (default $POISON_ACTOR, else the OS user)",
  },
  cors: {
    type: "string",
    value: "ORIGINS",
    help: "comma-separated origins allowed to call the API from a browser (default none)",
  },
  "poll-interval": {
    type: "string",
    value: "MS",
    help: "for a backend without a native change feed: how often the event stream and --notify poll (default 2000)",
  },
  metrics: {
    type: "string",
    value: "ACCESS",
    help: "who may read /metrics: viewer (any token; default), public (no token) or off",
    choices: ["viewer", "operator", "public", "off"],
  },
  notify: {
    type: "string",
    value: "URL",
    help: "POST to this webhook when a key is poisoned, goes stale or is force-cleared (repeatable)",
    repeatable: true,
  },
  "notify-state": {
    type: "string",
    value: "FILE",
    help: "where --notify records what it sent (default under ~/.local/state/poison)",
  },
} as const satisfies OptionSpecs;
type ServeContext = CommandContextOf<typeof SERVE_OPTIONS>;

export const serveCommand = defineCommand({
  name: "serve",
  summary: "run the admin HTTP API and web console (or manage its token file)",
  usage: [
    "poison serve [--listen HOST:PORT] [--tokens FILE] [--base-path P] [--cors ORIGINS] [--poll-interval MS] [--anonymous-role ROLE] [--actor A] [--metrics ACCESS] [--notify URL]... [--notify-state FILE]",
    "poison serve --tokens FILE --add-token NAME --role viewer|operator",
    "poison serve --tokens FILE --remove-token NAME",
  ],
  description: `Serves the admin service of docs/ADMIN.md for the store: the JSON API under /api/v1, the web
console at /, /healthz, and Server-Sent Events of changes. One line per request is logged on
stdout (--json: one JSON object per line); SIGTERM or SIGINT stops accepting, ends the event
streams, waits up to 10 s for requests in flight, closes the store and exits 0.

Callers authenticate with bearer tokens from --tokens FILE, each with a name (the audit actor of
its clears and puts) and a role: viewer (read) or operator (read, clear, put). The file holds only
hashes. Create a token with --add-token NAME --role ROLE: its secret is printed once, on stdout,
and never again. Without --tokens the service only listens on loopback, and every caller gets
--anonymous-role (default operator) as --actor (default $POISON_ACTOR, else the OS user); any
other --listen address is refused without a tokens file.

GET /metrics serves the store's Prometheus metrics (docs/OBSERVABILITY.md; needs the npm package
prom-client): readable with any token by default, --metrics public lets a scraper in without
one, --metrics off turns it off. --notify URL (repeatable) POSTs a Slack-compatible message to
URL when a key becomes poisoned, goes stale or is force-cleared; what was sent is recorded in
--notify-state FILE (default under $XDG_STATE_HOME/poison, else ~/.local/state/poison) so a
restart does not send it again. Webhook URLs are secrets: they are never printed, only their
origin.`,
  options: SERVE_OPTIONS,
  positionals: { min: 0, max: 0 },
  scope: "store",
  examples: [
    [
      "poison serve --tokens /etc/poison/tokens.json --add-token alice --role operator",
      "prints the secret once",
    ],
    [
      "poison serve --store postgres://ops@db/control --listen 0.0.0.0:7433 --tokens /etc/poison/tokens.json",
    ],
    ["poison serve --store sqlite:./poison.db", "loopback only, no tokens: http://127.0.0.1:7433/"],
    ["poison serve --context prod --tokens /etc/poison/tokens.json", "the store of a context"],
    [
      'poison serve --store postgres://ops@db/control --tokens /etc/poison/tokens.json --metrics public --notify "$SLACK_WEBHOOK_URL"',
      "a scraper without a token, and a message in the team's channel",
    ],
  ],
  async run(ctx): Promise<number> {
    const tokensFile = ctx.string("tokens");
    const addName = ctx.string("add-token");
    const removeName = ctx.string("remove-token");
    if (addName !== undefined || removeName !== undefined)
      return manageTokens(ctx, tokensFile, addName, removeName);
    if (ctx.string("role") !== undefined)
      throw usageError(
        "--role goes with --add-token",
        "for example --add-token alice --role viewer",
      );

    const listen = parseListen(ctx.string("listen") ?? DEFAULT_LISTEN);
    const tokens = tokensFile === undefined ? undefined : await readAdminTokens(tokensFile);
    if (tokens === undefined && !isLoopback(listen.host)) {
      throw usageError(
        `refusing to listen on ${listen.host} without --tokens: anyone who can reach it could clear poison keys`,
        "create a token file (poison serve --tokens FILE --add-token NAME --role operator) and pass --tokens FILE, or listen on 127.0.0.1",
      );
    }
    if (tokens !== undefined && ctx.string("anonymous-role") !== undefined)
      throw usageError("--anonymous-role is for a service without --tokens", "drop one of them");
    const anonymousRole = parseRole(ctx.string("anonymous-role") ?? "operator", "--anonymous-role");
    const pollText = ctx.string("poll-interval");
    const pollMs = pollText === undefined ? undefined : ctx.positiveInt("poll-interval");
    const cors = (ctx.string("cors") ?? "")
      .split(",")
      .map((origin) => origin.trim())
      .filter(Boolean);
    const json = ctx.global.json;
    const metricsText = ctx.string("metrics");
    const metricsAccess = (metricsText ?? "viewer") as "viewer" | "operator" | "public" | "off";
    const webhooks = ctx.strings("notify");
    for (const url of webhooks) parseWebhook(url, "--notify");
    if (ctx.string("notify-state") !== undefined && webhooks.length === 0)
      throw usageError(
        "--notify-state goes with --notify",
        "add --notify URL, or drop --notify-state",
      );

    return ctx.withStore(async (store) => {
      const metrics =
        metricsAccess === "off" ? null : await startMetrics(ctx, store, metricsText !== undefined);
      const notifier =
        webhooks.length === 0 ? null : await startNotifier(ctx, store, webhooks, pollMs, json);
      const admin = createPoisonAdmin(store, {
        ...(tokens === undefined
          ? { anonymous: { role: anonymousRole, actor: ctx.actor() } }
          : { tokens }),
        ...(ctx.string("base-path") === undefined ? {} : { basePath: ctx.string("base-path") }),
        ...(cors.length > 0 ? { cors: { origins: cors } } : {}),
        ...(pollMs === undefined ? {} : { events: { intervalMs: pollMs } }),
        ...(metrics === null || metricsAccess === "off"
          ? {}
          : {
              metrics: {
                contentType: metrics.contentType,
                metrics: () => metrics.metrics(),
                access: metricsAccess,
              },
            }),
        onRequest: (entry) => void ctx.out.line(accessLine(entry, json)),
        onError: (error) =>
          void ctx.err.line(
            `poison serve: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
          ),
      });
      const server = createServer((req, res) => void admin.node(req, res));
      server.listen(listen.port, listen.host);
      try {
        await Promise.race([
          once(server, "listening"),
          once(server, "error").then(([error]) => {
            throw error;
          }),
        ]);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        throw usageError(
          `cannot listen on ${listen.host}:${listen.port} (${code ?? (error as Error).message})`,
          code === "EADDRINUSE" ? "pick another port with --listen" : "check --listen",
        );
      }
      const address = server.address() as AddressInfo;
      const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
      const url = `http://${host}:${address.port}${ctx.string("base-path")?.replace(/\/+$/, "") ?? ""}/`;
      const who =
        tokens === undefined
          ? `no tokens: every caller is ${anonymousRole} as ${JSON.stringify(ctx.actor())} (loopback only)`
          : `${tokens.length} token${tokens.length === 1 ? "" : "s"} from ${tokensFile}`;
      await announce(
        ctx,
        json,
        { event: "listening", url, store: ctx.global.storeLabel, auth: who },
        `listening on ${url} (store ${ctx.global.storeLabel}; ${who})`,
      );
      if (metrics !== null)
        await announce(
          ctx,
          json,
          { event: "metrics", url: `${url}metrics`, access: metricsAccess },
          `metrics at ${url}metrics (${metricsAccess === "public" ? "no token needed" : `role ${metricsAccess}`})`,
        );
      if (notifier !== null)
        await announce(
          ctx,
          json,
          {
            event: "notifying",
            webhooks: webhooks.map(webhookLabel).join(", "),
            state: notifier.stateFile,
          },
          `notifying ${webhooks.map(webhookLabel).join(", ")} (sent notifications recorded in ${notifier.stateFile})`,
        );
      try {
        await store.listPoisons({ limit: 1 });
      } catch (error) {
        await ctx.err.line(
          `poison serve: warning: the store does not answer yet (${(error as Error).message}); /healthz reports 503 until it does`,
        );
      }

      const signal = await nextSignal();
      await announce(
        ctx,
        json,
        { event: "stopping", signal },
        `${signal}: stopping (ending event streams, waiting for requests in flight)`,
      );
      await admin.close();
      await notifier?.notifier.close();
      metrics?.close();
      server.close();
      server.closeIdleConnections();
      const grace = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      await once(server, "close");
      clearTimeout(grace);
      await announce(ctx, json, { event: "stopped" }, "stopped");
      return ExitCode.Ok;
    });
  },
});

async function manageTokens(
  ctx: ServeContext,
  file: string | undefined,
  addName: string | undefined,
  removeName: string | undefined,
): Promise<number> {
  if (file === undefined)
    throw usageError(
      "--add-token and --remove-token need --tokens FILE",
      "for example --tokens ./tokens.json",
    );
  if (addName !== undefined && removeName !== undefined)
    throw usageError("--add-token and --remove-token do not go together", "run them one at a time");
  if (removeName !== undefined) {
    const removed = await removeAdminToken(file, removeName);
    if (ctx.global.json) await ctx.out.json({ tokens: file, removed: removed ? removeName : null });
    else
      await ctx.out.line(
        removed
          ? `removed token ${JSON.stringify(removeName)} from ${file}; restart poison serve to apply`
          : `no token named ${JSON.stringify(removeName)} in ${file}; nothing changed`,
      );
    return removed ? ExitCode.Ok : ExitCode.NotFound;
  }
  const roleText = ctx.string("role");
  if (roleText === undefined)
    throw usageError("--add-token needs --role viewer|operator", "for example --role viewer");
  const role = parseRole(roleText, "--role");
  const { secret, token } = await addAdminToken(file, addName as string, role, ctx.now());
  if (ctx.global.json) {
    await ctx.out.json({ tokens: file, name: token.name, role: token.role, secret });
  } else {
    await ctx.out.line(secret);
    await ctx.err.line(
      `added ${token.role} token ${JSON.stringify(token.name)} to ${file} (only its hash is stored). ` +
        "The secret above is shown once: hand it over now. Restart poison serve to apply.",
    );
  }
  return ExitCode.Ok;
}

/** collectMetrics for /metrics. Without prom-client: a warning when /metrics was not asked for
 *  explicitly, else the error (exit 1 with the install command). */
async function startMetrics(
  ctx: ServeContext,
  store: PoisonStoreClient,
  explicit: boolean,
): Promise<PoisonMetrics | null> {
  try {
    return await collectMetrics(store, {
      onError: (error) =>
        void ctx.err.line(
          `poison serve: warning: a metrics scan failed (poison_store_up 0): ${(error as Error).message}`,
        ),
    });
  } catch (error) {
    if (error instanceof MissingDependencyError && !explicit) {
      await ctx.err.line(
        `poison serve: warning: /metrics is off: ${error.message} (or pass --metrics off to silence this)`,
      );
      return null;
    }
    throw error;
  }
}

async function startNotifier(
  ctx: ServeContext,
  store: PoisonStoreClient,
  webhooks: string[],
  pollMs: number | undefined,
  json: boolean,
): Promise<{ notifier: Notifier; stateFile: string }> {
  const stateFile = ctx.string("notify-state") ?? defaultNotifyState(ctx, store);
  const notifier = await notify(store, {
    webhooks,
    stateFile,
    ...(pollMs === undefined ? {} : { watch: { pollIntervalMs: pollMs } }),
    onEvent: (event) => void ctx.out.line(notifierLine(event, json)),
  });
  return { notifier, stateFile };
}

/** `$XDG_STATE_HOME/poison/notify-<hash of the store and namespace>.json`. */
function defaultNotifyState(ctx: ServeContext, store: PoisonStoreClient): string {
  const env = ctx.io.env;
  const base = env.XDG_STATE_HOME || join(env.HOME || homedir(), ".local", "state");
  const hash = createHash("sha256")
    .update(`${store.location}\u0000${store.namespace}`)
    .digest("hex")
    .slice(0, 12);
  return join(base, "poison", `notify-${hash}.json`);
}

function notifierLine(event: NotifierEvent, json: boolean): string {
  const at = new Date().toISOString();
  if (json) return JSON.stringify({ at, event: `notify-${event.type}`, ...event, type: undefined });
  switch (event.type) {
    case "sent":
      return `${at} notify: sent ${event.kind} ${event.key} to ${event.webhook} (attempt ${event.attempts})`;
    case "retrying":
      return `${at} notify: ${event.kind} ${event.key} to ${event.webhook}: attempt ${event.attempt} failed (${event.error}); retrying in ${event.delayMs} ms`;
    case "failed":
      return `${at} notify: gave up sending ${event.kind} ${event.key} to ${event.webhook}: ${event.error}`;
    case "error":
      return `${at} notify: ${event.error}`;
  }
}

function parseRole(text: string, option: string): AdminRole {
  if ((ADMIN_ROLES as readonly string[]).includes(text)) return text as AdminRole;
  throw usageError(
    `${option} must be viewer or operator, not ${JSON.stringify(text)}`,
    `for example ${option} viewer`,
  );
}

/** `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (loopback). */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535)
    throw usageError(
      `--listen must be HOST:PORT, not ${JSON.stringify(text)}`,
      "for example --listen 127.0.0.1:7433 or --listen [::1]:7433",
    );
  return { host: match[1] ?? (match[2] || "127.0.0.1"), port };
}

/** Only this machine can reach it. A name other than localhost may resolve anywhere. */
export function isLoopback(host: string): boolean {
  return (
    host === "localhost" || host === "::1" || /^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(host)
  );
}

function accessLine(entry: AdminRequestLog, json: boolean): string {
  const at = new Date().toISOString();
  const ms = Math.round(entry.durationMs * 10) / 10;
  if (json) return JSON.stringify({ at, ...entry, durationMs: ms });
  return `${at} ${entry.client} ${entry.actor ?? "-"} ${entry.method} ${entry.url} ${entry.status} ${ms}ms`;
}

/** A life-cycle line: `text` for people, `fields` as one JSON object with --json. */
function announce(
  ctx: ServeContext,
  json: boolean,
  fields: Record<string, string>,
  text: string,
): Promise<void> {
  return ctx.out.line(
    json ? JSON.stringify({ at: new Date().toISOString(), ...fields }) : `poison serve: ${text}`,
  );
}

function nextSignal(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      resolve(signal);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}
