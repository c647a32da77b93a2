/** The benchmark's outputs: the rows (the `--json` document), the human table and the SVG chart. */
import type { BackendName } from "./backends.js";
import type { SideFigures } from "./measure.js";
import type { OperationName } from "./operations.js";
import type { WatchRow } from "./watch.js";

export interface MeasuredRow {
  backend: BackendName;
  operation: OperationName;
  concurrency: number;
  ours: SideFigures;
  baseline: SideFigures;
  /** ours.opsPerSec / baseline.opsPerSec: above 1, ours is faster. */
  ratio: number;
}

/** A backend (no operation) or one cell that could not be measured, with the reason. When only
 *  our side is missing, the baseline is still measured and given. */
export interface SkippedRow {
  backend: BackendName;
  operation?: OperationName;
  concurrency?: number;
  skipped: string;
  baseline?: SideFigures;
}

export type Row = MeasuredRow | SkippedRow;

/** What `--json` prints: the operation rows, then one watch row per backend. */
export type JsonRow = Row | WatchRow;

export const isMeasured = (row: Row): row is MeasuredRow => !("skipped" in row);

const ops = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toPrecision(2));
const pad = (text: string, width: number, right = false) =>
  right ? text.padStart(width) : text.padEnd(width);

/** One table per backend. `labels` names what each backend's two sides are. */
export function humanTable(rows: readonly Row[], labels: Record<string, string>): string {
  const out: string[] = [];
  const backends = [...new Set(rows.map((row) => row.backend))];
  for (const backend of backends) {
    const mine = rows.filter((row) => row.backend === backend);
    const whole = mine.find((row) => !isMeasured(row) && row.operation === undefined);
    out.push(`${backend} — ${labels[backend] ?? ""}`);
    if (whole && !isMeasured(whole)) {
      out.push(`  skipped: ${whole.skipped}`, "");
      continue;
    }
    out.push(
      `  ${pad("operation", 26)} ${pad("conc", 4, true)} | ${pad("ours ops/s", 11, true)} ${pad("p50 ms", 7, true)} ${pad("p99 ms", 7, true)} | ${pad("base ops/s", 11, true)} ${pad("p50 ms", 7, true)} ${pad("p99 ms", 7, true)} | ${pad("ratio", 5, true)}`,
    );
    for (const row of mine) {
      const head = `  ${pad(row.operation ?? "", 26)} ${pad(String(row.concurrency ?? ""), 4, true)}`;
      const side = (f: SideFigures | undefined) =>
        f
          ? `${pad(ops(f.opsPerSec), 11, true)} ${pad(ms(f.p50Ms), 7, true)} ${pad(ms(f.p99Ms), 7, true)}`
          : pad("—", 27, true);
      if (isMeasured(row)) {
        out.push(
          `${head} | ${side(row.ours)} | ${side(row.baseline)} | ${pad(row.ratio.toFixed(2), 5, true)}`,
        );
      } else {
        out.push(`${head} | ${pad("skipped (see below)", 27)} | ${side(row.baseline)} |`);
      }
    }
    const reasons = new Set(
      mine.filter((row) => !isMeasured(row)).map((row) => (row as SkippedRow).skipped),
    );
    for (const reason of reasons) out.push(`  ours skipped: ${reason}`);
    const overhead = guardOverhead(mine);
    if (overhead) out.push(`  ${overhead}`);
    out.push("");
  }
  return out.join("\n");
}

/**
 * What the guard costs over the store's own calls: guard.run's throughput over our
 * tryPutPoison+deletePoison's at each concurrency. The two come from separate cells of the same
 * run (not interleaved with each other), so this is a rougher figure than a ratio.
 */
export function guardOverhead(rows: readonly Row[]): string | null {
  const ours = (operation: OperationName, concurrency: number) =>
    rows.find(
      (row): row is MeasuredRow =>
        isMeasured(row) && row.operation === operation && row.concurrency === concurrency,
    )?.ours.opsPerSec;
  const cells: string[] = [];
  for (const concurrency of new Set(rows.map((row) => row.concurrency))) {
    if (concurrency === undefined) continue;
    const guarded = ours("guard.run", concurrency);
    const pair = ours("tryPutPoison+deletePoison", concurrency);
    if (guarded !== undefined && pair !== undefined && pair > 0)
      cells.push(`×${concurrency} ${(guarded / pair).toFixed(2)}`);
  }
  return cells.length > 0
    ? `guard.run over our own tryPutPoison+deletePoison (separate cells): ${cells.join(", ")}`
    : null;
}

const escapeXml = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/**
 * Ours vs baseline, one panel per backend, one pair of bars per operation and concurrency. Both
 * bars of a pair share a scale (the larger of the two fills the width), so a reader sees the ratio
 * at a glance whatever the backend's absolute speed; the figures are printed beside the bars.
 */
