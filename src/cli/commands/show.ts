import type { PoisonStoreClient } from "../../core/contract.js";
import { livenessOf } from "../../core/liveness.js";
import type { AuditEntry, PoisonRecord } from "../../core/records.js";
import { type CommandContextOf, defineCommand, type OptionSpecs } from "../context.js";
import { CliError, ExitCode } from "../errors.js";
import { StreamingTable } from "../format.js";
import {
  explainRecords,
  explanationJson,
  printExplanation,
  printGreptimeHint,
} from "../greptimedb.js";
import { historyColumns, livenessJson, printRecord, shellQuote } from "../render.js";

/** Audit entries shown under a record; `poison history KEY` has them all. */
export const SHOW_HISTORY_LIMIT = 20;

/** The options of `poison show`; `run` and its helpers are typed by them. */
const SHOW_OPTIONS = {} as const satisfies OptionSpecs;
type ShowContext = CommandContextOf<typeof SHOW_OPTIONS>;

export const showCommand = defineCommand({
  name: "show",
  summary: "show one poison key: the whole record, its error and stack, its data, its history",
  usage: ["poison show KEY"],
  description: `Shows everything stored with KEY: token, state, operation, owner, times, whether its holder
is alive (its last heartbeat), the error the owner recorded (with its stack), the data it kept for
repair, the audit history of the key (manual puts and clears, newest first), and the commands that
would clear it. Exits with 4 when the key is not present, naming the store and namespace searched.
Reading creates nothing: a sqlite: file that does not exist is exit 5.`,
  options: SHOW_OPTIONS,
  positionals: { min: 1, max: 1 },
  scope: "store",
  readOnly: true,
  examples: [
    ["poison show table/1024"],
    ["poison show table/1024 --json | jq -r .record.error.stack", "the stack alone"],
    ["poison show '/odd key with spaces'", "quote keys the shell would split"],
    ["poison show table/1024 --context prod", "on the store of a named context"],
  ],
  async run(ctx): Promise<number> {
    const key = ctx.key() as string;
    return ctx.withStore(async (store) => {
      await ctx.checkStorage(store);
      const record = await store.inspectPoison(key);
      const history = (await store.auditLog({ key, limit: SHOW_HISTORY_LIMIT })).entries;
      if (!record) throw notPresent(ctx, store, key, history[0]);
      // On ?layout=greptimedb: the table, the procedure holding the key, the verdict.
      const explanation = (await explainRecords(store, [record]))?.get(record);
      if (ctx.global.json) {
        await ctx.out.json({
          ...ctx.where(store),
          record,
          liveness: livenessJson(record, ctx.now()),
          history,
          ...(explanation
            ? { greptimedb: explanationJson(explanation), metasrv: explanation.cluster }
            : {}),
        });
        return ExitCode.Ok;
      }
      await printRecord(ctx.out, record, ctx.now());
      if (explanation) await printExplanation(ctx.out, explanation);
      await printHistory(ctx, history);
      if (explanation) await printGreptimeHint(ctx.out, record, explanation);
      else await printHint(ctx, record);
      return ExitCode.Ok;
    });
  },
});

/** Exit 4, naming where the key was looked for and what happened to it last, if known. */
export function notPresent(
  ctx: ShowContext,
  store: PoisonStoreClient,
  key: string,
  last: AuditEntry | undefined,
): CliError {
  const lastly = last
    ? `; it was last ${last.action === "put" ? "put" : "cleared"} by ${JSON.stringify(last.actor)} at ${last.at} (${JSON.stringify(last.reason)})`
    : "";
  return new CliError(
    "POISON_NOT_FOUND",
    ExitCode.NotFound,
    `poison key ${JSON.stringify(key)} is not present ${ctx.searched(store)}${ctx.neverWrittenNote()}${lastly}`,
    `see what is there with \`${ctx.suggest("list")}\`; if the key should be there, check --store, --namespace and --context`,
    { key, lastAudit: last ?? null },
  );
}

async function printHistory(ctx: ShowContext, history: AuditEntry[]): Promise<void> {
  const out = ctx.out;
  const c = out.colour;
  await out.line();
  if (history.length === 0) {
    await out.line(c.dim("history: no manual puts or clears of this key"));
    return;
  }
  await out.line(c.bold("history") + c.dim(" (newest first)"));
  const table = new StreamingTable(out, historyColumns(ctx.now(), false));
  await table.write(history);
  await table.end();
  if (history.length >= SHOW_HISTORY_LIMIT)
    await out.line(
      c.dim(`(the latest ${SHOW_HISTORY_LIMIT}; \`poison history KEY\` has them all)`),
    );
}

async function printHint(ctx: ShowContext, record: PoisonRecord): Promise<void> {
  const c = ctx.out.colour;
  const key = shellQuote(record.key);
  const live = livenessOf(record, ctx.now()).live;
  const reason = `--reason ${shellQuote("what you repaired")}`;
  await ctx.out.line();
  if (live) {
    await ctx.out.line(
      c.dim(
        "its holder is live: stop the operation first; to clear it anyway (its run then aborts):",
      ),
    );
    await ctx.out.line(c.dim(`  ${ctx.suggest(`clear ${key} --force ${reason} --even-if-alive`)}`));
    return;
  }
  const recovery = record.state === "poisoned" ? ` ${reason}` : "";
  await ctx.out.line(c.dim("to recover, once the resource is repaired:"));
  await ctx.out.line(
    c.dim(
      `  as the holder:   ${ctx.suggest(`clear ${key} --token ${shellQuote(record.token)}${recovery}`)}`,
    ),
  );
  await ctx.out.line(c.dim(`  as an operator:  ${ctx.suggest(`clear ${key} --force ${reason}`)}`));
}
