/**
 * What `show` and `list` add on a store opened with `?layout=greptimedb`: the table a key
 * quarantines, the procedure holding it, the metasrv's switches and the runbook's verdict
 * (explainPoisons, docs/GREPTIMEDB.md).
 */
import type { PoisonStoreClient } from "../core/contract.js";
import type { PoisonRecord } from "../core/records.js";
import { shellQuote } from "../core/shell.js";
import { greptimeLayoutOf } from "../greptimedb/driver.js";
import {
  explainPoisons,
  type GreptimeClusterState,
  type PoisonExplanation,
} from "../greptimedb/explain.js";
import type { ProcedureSummary } from "../greptimedb/layout.js";
import { cell, printable } from "./format.js";
import type { Printer } from "./io.js";

/** Explanations of `records` by record, or null when the store is not a greptimedb one. */
export async function explainRecords(
  store: PoisonStoreClient,
  records: readonly PoisonRecord[],
): Promise<Map<PoisonRecord, PoisonExplanation> | null> {
  if (!greptimeLayoutOf(store)) return null;
  const explained = await explainPoisons(store, records);
  return new Map(records.map((record, i) => [record, explained[i] as PoisonExplanation]));
}

/** The JSON form of an explanation under a record (the record itself is beside it). */
export function explanationJson(explanation: PoisonExplanation): Record<string, unknown> {
  const { record: _record, cluster: _cluster, ...rest } = explanation;
  return { ...rest, procedure: slim(rest.procedure), parent: slim(rest.parent) };
}

/** A procedure with its data once (parsed; as stored when it is not JSON), not three times. */
function slim(procedure: ProcedureSummary | null): Record<string, unknown> | null {
  if (!procedure) return null;
  const { dataText: _pretty, message, ...rest } = procedure;
  if (!message) return { ...rest, message: null };
  const { data: stored, ...fields } = message;
  return { ...rest, message: fields, data: procedure.data ?? stored };
}

/** `greptime.public.monitor`, or what is known of the table, for a list column. */
export function tableCell(explanation: PoisonExplanation | undefined): string {
  const table = explanation?.table;
  if (!table) return "";
  if (table.status === "found") return table.fullName ?? "";
  return `table ${table.tableId} (${table.status === "missing" ? "no table info" : "info unreadable"})`;
}

/** `wait: AlterTable executing`, `repair-then-clear: no procedure state`…, for a list column. */
export function verdictCell(explanation: PoisonExplanation | undefined): string {
  if (!explanation) return "";
  const procedure = explanation.procedure;
  const what = procedure
    ? `${shortType(procedure)} ${procedure.status}`
    : explanation.procedureId
      ? "no procedure state"
      : "not a procedure";
  const flagged = explanation.problems.length > 0 ? " (!)" : "";
  return `${explanation.advice.verdict}: ${what}${flagged}`;
}

export function switchesLine(cluster: GreptimeClusterState): string {
  const { recoveryMode, proceduresPaused, maintenanceMode } = cluster.switches;
  return `metasrv: recovery mode ${recoveryMode ? "ON" : "off"}, procedures ${
    proceduresPaused ? "PAUSED" : "running"
  }, maintenance mode ${maintenanceMode ? "ON" : "off"}${
    cluster.metadataFound ? "" : " — GreptimeDB's metadata table was not found (check --store)"
  }`;
}

function shortType(procedure: ProcedureSummary): string {
  return procedure.message?.typeName.replace(/^metasrv-procedure::/, "") ?? "procedure";
}

/** The explanation under `poison show`. */
export async function printExplanation(out: Printer, e: PoisonExplanation): Promise<void> {
  const c = out.colour;
  const row = (label: string, value: string) => out.line(`${c.dim(label.padEnd(10))} ${value}`);
  await out.line();
  await out.line(c.bold("greptimedb"));
  const table = e.table;
  await row(
    "table",
    table === null
      ? "-"
      : table.status === "found"
        ? `${cell(table.fullName ?? "")} (table ${table.tableId}, info version ${table.version ?? "?"})`
        : `${table.tableId}: ${table.status === "missing" ? "no table info (dropped, or being dropped)" : `table info unreadable: ${cell(table.raw ?? "", 120)}`}`,
  );
  await row(
    "value",
    e.value === null
      ? "(cleared since it was read)"
      : `${cell(e.value.raw, 120)}${e.value.canonical ? "" : c.red(" (not GreptimeDB's bytes)")}`,
  );
  await printProcedure(out, "procedure", e.procedureId, e.procedure);
  if (e.procedure?.message?.parentId) {
    await printProcedure(out, "parent", e.procedure.message.parentId, e.parent);
  }
  await row("metasrv", switchesLine(e.cluster).replace(/^metasrv: /, ""));
  const verdict =
    e.advice.verdict === "wait" ? c.yellow(e.advice.verdict) : c.bold(e.advice.verdict);
  await row("verdict", `${verdict}: ${printable(e.advice.reason)}`);
  if (e.problems.length > 0) {
    await out.line(c.dim("problems"));
    for (const problem of e.problems) await out.line(`  ${c.red("!")} ${printable(problem)}`);
  }
  if (e.procedure?.dataText) {
    await out.line(c.dim("procedure data"));
    for (const line of e.procedure.dataText.split("\n")) await out.line(`  ${printable(line)}`);
  }
}

async function printProcedure(
  out: Printer,
  label: string,
  id: string | null,
  procedure: ProcedureSummary | null,
): Promise<void> {
  const c = out.colour;
  const row = (name: string, value: string) => out.line(`${c.dim(name.padEnd(10))} ${value}`);
  if (id === null) {
    await row(label, "- (the token is not a GreptimeDB procedure id)");
    return;
  }
  if (procedure === null) {
    await row(label, `${id}: no state in GreptimeDB's procedure store (it ended)`);
    return;
  }
  const message = procedure.message;
  await row(
    label,
    `${cell(message?.typeName ?? "?")} ${id} (${procedure.status}, step ${procedure.step}, ${procedure.keys.length} stored key${procedure.keys.length === 1 ? "" : "s"})`,
  );
  if (label === "procedure") {
    if (message?.actor) await row("actor", cell(message.actor));
    await row("error", message?.error ? c.red(cell(message.error, 200)) : "-");
  }
}

/** The recovery hint under `poison show` on a greptimedb store. */
export async function printGreptimeHint(
  out: Printer,
  record: PoisonRecord,
  e: PoisonExplanation,
): Promise<void> {
  // The location names the layout and the store key prefix: --store alone reaches the key.
  const store = ` --store ${shellQuote(e.cluster.location)}`;
  const c = out.colour;
  await out.line();
  if (e.advice.verdict === "wait") {
    await out.line(c.dim("do not clear: GreptimeDB resumes this procedure (see verdict)"));
    return;
  }
  await out.line(c.dim("to clear, once the table is repaired and verified (docs/GREPTIMEDB.md):"));
  await out.line(
    c.dim(
      `  poison clear ${shellQuote(record.key)} --allow-write --force --expect-token ${shellQuote(record.token)} --reason "what you repaired"${store}`,
    ),
  );
}
