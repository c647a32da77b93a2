/**
 * What the commands print about records, in one place: a record's fields (`show`, `put`,
 * `clear`), the columns of listings and of the audit log, liveness, and the conflict error of
 * every write. Commands import these from here, never from one another, so a change to how a
 * record looks is made once. Arguments printed for pasting are quoted by `shellQuote` (re-exported
 * from src/core/shell.ts, the only one).
 */
import type { PoisonStoreClient } from "../core/contract.js";
import type { PoisonConflictError } from "../core/errors.js";
import { describeLiveness, livenessOf } from "../core/liveness.js";
import type { AuditEntry, PoisonRecord } from "../core/records.js";
import { shellQuote } from "../core/shell.js";
import { UNKNOWN_TIME } from "../drivers/etcd.js";
import type { CommandContext } from "./context.js";
import { CliError, ExitCode } from "./errors.js";
import { age, type Column, cell, colourState, errorSummary, printable } from "./format.js";
import type { Palette, Printer } from "./io.js";

export { shellQuote };

/** A time and its age; unknown for a key written by another tool (GreptimeDB). */
function when(iso: string, now: Date): string {
  return iso === UNKNOWN_TIME
    ? "unknown (written by another tool)"
    : `${cell(iso)} (${age(iso, now)} ago)`;
}

/** The liveness of a record, as `--json` documents carry it. */
export function livenessJson(record: PoisonRecord, now: Date) {
  const { live, stale, heartbeatAgeMs, heartbeatIntervalMs } = livenessOf(record, now);
  return { live, stale, heartbeatAgeMs, heartbeatIntervalMs };
}

/** `live: last heartbeat 3s ago, every 1s`, `stale: …`, or `-` for a poisoned key without. */
export function livenessText(record: PoisonRecord, now: Date, colour: Palette): string {
  const { live, stale, heartbeatAgeMs } = livenessOf(record, now);
  if (live)
    return `${colour.yellow("live")}: ${describeLiveness(record, now)} (an operation is running)`;
  if (stale)
    return `${colour.red("stale")}: ${heartbeatAgeMs === null ? "no heartbeat recorded" : describeLiveness(record, now)} (its holder stopped, or never sent heartbeats)`;
  return heartbeatAgeMs === null
    ? "not live: no heartbeat recorded"
    : `not live: ${describeLiveness(record, now)}`;
}

/** A record as `show` prints it, one labelled field per line, then its stack and data. */
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
      record.heartbeatAt
        ? `${cell(record.heartbeatAt)} (${age(record.heartbeatAt, now)} ago)`
        : "-",
    ],
    ["holder", livenessText(record, now, c)],
    ["error", record.error ? c.red(cell(errorSummary(record))) : "-"],
  ];
  if (record.error) rows.push(["failed at", cell(record.error.at)]);
  for (const [label, value] of rows) await out.line(`${c.dim(label.padEnd(10))} ${value}`);
  if (record.error?.stack) {
    await out.line(c.dim("stack"));
    for (const line of record.error.stack.split("\n")) await out.line(`  ${printable(line)}`);
  }
  await out.line(c.dim("data"));
  const data = record.data === undefined ? "-" : compactJson(record.data);
  for (const line of data.split("\n")) await out.line(`  ${line}`);
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

/** live, stale, or `-`: what the holder's heartbeat says. */
export function holderCell(record: PoisonRecord, now: Date): string {
  const { live, stale } = livenessOf(record, now);
  return live ? "live" : stale ? "stale" : "-";
}

/** The columns of `list`, `check` and `clear --all-of-token`. */
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

/** Exit 3, naming the current holder and what it is doing, so the operator can decide. */
export async function conflictError(
  ctx: CommandContext,
  store: PoisonStoreClient,
  error: PoisonConflictError,
): Promise<CliError> {
  // Best effort: the conflict itself is the answer; the record only makes it clearer.
  const holder = error.holderRecord ?? (await store.inspectPoison(error.key).catch(() => null));
  const about = holder ? describeHolder(holder, ctx.now()) : "";
  const key = shellQuote(error.key);
  return new CliError(
    error.code,
    ExitCode.Conflict,
    `poison key ${JSON.stringify(error.key)} is held by token ${JSON.stringify(error.holder)}${about}, not ${JSON.stringify(error.token)}; nothing was changed`,
    `inspect it with \`${ctx.suggest(`show ${key}`)}\`; once the resource is repaired, \`${ctx.suggest(`clear ${key} --force --reason R`)}\``,
    { key: error.key, token: error.token, holder: error.holder, record: holder },
    { cause: error },
  );
}

function describeHolder(record: PoisonRecord, now: Date): string {
  const parts: string[] = [record.state];
  if (record.operation) parts.push(`operation ${cell(record.operation)}`);
  if (record.owner) parts.push(`owner ${cell(record.owner)}`);
  parts.push(`since ${cell(record.createdAt)}, ${age(record.createdAt, now)} ago`);
  return ` (${parts.join(", ")})`;
}

/** The columns of `history` (and of `show`'s history, without KEY). */
export function historyColumns(now: Date, withKey: boolean): Column<AuditEntry>[] {
  const columns: Column<AuditEntry>[] = [
    { title: "AT", max: 24, value: (e) => e.at },
    { title: "AGO", max: 8, value: (e) => age(e.at, now) },
    {
      title: "ACTION",
      max: 12,
      value: (e) => e.action,
      paint: (t, e, c) => (t === e.action && e.action === "force-delete" ? c.yellow(t) : t),
    },
  ];
  if (withKey) columns.push({ title: "KEY", max: 40, value: (e) => e.key });
  columns.push(
    { title: "ACTOR", max: 20, value: (e) => e.actor },
    { title: "TOKEN", max: 36, value: (e) => e.token ?? e.record?.token ?? "" },
    { title: "REASON", max: 80, value: (e) => e.reason },
  );
  return columns;
}
