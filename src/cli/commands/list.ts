import type { ListPoisonsOptions, PoisonRecord } from "../../core/records.js";
import { greptimeLayoutOf } from "../../greptimedb/driver.js";
import { greptimeClusterState, type PoisonExplanation } from "../../greptimedb/explain.js";
import { defineCommand, type OptionSpecs } from "../context.js";
import { ExitCode, errorJson, toCliError } from "../errors.js";
import { JsonArrayWriter, StreamingTable } from "../format.js";
import {
  explainRecords,
  explanationJson,
  switchesLine,
  tableCell,
  verdictCell,
} from "../greptimedb.js";
import { describeFilters, LIST_PAGE_SIZE, listFilters, STATE_CHOICES } from "../listing.js";
import { listColumns, shellQuote } from "../render.js";

/** The options of `poison list`; `run` and its helpers are typed by them. */
const LIST_OPTIONS = {
  prefix: { type: "string", value: "P", help: "only keys that start with P (matched literally)" },
  state: {
    type: "string",
    value: "STATE",
    help: "only keys in this state: poisoned, in-progress, stale or any (default any)",
    choices: STATE_CHOICES,
  },
  token: { type: "string", value: "T", help: "only keys held by token T (one operation's keys)" },
  operation: { type: "string", value: "OP", help: "only keys of operation OP" },
  limit: { type: "string", value: "N", help: "stop after N keys (default: all)" },
  cursor: {
    type: "string",
    value: "C",
    help: "continue a listing stopped by --limit (same filters), from its cursor",
  },
} as const satisfies OptionSpecs;

export const listCommand = defineCommand({
  name: "list",
  summary: "list poison keys: what is stuck, since when, why, and who holds it",
  usage: [
    "poison list [--prefix P] [--state STATE] [--token T] [--operation OP] [--limit N] [--cursor C]",
  ],
  description: `Lists poison keys sorted by key (UTF-8 byte order), one row each: key, state, token,
operation, owner, age (since the key was written), heartbeat age (since the holder's last sign of
life), whether the holder is live or stale, and a summary of the error. "poisoned" means the
holder failed and left the key; "in-progress" means an operation holds it now, or died holding
it; "stale" (a filter) is in-progress with no recent heartbeat.

The store is read page by page, so a store with a million keys lists in bounded memory. With
--limit N it stops after N keys and prints the command that continues (--cursor C); --json
carries that cursor. The filters (--state, --token, --operation, --prefix) are applied by the
store. Reading creates nothing: a sqlite: file that does not exist is exit 5.`,
  options: LIST_OPTIONS,
  positionals: { min: 0, max: 0 },
  scope: "store",
  readOnly: true,
  examples: [
    ["poison list"],
    ["poison list --state poisoned", "what needs an operator"],
    ["poison list --state stale", "holders that stopped sending heartbeats"],
    ["poison list --token procedure-7f3a", "every key of one operation"],
    ["poison list --prefix table/ --limit 20", "then --cursor C continues"],
    ["poison list --json | jq -r '.records[].key'"],
  ],
  async run(ctx): Promise<number> {
    const filters = listFilters(ctx);
    const limit = ctx.positiveInt("limit");
    const cursorGiven = ctx.string("cursor");
    const json = ctx.global.json;

    return ctx.withStore(async (store) => {
      await ctx.checkStorage(store);
      // On ?layout=greptimedb: each key's table and verdict, and the metasrv's switches.
      const cluster = greptimeLayoutOf(store) ? await greptimeClusterState(store) : null;
      let explained = new Map<PoisonRecord, PoisonExplanation>();
      const columns = listColumns(ctx.now());
      if (cluster) {
        columns.splice(
          1,
          0,
          { title: "TABLE", max: 40, value: (r) => tableCell(explained.get(r)) },
          { title: "GREPTIMEDB", max: 40, value: (r) => verdictCell(explained.get(r)) },
        );
        if (!json) await ctx.out.line(ctx.out.colour.dim(switchesLine(cluster)));
      }
      const table = new StreamingTable<PoisonRecord>(ctx.out, columns);
      const stream = new JsonArrayWriter(
        ctx.out,
        {
          ...ctx.where(store),
          prefix: filters.prefix ?? null,
          state: filters.state ?? null,
          token: filters.token ?? null,
          operation: filters.operation ?? null,
          ...(cluster ? { metasrv: cluster } : {}),
        },
        "records",
      );
      let shown = 0;
      let cursor: string | null = cursorGiven ?? null;
      try {
        do {
          const pageSize = Math.min(
            LIST_PAGE_SIZE,
            limit === undefined ? LIST_PAGE_SIZE : limit - shown,
          );
          const page = await store.listPoisons({ ...filters, limit: pageSize, cursor });
          if (cluster) explained = (await explainRecords(store, page.records)) ?? explained;
          const documents = cluster
            ? page.records.map((r) => {
                const e = explained.get(r);
                return e ? { ...r, greptimedb: explanationJson(e) } : r;
              })
            : page.records;
          await (json ? stream.write(documents) : table.write(page.records));
          shown += page.records.length;
          cursor = page.cursor;
        } while (cursor !== null && (limit === undefined || shown < limit));
      } catch (error) {
        const failure = toCliError(error, ctx.failure());
        if (failure.code === "INVALID_ARGUMENT" && cursorGiven !== undefined) {
          failure.details.cursor = cursorGiven;
        }
        if (json)
          failure.inJsonDocument = await stream.fail(errorJson(failure, ctx.errorWhere()), {
            count: shown,
            truncated: true,
            cursor,
          });
        else await table.end();
        throw failure;
      }
      // A cursor left means --limit stopped the listing: more keys may follow (with filters, a
      // cursor may also lead to nothing more; following it says).
      const truncated = cursor !== null;
      if (json) {
        await stream.end({ count: shown, truncated, cursor });
        return ExitCode.Ok;
      }
      await table.end();
      const c = ctx.out.colour;
      const described = describeFilters(filters);
      if (shown === 0 && !truncated) {
        await ctx.out.line(
          `no poison keys${described ? ` with ${described}` : ""}${cursorGiven === undefined ? "" : " after the cursor"} ${ctx.searched(store)}${ctx.neverWrittenNote()}`,
        );
        return ExitCode.Ok;
      }
      await ctx.out.line(
        c.dim(
          `${shown} key${shown === 1 ? "" : "s"}${truncated ? ` (--limit ${limit} reached; there may be more)` : ""}`,
        ),
      );
      if (truncated && cursor !== null)
        await ctx.out.line(c.dim(`more: ${ctx.suggest(continueWords(filters, limit, cursor))}`));
      return ExitCode.Ok;
    });
  },
});

/** `list --prefix … --limit N --cursor C`: the same listing, from where it stopped. */
function continueWords(
  filters: ListPoisonsOptions,
  limit: number | undefined,
  cursor: string,
): string {
  const words = ["list"];
  if (filters.prefix !== undefined) words.push("--prefix", shellQuote(filters.prefix));
  if (filters.state) words.push("--state", filters.state);
  if (filters.token !== undefined) words.push("--token", shellQuote(filters.token));
  if (filters.operation !== undefined) words.push("--operation", shellQuote(filters.operation));
  if (limit !== undefined) words.push("--limit", String(limit));
  words.push("--cursor", shellQuote(cursor));
  return words.join(" ");
}
