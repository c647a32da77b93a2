import type { PoisonRecord, PoisonState } from "../../core/records.js";
import { greptimeLayoutOf } from "../../greptimedb/driver.js";
import { greptimeClusterState, type PoisonExplanation } from "../../greptimedb/explain.js";
import type { Command, CommandContext } from "../context.js";
import { ExitCode, errorJson, toCliError, usageError } from "../errors.js";
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

const STATES: readonly PoisonState[] = ["in-progress", "poisoned"];

export const listCommand: Command = {
  name: "list",
  summary: "list poison keys: what is stuck, since when, why, and who holds it",
  usage: "poison list [--prefix P] [--state in-progress|poisoned] [--limit N]",
  description: `Lists poison keys sorted by key (UTF-8 byte order), one row each: key, state, token,
operation, owner, age (since the key was written), heartbeat age (since the owner's last sign of
life) and a summary of the error. The store is read page by page, so a store with a million keys
lists in bounded memory. "poisoned" means the owner failed and left the key; "in-progress" means
an operation holds it now, or died holding it.`,
  options: {
    prefix: { type: "string", value: "P", help: "only keys that start with P (matched literally)" },
    state: {
      type: "string",
      value: "STATE",
      help: "only keys in this state: in-progress or poisoned",
    },
    limit: { type: "string", value: "N", help: "stop after N keys (default: all)" },
  },
  positionals: { min: 0, max: 0 },
  examples: [
    "poison list",
    "poison list --state poisoned                # what needs an operator",
    "poison list --prefix table/ --limit 20",
    "poison list --store postgres://ops@db:5432/control --json | jq '.records[].key'",
  ],
  async run(ctx: CommandContext): Promise<number> {
    const prefix = ctx.string("prefix");
    const state = parseState(ctx.string("state"));
    const limit = ctx.positiveInt("limit");
    const now = ctx.now();
    const json = ctx.global.json;

    return ctx.withStore(async (store) => {
      // On ?layout=greptimedb: each key's table and verdict, and the metasrv's switches.
      const cluster = greptimeLayoutOf(store) ? await greptimeClusterState(store) : null;
      let explained = new Map<PoisonRecord, PoisonExplanation>();
      const columns = listColumns(now);
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
          prefix: prefix ?? null,
          state: state ?? null,
          ...(cluster ? { metasrv: cluster } : {}),
        },
        "records",
      );
      let shown = 0;
      let truncated = false;
      let cursor: string | null = null;
      try {
        do {
          const page = await store.listPoisons({ prefix, limit: LIST_PAGE_SIZE, cursor });
          const rows: PoisonRecord[] = [];
          for (const record of page.records) {
            if (state && record.state !== state) continue;
            if (limit !== undefined && shown >= limit) {
              truncated = true;
              break;
            }
            rows.push(record);
            shown++;
          }
          if (cluster) explained = (await explainRecords(store, rows)) ?? explained;
          const out = cluster
            ? rows.map((r) => {
                const e = explained.get(r);
                return e ? { ...r, greptimedb: explanationJson(e) } : r;
              })
            : rows;
          await (json ? stream.write(out) : table.write(rows));
          cursor = page.cursor;
          // At the limit with more pages left: there may be more (we do not read on to find out).
          if (limit !== undefined && shown >= limit && cursor !== null) truncated = true;
        } while (cursor !== null && !truncated);
      } catch (error) {
        const failure = toCliError(error, "list");
        if (json)
          failure.inJsonDocument = await stream.fail(errorJson(failure), {
            count: shown,
            truncated: true,
          });
        throw failure;
      }

      if (json) {
        await stream.end({ count: shown, truncated });
        return ExitCode.Ok;
      }
      const c = ctx.out.colour;
      const filters = [
        prefix ? `prefix ${JSON.stringify(prefix)}` : "",
        state ? `state ${state}` : "",
      ]
        .filter(Boolean)
        .join(", ");
      if (shown === 0) {
        await ctx.out.line(
          `no poison keys${filters ? ` with ${filters}` : ""} in ${ctx.global.storeLabel} (namespace ${store.namespace})`,
        );
      } else {
        const more = truncated ? ` (--limit ${limit} reached; there may be more)` : "";
        await ctx.out.line(c.dim(`${shown} key${shown === 1 ? "" : "s"}${more}`));
      }
      return ExitCode.Ok;
    });
  },
};

function parseState(text: string | undefined): PoisonState | undefined {
  if (text === undefined) return undefined;
  if ((STATES as readonly string[]).includes(text)) return text as PoisonState;
  throw usageError(
    `--state must be one of ${STATES.join(", ")}, not ${JSON.stringify(text)}`,
    "for example --state poisoned",
  );
}

export function listColumns(now: Date): Column<PoisonRecord>[] {
  return [
    { title: "KEY", max: 48, value: (r) => r.key },
    {
      title: "STATE",
      max: 11,
      value: (r) => r.state,
      paint: (t, r, c) => (t === r.state ? colourState(t, c) : t),
    },
    { title: "TOKEN", max: 36, value: (r) => r.token },
    { title: "OPERATION", max: 24, value: (r) => r.operation ?? "" },
    { title: "OWNER", max: 24, value: (r) => r.owner ?? "" },
    { title: "AGE", max: 8, value: (r) => age(r.createdAt, now) },
    { title: "HEARTBEAT", max: 9, value: (r) => age(r.heartbeatAt, now) },
    {
      title: "ERROR",
      max: 60,
      value: (r) => errorSummary(r),
      paint: (t, _r, c) => (t === "-" ? c.dim(t) : t),
    },
  ];
}
