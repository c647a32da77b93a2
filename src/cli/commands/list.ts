import type { PoisonStoreClient } from "../../core/contract.js";
import { livenessOf } from "../../core/liveness.js";
import type { ListPoisonsOptions, ListState, PoisonRecord } from "../../core/records.js";
import { shellQuote } from "../../core/shell.js";
import { greptimeLayoutOf } from "../../greptimedb/driver.js";
import { greptimeClusterState, type PoisonExplanation } from "../../greptimedb/explain.js";
import type { Command, CommandContext } from "../context.js";
import { ExitCode, errorJson, toCliError } from "../errors.js";
import {
  age,
  type Column,
  colourState,
  errorSummary,
  JsonArrayWriter,
  StreamingTable,
} from "../format.js";
import {
  explainRecords,
  explanationJson,
  switchesLine,
  tableCell,
  verdictCell,
} from "../greptimedb.js";

/** Records asked of the store per round trip: memory stays bounded by this, whatever the total. */
export const LIST_PAGE_SIZE = 500;

/** What `--state` accepts: a stored state, `stale` (in progress, holder not live), or `any`. */
export const STATE_CHOICES = ["poisoned", "in-progress", "stale", "any"] as const;

export const listCommand: Command = {
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
  options: {
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
  },
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
  async run(ctx: CommandContext): Promise<number> {
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
};

/** The store-side filters of `list` and `check`. */
export function listFilters(ctx: CommandContext): ListPoisonsOptions & { state?: ListState } {
  const filters: ListPoisonsOptions = {};
  const prefix = ctx.string("prefix");
  if (prefix !== undefined) filters.prefix = prefix;
  const state = ctx.string("state");
  if (state !== undefined && state !== "any") filters.state = state as ListState;
  const token = ctx.string("token");
  if (token !== undefined) filters.token = token;
  const operation = ctx.string("operation");
  if (operation !== undefined) filters.operation = operation;
  return filters;
}

export function describeFilters(filters: ListPoisonsOptions): string {
  return [
    filters.prefix !== undefined ? `prefix ${JSON.stringify(filters.prefix)}` : "",
    filters.state ? `state ${filters.state}` : "",
    filters.token !== undefined ? `token ${JSON.stringify(filters.token)}` : "",
    filters.operation !== undefined ? `operation ${JSON.stringify(filters.operation)}` : "",
  ]
    .filter(Boolean)
    .join(", ");
}

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

/** live, stale, or `-`: what the holder's heartbeat says. */
export function holderCell(record: PoisonRecord, now: Date): string {
  const { live, stale } = livenessOf(record, now);
  return live ? "live" : stale ? "stale" : "-";
}

export function listColumns(now: Date): Column<PoisonRecord>[] {
  return [
    { title: "KEY", max: 48, value: (r) => r.key },
    {
      title: "STATE",
      max: 11,
      min: "in-progress".length,
      value: (r) => r.state,
      paint: (t, r, c) => (t === r.state ? colourState(t, c) : t),
    },
    { title: "TOKEN", max: 36, value: (r) => r.token },
    { title: "OPERATION", max: 24, value: (r) => r.operation ?? "" },
    { title: "OWNER", max: 24, value: (r) => r.owner ?? "" },
    { title: "AGE", max: 8, value: (r) => age(r.createdAt, now) },
    { title: "HEARTBEAT", max: 9, value: (r) => age(r.heartbeatAt, now) },
    {
      title: "HOLDER",
      max: 6,
      value: (r) => holderCell(r, now),
      paint: (t, _r, c) => (t === "live" ? c.yellow(t) : t === "stale" ? c.red(t) : c.dim(t)),
    },
    {
      title: "ERROR",
      max: 60,
      value: (r) => errorSummary(r),
      paint: (t, _r, c) => (t === "-" ? c.dim(t) : t),
    },
  ];
}

/** Every record the filters match, page by page, to `each` (for check and clear). */
export async function forEachRecord(
  store: PoisonStoreClient,
  filters: ListPoisonsOptions,
  each: (records: PoisonRecord[]) => Promise<void>,
): Promise<void> {
  let cursor: string | null = null;
  do {
    const page = await store.listPoisons({ ...filters, limit: LIST_PAGE_SIZE, cursor });
    await each(page.records);
    cursor = page.cursor;
  } while (cursor !== null);
}
