import type { ChangeEvent } from "../../core/watch.js";
import { type CommandContextOf, defineCommand, type OptionSpecs } from "../context.js";
import { describe, ExitCode } from "../errors.js";
import type { Palette } from "../io.js";
import { shellQuote } from "../render.js";

/** The options of `poison watch`; `run` and its helpers are typed by them. */
const WATCH_OPTIONS = {
  prefix: { type: "string", value: "P", help: "only keys that start with P (matched literally)" },
  "poll-interval": {
    type: "string",
    value: "MS",
    help: "for a backend without a native change feed: time between two polls (default 2000)",
  },
} as const satisfies OptionSpecs;
type WatchContext = CommandContextOf<typeof WATCH_OPTIONS>;

export const watchCommand = defineCommand({
  name: "watch",
  summary: "print changes to poison keys as they happen, like tail -f",
  usage: ["poison watch [--prefix P] [--poll-interval MS] [--json]"],
  description: `Prints one line per change to the store's poison keys, as it happens, until
interrupted (Ctrl-C or SIGTERM: exit 0): put, poisoned, touched (a heartbeat or another
update), deleted, force-deleted, and resync (changes may have been missed: list again). With
--json, one JSON object per line (the ChangeEvent of the library: type, key, record, at), for
jq or a log shipper. Backends with a native change feed report every change at once; the
others are polled (every --poll-interval, default 2000 ms; changes between two polls are seen as
their net effect), see docs/OBSERVABILITY.md. Reading creates nothing: a sqlite: file that does
not exist is exit 5. Failures the watch recovers from are reported on stderr.`,
  options: WATCH_OPTIONS,
  positionals: { min: 0, max: 0 },
  scope: "store",
  readOnly: true,
  examples: [
    ["poison watch"],
    ["poison watch --prefix table/", "one kind of resource"],
    [
      "poison watch --json | jq -c 'select(.type == \"poisoned\")'",
      "only new poisonings, as JSON lines",
    ],
  ],
  async run(ctx): Promise<number> {
    const prefix = ctx.string("prefix") ?? "";
    const pollIntervalMs = ctx.positiveInt("poll-interval", 2 ** 31 - 1);
    const json = ctx.global.json;
    return ctx.withStore(async (store) => {
      await ctx.checkStorage(store);
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        const changes = store.watch({
          prefix,
          signal: stop.signal,
          ...(pollIntervalMs === undefined ? {} : { pollIntervalMs }),
          onError: (error) => void ctx.err.line(`poison watch: warning: ${describe(error)}`),
        });
        void changes.ready.then(async (established) => {
          if (!established) return;
          const how =
            changes.source === "native"
              ? "its change feed"
              : `polling every ${pollIntervalMs ?? 2000} ms`;
          await ctx.err.line(
            `poison watch: watching ${prefix === "" ? "every key" : `keys under ${JSON.stringify(prefix)}`} ${ctx.searched(store)} through ${how}; Ctrl-C to stop`,
          );
        });
        for await (const change of changes) {
          await ctx.out.line(
            json
              ? JSON.stringify(change)
              : changeLine(change, ctx.out.colour, ctx.suggest(`list${prefixFlag(ctx)}`)),
          );
        }
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
      return ExitCode.Ok;
    });
  },
});

/** `2024-05-01T10:00:00.000Z  poisoned       table/1024  token t  alter-table  Error: …` */
export function changeLine(change: ChangeEvent, c: Palette, listCommand: string): string {
  const type = change.type.padEnd(13);
  const painted =
    change.type === "poisoned"
      ? c.red(type)
      : change.type === "force-deleted" || change.type === "resync"
        ? c.yellow(type)
        : change.type === "put"
          ? c.cyan(type)
          : type;
  if (change.type === "resync") {
    return `${change.at}  ${painted}  changes may have been missed; see the keys as they are now: ${listCommand}`;
  }
  const parts = [`${change.at}  ${painted}  ${quoteKey(change.key)}`];
  const record = change.record;
  if (record) {
    parts.push(`token ${record.token}`);
    if (record.operation) parts.push(record.operation);
    if (record.owner) parts.push(`owner ${record.owner}`);
    if (change.type !== "force-deleted" && record.error)
      parts.push(`${record.error.name}: ${record.error.message.split("\n")[0] ?? ""}`);
  }
  return parts.join("  ");
}

function prefixFlag(ctx: WatchContext): string {
  const prefix = ctx.string("prefix");
  return prefix === undefined || prefix === "" ? "" : ` --prefix ${shellQuote(prefix)}`;
}

/** A key as one word: quoted when it holds spaces or control characters. */
function quoteKey(key: string): string {
  return /^[\x21-\x7e\u00a0-\uffff]+$/u.test(key) ? key : shellQuote(key);
}
