/** Small formatting helpers for tables and ages. Human output only; `--json` never uses them. */
import type { PoisonRecord } from "../core/records.js";
import { UNKNOWN_TIME } from "../drivers/etcd.js";
import type { Palette, Printer } from "./io.js";

/** `42s`, `5m12s`, `3h05m`, `2d04h`: how long ago `iso` was, or `-` when unknown. */
export function age(iso: string | undefined, now: Date): string {
  // UNKNOWN_TIME: a key written by another tool (GreptimeDB) has no time of ours.
  if (!iso || iso === UNKNOWN_TIME) return "-";
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "?";
  let seconds = Math.max(0, Math.floor((now.getTime() - then) / 1000));
  if (seconds < 60) return `${seconds}s`;
  const pad = (n: number) => String(n).padStart(2, "0");
  let minutes = Math.floor(seconds / 60);
  seconds %= 60;
  if (minutes < 60) return `${minutes}m${pad(seconds)}s`;
  let hours = Math.floor(minutes / 60);
  minutes %= 60;
  if (hours < 24) return `${hours}h${pad(minutes)}m`;
  const days = Math.floor(hours / 24);
  hours %= 24;
  return `${days}d${pad(hours)}h`;
}

/** One line, at most `max` characters (with `…` when cut); control characters shown as spaces
 *  so a hostile key or message cannot move the cursor or forge table rows. */
export function cell(text: string | undefined, max = Number.POSITIVE_INFINITY): string {
  if (text === undefined || text === "") return "-";
  const flat = printable(text);
  const chars = [...flat];
  return chars.length <= max ? flat : `${chars.slice(0, Math.max(1, max - 1)).join("")}…`;
}

/** `text` with control characters (escape sequences, carriage returns…) shown as spaces. */
export function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ");
}

/** `Name: first line of the message`, or `-`. */
export function errorSummary(record: PoisonRecord): string {
  if (!record.error) return "-";
  const first = record.error.message.split("\n", 1)[0] ?? "";
  return `${record.error.name}: ${first}`;
}

export function colourState(state: string, colour: Palette): string {
  return state === "poisoned" ? colour.red(state) : colour.yellow(state);
}

export interface Column<Row> {
  title: string;
  /** Widest this column may grow; longer values are cut with `…`. */
  max: number;
  /** Narrowest it is, whatever the rows (the widest value it can take, when that is known). */
  min?: number;
  value(row: Row): string;
  paint?(text: string, row: Row, colour: Palette): string;
}

/** Rows a table holds back to size its columns: below this many, the widths fit every row
 *  printed; beyond it, they fit the first this-many and later rows are cut to them. */
export const TABLE_SIZING_ROWS = 5000;

/**
 * A table written batch by batch, in bounded memory: rows are held back until
 * {@link TABLE_SIZING_ROWS} have arrived (or {@link end}), so the column widths fit all of them
 * (up to each column's max); later rows are printed at once, cut to those widths.
 */
export class StreamingTable<Row> {
  readonly #columns: Column<Row>[];
  readonly #printer: Printer;
  readonly #sizingRows: number;
  #widths: number[] | null = null;
  #held: Row[] = [];

  constructor(printer: Printer, columns: Column<Row>[], sizingRows = TABLE_SIZING_ROWS) {
    this.#printer = printer;
    this.#columns = columns;
    this.#sizingRows = sizingRows;
  }

  async write(rows: readonly Row[]): Promise<void> {
    if (rows.length === 0) return;
    if (this.#widths) return this.#print(rows);
    this.#held.push(...rows);
    if (this.#held.length >= this.#sizingRows) await this.end();
  }

  /** Print what is held back; call once the last batch is written. */
  async end(): Promise<void> {
    if (this.#widths || this.#held.length === 0) return;
    const rows = this.#held;
    this.#held = [];
    this.#widths = this.#columns.map((column) =>
      Math.min(
        column.max,
        Math.max(
          column.title.length,
          column.min ?? 0,
          ...rows.map((row) => [...cell(column.value(row))].length),
        ),
      ),
    );
    await this.#printer.line(
      this.#join(
        this.#columns.map((c) => c.title),
        (text) => this.#printer.colour.bold(text),
      ),
    );
    await this.#print(rows);
  }

  async #print(rows: readonly Row[]): Promise<void> {
    const widths = this.#widths ?? [];
    // In slices, so a slow pipe applies back-pressure and no one string grows unbounded.
    for (let from = 0; from < rows.length; from += 500) {
      let text = "";
      for (const row of rows.slice(from, from + 500)) {
        const cells = this.#columns.map((column, i) => cell(column.value(row), widths[i]));
        text += `${this.#join(cells, (value, i) => {
          const paint = this.#columns[i]?.paint;
          return paint ? paint(value, row, this.#printer.colour) : value;
        })}\n`;
      }
      await this.#printer.write(text);
    }
  }

  /** Pad to width before colouring, so escape codes never upset the alignment. */
  #join(cells: string[], paint: (text: string, i: number) => string): string {
    const widths = this.#widths ?? [];
    return cells
      .map((value, i) => {
        const last = i === cells.length - 1;
        const gap = last ? 0 : Math.max(0, (widths[i] ?? 0) - [...value].length);
        return paint(value, i) + " ".repeat(gap);
      })
      .join("  ");
  }
}

/**
 * One JSON document written as it is read: `{...head, "<field>": [items...], ...tail}`. The head
 * is written with the first batch, so a failure before any data leaves stdout empty (the caller
 * then prints a plain error document); a failure mid-way closes the document with an `error`.
 */
export class JsonArrayWriter {
  readonly #printer: Printer;
  readonly #head: Record<string, unknown>;
  readonly #field: string;
  #started = false;
  #count = 0;

  constructor(printer: Printer, head: Record<string, unknown>, field: string) {
    this.#printer = printer;
    this.#head = head;
    this.#field = field;
  }

  async write(items: readonly unknown[]): Promise<void> {
    let text = "";
    if (!this.#started) {
      this.#started = true;
      text += `${JSON.stringify(this.#head).slice(0, -1)},\n  ${JSON.stringify(this.#field)}: [`;
    }
    for (const item of items) {
      text += `${this.#count === 0 ? "" : ","}\n    ${JSON.stringify(item)}`;
      this.#count++;
    }
    await this.#printer.write(text);
  }

  async end(tail: Record<string, unknown>): Promise<void> {
    if (!this.#started) await this.write([]);
    const fields = Object.entries(tail)
      .map(([name, value]) => `,\n  ${JSON.stringify(name)}: ${JSON.stringify(value)}`)
      .join("");
    await this.#printer.write(`${this.#count > 0 ? "\n  " : ""}]${fields}\n}\n`);
  }

  /** Close a started document with the error; false when nothing was written yet. */
  async fail(error: Record<string, unknown>, tail: Record<string, unknown>): Promise<boolean> {
    if (!this.#started) return false;
    await this.end({ ...tail, error });
    return true;
  }
}