export function svgChart(
  rows: readonly Row[],
  title: string,
  watch: readonly WatchRow[] = [],
): string {
  const width = 860;
  const labelWidth = 250;
  const barMax = 430;
  const barHeight = 9;
  const rowHeight = 26;
  const parts: string[] = [];
  let y = 40;
  const backends = [...new Set(rows.map((row) => row.backend))];
  for (const backend of backends) {
    const mine = rows.filter((row) => row.backend === backend);
    parts.push(`<text x="10" y="${y}" class="h">${escapeXml(backend)}</text>`);
    y += 10;
    const measured = mine.filter(isMeasured);
    if (measured.length === 0) {
      const reason = mine.find((row) => !isMeasured(row)) as SkippedRow | undefined;
      parts.push(
        `<text x="20" y="${y + 12}" class="s">skipped: ${escapeXml(reason?.skipped ?? "")}</text>`,
      );
      y += 32;
      continue;
    }
    for (const row of mine) {
      const label = `${row.operation ?? ""} ×${row.concurrency ?? ""}`;
      parts.push(`<text x="20" y="${y + 15}" class="l">${escapeXml(label)}</text>`);
      if (!isMeasured(row)) {
        parts.push(
          `<text x="${labelWidth}" y="${y + 15}" class="s">skipped: ${escapeXml(row.skipped)}</text>`,
        );
        y += rowHeight;
        continue;
      }
      const top = Math.max(row.ours.opsPerSec, row.baseline.opsPerSec);
      const ourWidth = (barMax * row.ours.opsPerSec) / top;
      const baseWidth = (barMax * row.baseline.opsPerSec) / top;
      parts.push(
        `<rect x="${labelWidth}" y="${y + 3}" width="${ourWidth.toFixed(1)}" height="${barHeight}" class="o"/>`,
        `<rect x="${labelWidth}" y="${y + 3 + barHeight}" width="${baseWidth.toFixed(1)}" height="${barHeight}" class="b"/>`,
        `<text x="${labelWidth + barMax + 8}" y="${y + 11}" class="n">${ops(row.ours.opsPerSec)}/s</text>`,
        `<text x="${labelWidth + barMax + 8}" y="${y + 21}" class="n">${ops(row.baseline.opsPerSec)}/s</text>`,
        `<text x="${width - 10}" y="${y + 16}" class="r">${row.ratio.toFixed(2)}</text>`,
      );
      y += rowHeight;
    }
    y += 14;
  }
  if (watch.length > 0) y = watchPanel(parts, watch, y, { labelWidth, barMax, barHeight });
  const height = y + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<title>${escapeXml(title)}</title>
<style>.h{font-size:15px;font-weight:bold}.l{font-size:12px}.s{font-size:12px;fill:#888}.n{font-size:10px;fill:#444}.r{font-size:13px;text-anchor:end;font-weight:bold}.o{fill:#2f6fb3}.b{fill:#c9c9c9}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" font-size="13">${escapeXml(title)}</text>
<rect x="${width - 290}" y="10" width="12" height="10" class="o"/><text x="${width - 274}" y="19" font-size="11">ours</text>
<rect x="${width - 230}" y="10" width="12" height="10" class="b"/><text x="${width - 214}" y="19" font-size="11">baseline</text>
<text x="${width - 10}" y="19" font-size="11" text-anchor="end">ratio ours/baseline</text>
${parts.join("\n")}
</svg>
`;
}

/** Watch delay on a log scale (0.01 ms .. 10 s), p50 and p99 bars per backend: polling and
 *  native feeds differ by orders of magnitude. */
const LOG_MIN_MS = 0.01;
const LOG_MAX_MS = 10_000;

function watchPanel(
  parts: string[],
  rows: readonly WatchRow[],
  top: number,
  layout: { labelWidth: number; barMax: number; barHeight: number },
): number {
  const { labelWidth, barMax, barHeight } = layout;
  const scale = (value: number) => {
    const clamped = Math.min(LOG_MAX_MS, Math.max(LOG_MIN_MS, value));
    return (barMax * Math.log(clamped / LOG_MIN_MS)) / Math.log(LOG_MAX_MS / LOG_MIN_MS);
  };
  let y = top;
  parts.push(
    `<text x="10" y="${y}" class="h">watch delay: write resolved → event (store.watch defaults)</text>`,
  );
  y += 10;
  for (const tick of [0.01, 1, 100, 10_000]) {
    const x = labelWidth + scale(tick);
    parts.push(
      `<line x1="${x.toFixed(1)}" y1="${y + 4}" x2="${x.toFixed(1)}" y2="${y + 4 + rows.length * 26}" stroke="#eee"/>`,
      `<text x="${x.toFixed(1)}" y="${y + 2}" class="n" text-anchor="middle">${tick >= 1000 ? `${tick / 1000} s` : `${tick} ms`}</text>`,
    );
  }
  y += 4;
  for (const row of rows) {
    const f = row.watch;
    const label = "skipped" in f ? row.backend : `${row.backend} (${f.source})`;
    parts.push(`<text x="20" y="${y + 15}" class="l">${escapeXml(label)}</text>`);
    if ("skipped" in f) {
      parts.push(
        `<text x="${labelWidth}" y="${y + 15}" class="s">skipped: ${escapeXml(f.skipped)}</text>`,
      );
    } else {
      parts.push(
        `<rect x="${labelWidth}" y="${y + 3}" width="${scale(f.p50Ms).toFixed(1)}" height="${barHeight}" class="o"/>`,
        `<rect x="${labelWidth}" y="${y + 3 + barHeight}" width="${scale(f.p99Ms).toFixed(1)}" height="${barHeight}" class="b"/>`,
        `<text x="${labelWidth + barMax + 8}" y="${y + 11}" class="n">p50 ${ms(f.p50Ms)} ms</text>`,
        `<text x="${labelWidth + barMax + 8}" y="${y + 21}" class="n">p99 ${ms(f.p99Ms)} ms (${f.changes} changes)</text>`,
      );
    }
    y += 26;
  }
  return y + 14;
}
