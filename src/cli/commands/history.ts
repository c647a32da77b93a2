import type { AuditEntry } from "../../core/records.js";
import { defineCommand, type OptionSpecs } from "../context.js";
import { ExitCode, errorJson, toCliError } from "../errors.js";
import { JsonArrayWriter, StreamingTable } from "../format.js";
import { historyColumns } from "../render.js";

export const DEFAULT_HISTORY_LIMIT = 50;
const PAGE_SIZE = 200;

/** The options of `poison history`; `run` and its helpers are typed by them. */
const HISTORY_OPTIONS = {
  limit: {
    type: "string",
    value: "N",
    help: `show at most N entries (default ${DEFAULT_HISTORY_LIMIT})`,
  },
} as const satisfies OptionSpecs;

export const historyCommand = defineCommand({
  name: "history",
  summary: "show the audit log of manual puts and clears, newest first",
  usage: ["poison history [KEY] [--limit N]"],
  description: `Shows the audit log kept in the store: every manual put, audited clear and forced
clear, newest first, with who did it, why, the token, and (in --json) the record as it stood.
With KEY, only that key's entries. Reading creates nothing: a sqlite: file that does not exist
is exit 5.`,
  options: HISTORY_OPTIONS,
  positionals: { min: 0, max: 1 },
  scope: "store",
  readOnly: true,
  examples: [
    ["poison history"],
    ["poison history table/1024", "one key's entries"],
    [
      "poison history --limit 500 --json | jq '.entries[] | select(.action == \"force-delete\")'",
      "forced clears",
    ],
  ],
  async run(ctx): Promise<number> {
    const key = ctx.key();
    const limit = ctx.positiveInt("limit") ?? DEFAULT_HISTORY_LIMIT;
    const now = ctx.now();
    const json = ctx.global.json;
    return ctx.withStore(async (store) => {
      await ctx.checkStorage(store);
      const table = new StreamingTable<AuditEntry>(ctx.out, historyColumns(now, key === undefined));
      const stream = new JsonArrayWriter(
        ctx.out,
        { ...ctx.where(store), key: key ?? null },
        "entries",
      );
      let shown = 0;
      let cursor: string | null = null;
      try {
        do {
          const page = await store.auditLog({
            ...(key === undefined ? {} : { key }),
            limit: Math.min(PAGE_SIZE, limit - shown),
            cursor,
          });
          await (json ? stream.write(page.entries) : table.write(page.entries));
          shown += page.entries.length;
          cursor = page.cursor;
        } while (cursor !== null && shown < limit);
      } catch (error) {
        const failure = toCliError(error, ctx.failure());
        if (json)
          failure.inJsonDocument = await stream.fail(errorJson(failure, ctx.errorWhere()), {
            count: shown,
            truncated: true,
          });
        else await table.end();
        throw failure;
      }
      // The store fetches one entry beyond the page to know: a cursor means more entries exist.
      const truncated = cursor !== null;
      if (json) {
        await stream.end({ count: shown, truncated });
        return ExitCode.Ok;
      }
      const c = ctx.out.colour;
      await table.end();
      if (shown === 0) {
        await ctx.out.line(
          `no audit entries${key === undefined ? "" : ` for ${JSON.stringify(key)}`} ${ctx.searched(store)}${ctx.neverWrittenNote()}`,
        );
      } else {
        const more = truncated ? ` (--limit ${limit} reached; there are more)` : "";
        await ctx.out.line(c.dim(`${shown} entr${shown === 1 ? "y" : "ies"}${more}`));
      }
      return ExitCode.Ok;
    });
  },
});
