import type { PoisonRecord } from "../../core/records.js";
import { defineCommand, type OptionSpecs } from "../context.js";
import { CHECK_MATCHED, CliError, ExitCode, errorJson, toCliError, usageError } from "../errors.js";
import { JsonArrayWriter, StreamingTable } from "../format.js";
import { describeFilters, forEachRecord, listFilters, STATE_CHOICES } from "../listing.js";
import { listColumns } from "../render.js";

/** What `check` looks for when --state is not given: keys that need an operator. */
export const DEFAULT_CHECK_STATE = "poisoned";

/** The options of `poison check`; `run` and its helpers are typed by them. */
const CHECK_OPTIONS = {
  "older-than": {
    type: "string",
    value: "DUR",
    help: "only keys written more than DUR ago (90s, 15m, 2h, 1d; default: any age)",
  },
  state: {
    type: "string",
    value: "STATE",
    help: `which keys count: poisoned, in-progress, stale or any (default ${DEFAULT_CHECK_STATE})`,
    choices: STATE_CHOICES,
  },
  prefix: { type: "string", value: "P", help: "only keys that start with P (matched literally)" },
} as const satisfies OptionSpecs;

export const checkCommand = defineCommand({
  name: "check",
  summary:
    "exit 1 when poison keys match (poisoned by default): for cron jobs, alerts and CI gates",
  usage: ["poison check [--older-than DUR] [--state STATE] [--prefix P]"],
  description: `Looks for poison keys that need attention and answers with the exit code: 0 when
nothing matches, 1 when something does (the matches are printed, or with --json listed), 5 when
the store cannot be asked (unreachable, timed out, misconfigured, a sqlite: file that does not
exist). It never answers 0 unless the store was read.

A key matches when it is in --state (default poisoned; stale is in-progress with no recent
heartbeat; any is every key), starts with --prefix, and was written more than --older-than ago
(the AGE column of \`poison list\`). DUR is a number with a unit: 90s, 15m, 2h, 1d, 1h30m.
Reading creates nothing.`,
  options: CHECK_OPTIONS,
  positionals: { min: 0, max: 0 },
  scope: "store",
  readOnly: true,
  examples: [
    ["poison check", "exit 1 if anything is poisoned"],
    ["poison check --older-than 15m --state stale", "holders silent for a while, written 15m+ ago"],
    ["poison check --prefix table/ --state any", "a CI gate: nothing may hold table/*"],
    ["poison check --context prod --json", "for a monitoring system"],
  ],
  async run(ctx): Promise<number> {
    const olderThan = ctx.string("older-than");
    const olderThanMs = olderThan === undefined ? 0 : parseDuration(olderThan);
    const state = ctx.string("state") ?? DEFAULT_CHECK_STATE;
    const filters = listFilters(ctx);
    if (state !== "any") filters.state = state as typeof filters.state;
    const now = ctx.now();
    const cutoff = now.getTime() - olderThanMs;
    const old = (record: PoisonRecord) => {
      if (olderThanMs === 0) return true;
      const written = Date.parse(record.createdAt);
      // An unreadable time cannot prove the key is young: it counts (never fail open).
      return Number.isNaN(written) || written <= cutoff;
    };
    const json = ctx.global.json;

    return ctx.withStore(async (store) => {
      await ctx.checkStorage(store);
      const table = new StreamingTable<PoisonRecord>(ctx.out, listColumns(now));
      const stream = new JsonArrayWriter(
        ctx.out,
        {
          ...ctx.where(store),
          state,
          olderThan: olderThan ?? null,
          olderThanMs,
          prefix: filters.prefix ?? null,
        },
        "matches",
      );
      let count = 0;
      try {
        await forEachRecord(store, filters, async (records) => {
          const matches = records.filter(old);
          count += matches.length;
          await (json ? stream.write(matches) : table.write(matches));
        });
      } catch (error) {
        let failure = toCliError(error, ctx.failure());
        // The store was not fully asked: 5, never the 1 that means "something matches".
        if (failure.exitCode === ExitCode.Unexpected) {
          failure = new CliError(
            failure.code,
            ExitCode.BackendUnavailable,
            failure.message,
            failure.fix,
            failure.details,
            { cause: failure.cause },
          );
        }
        if (json)
          failure.inJsonDocument = await stream.fail(errorJson(failure, ctx.errorWhere()), {
            count,
            matched: null,
          });
        throw failure;
      }
      const what = [
        describeFilters({ ...filters, state: state === "any" ? undefined : filters.state }) ||
          "any key",
        olderThan === undefined ? "" : `written more than ${olderThan} ago`,
      ]
        .filter(Boolean)
        .join(", ");
      if (json) {
        await stream.end({ count, matched: count > 0 });
      } else if (count === 0) {
        await ctx.out.line(
          `ok: no poison keys match (${what}) ${ctx.searched(store)}${ctx.neverWrittenNote()}`,
        );
      } else {
        await table.end();
        await ctx.out.line(
          `${count} poison key${count === 1 ? " matches" : "s match"} (${what}) ${ctx.searched(store)}; see \`${ctx.suggest("show KEY")}\``,
        );
      }
      return count > 0 ? CHECK_MATCHED : ExitCode.Ok;
    });
  },
});

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** `90s`, `15m`, `1h30m`, `2d` in milliseconds; a usage error for anything else. */
export function parseDuration(text: string): number {
  const parts = /^(?:\d+(?:ms|s|m|h|d|w))+$/.test(text) ? text.match(/\d+(?:ms|s|m|h|d|w)/g) : null;
  if (!parts) {
    throw usageError(
      `--older-than must be a duration such as 90s, 15m, 2h, 1d or 1h30m, not ${JSON.stringify(text)}`,
      "write a number followed by a unit: ms, s, m, h, d or w",
    );
  }
  let total = 0;
  for (const part of parts) {
    const [, digits, unit] = /^(\d+)(ms|s|m|h|d|w)$/.exec(part) as unknown as [
      string,
      string,
      string,
    ];
    total += Number(digits) * (UNIT_MS[unit] as number);
  }
  if (!Number.isSafeInteger(total))
    throw usageError(
      `--older-than ${text} is too long`,
      "use at most a few years, for example 365d",
    );
  return total;
}
