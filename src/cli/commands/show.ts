import type { AuditEntry, PoisonRecord } from "../../core/records.js";
import { UNKNOWN_TIME } from "../../drivers/etcd.js";
import type { Command, CommandContext } from "../context.js";
import { CliError, ExitCode } from "../errors.js";
import { age, cell, colourState, errorSummary, printable, StreamingTable } from "../format.js";
import {
  explainRecords,
  explanationJson,
  printExplanation,
  printGreptimeHint,
} from "../greptimedb.js";
import type { Printer } from "../io.js";
import { historyColumns } from "./history.js";

/** Audit entries shown under a record; `poison history KEY` has them all. */
export const SHOW_HISTORY_LIMIT = 20;

export const showCommand: Command = {
  name: "show",
  summary: "show one poison key: the whole record, its error and stack, its data, its history",
  usage: "poison show KEY",
  description: `Shows everything stored with KEY: token, state, operation, owner, times, the error the
owner recorded (with its stack), the data it kept for repair, and the audit history of the key
(manual puts and clears, newest first). Exits with 4 when the key is not present.`,
  options: {},
  positionals: { min: 1, max: 1 },
  examples: [
    "poison show table/1024",
    "poison show table/1024 --json | jq .record.error.stack -r",
    "poison show '/odd key with spaces'",
  ],
  async run(ctx: CommandContext): Promise<number> {
    const key = ctx.args[0] as string;
    return ctx.withStore(async (store) => {
      const record = await store.inspectPoison(key);
      const history = (await store.auditLog({ key, limit: SHOW_HISTORY_LIMIT })).entries;
      if (!record) throw notPresent(key, history[0]);
      // On ?layout=greptimedb: the table, the procedure holding the key, the verdict.
      const explanation = (await explainRecords(store, [record]))?.get(record);
      if (ctx.global.json) {
        const greptimedb = explanation
          ? { greptimedb: explanationJson(explanation), metasrv: explanation.cluster }
          : {};
        await ctx.out.json({ ...ctx.where(store), record, history, ...greptimedb });
        return ExitCode.Ok;
      }
      await printRecord(ctx.out, record, ctx.now());
      if (explanation) await printExplanation(ctx.out, explanation);
      await printHistory(ctx.out, history, ctx.now());
      if (explanation) await printGreptimeHint(ctx.out, record, explanation);
      else await printHint(ctx.out, record);
      return ExitCode.Ok;
    });
  },
};

/** Exit 4, saying what happened to the key last if the audit log knows. */
export function notPresent(key: string, last: AuditEntry | undefined): CliError {
  const lastly = last
    ? `; it was last ${last.action === "put" ? "put" : "cleared"} by ${last.actor} at ${last.at} ("${last.reason}")`
    : "";
  return new CliError(
    "POISON_NOT_FOUND",
    ExitCode.NotFound,
    `poison key ${JSON.stringify(key)} is not present${lastly}`,
    "see what is there with `poison list` (and `poison history`); check --store and --namespace",
    { key, lastAudit: last ?? null },
  );
}

export async function printRecord(out: Printer, record: PoisonRecord, now: Date): Promise<void> {
  const c = out.colour;
  const rows: [string, string][] = [
    ["key", c.bold(cell(record.key))],
    ["state", colourState(record.state, c)],
    ["token", cell(record.token)],
    ["operation", cell(record.operation)],
    ["owner", cell(record.owner)],
    ["created", when(record.createdAt, now)],
    ["updated", when(record.updatedAt, now)],
    [
      "heartbeat",
      record.heartbeatAt ? `${record.heartbeatAt} (${age(record.heartbeatAt, now)} ago)` : "-",
    ],
    ["error", record.error ? c.red(cell(errorSummary(record))) : "-"],
  ];
  if (record.error) rows.push(["failed at", record.error.at]);
  for (const [label, value] of rows) await out.line(`${c.dim(label.padEnd(10))} ${value}`);
  if (record.error?.stack) {
    await out.line(c.dim("stack"));
    for (const line of record.error.stack.split("\n")) await out.line(`  ${printable(line)}`);
  }
  await out.line(c.dim("data"));
  const data = record.data === undefined ? "-" : compactJson(record.data);
  for (const line of data.split("\n")) await out.line(`  ${line}`);
}

/** A time and its age; unknown for a key written by another tool (GreptimeDB). */
function when(iso: string, now: Date): string {
  return iso === UNKNOWN_TIME
    ? "unknown (written by another tool)"
    : `${iso} (${age(iso, now)} ago)`;
}

export async function printHistory(out: Printer, history: AuditEntry[], now: Date): Promise<void> {
  const c = out.colour;
  await out.line();
  if (history.length === 0) {
    await out.line(c.dim("history: no manual puts or clears of this key"));
    return;
  }
  await out.line(c.bold("history") + c.dim(" (newest first)"));
  await new StreamingTable(out, historyColumns(now, false)).write(history);
  if (history.length >= SHOW_HISTORY_LIMIT)
    await out.line(
      c.dim(`(the latest ${SHOW_HISTORY_LIMIT}; \`poison history KEY\` has them all)`),
    );
}

async function printHint(out: Printer, record: PoisonRecord): Promise<void> {
  const c = out.colour;
  const key = shellQuote(record.key);
  await out.line();
  await out.line(c.dim("to recover, once the resource is repaired:"));
  await out.line(
    c.dim(`  as the holder:   poison clear ${key} --token ${shellQuote(record.token)}`),
  );
  await out.line(
    c.dim(`  as an operator:  poison clear ${key} --force --reason "what you repaired"`),
  );
}

/** JSON over several lines, but any part that fits on one line of `width` stays on one. */
export function compactJson(value: unknown, indent = "", width = 76): string {
  const flat = JSON.stringify(value) ?? "null";
  if (indent.length + flat.length <= width || value === null || typeof value !== "object")
    return flat;
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    const items = value.map((item) => inner + compactJson(item, inner, width));
    return `[\n${items.join(",\n")}\n${indent}]`;
  }
  const fields = Object.entries(value as Record<string, unknown>).map(
    ([name, item]) => `${inner}${JSON.stringify(name)}: ${compactJson(item, inner, width)}`,
  );
  return `{\n${fields.join(",\n")}\n${indent}}`;
}

/** Quote for a POSIX shell when needed, so a hint can be pasted as is. */
export function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}
