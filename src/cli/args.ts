/**
 * The command-line parser. Small on purpose, and ours rather than `util.parseArgs`, so that every
 * mistake gets a sentence that says what to type instead ("did you mean --prefix?"), never a
 * Node.js internal message.
 */
import { usageError } from "./errors.js";

/** One option of a command, plus its help line. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  /** Placeholder shown in help, for string options (`URL`, `N`…). */
  value?: string;
  help: string;
  /** The values it accepts, for help, "did you mean" and shell completion. */
  choices?: readonly string[];
  /** May be given several times (string options): the values are kept in order. */
  repeatable?: boolean;
}

/** What the parser's messages may name. */
export interface ParseWhere {
  /** `poison CMD --help`. */
  help: string;
  /** The commands that take each option, for "--force is an option of `poison clear`". */
  others?: ReadonlyMap<string, readonly string[]>;
  /** A command's own sentence for an option it refuses on purpose. */
  explain?: (name: string) => { message: string; fix: string } | undefined;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[]>;
  positionals: string[];
}

/**
 * Parse `args` against `specs`: `--name value`, `--name=value`, `-x` for a short alias, `--`
 * before positionals that start with `-`. `others` lists the options of other commands, so that
 * `poison show K --force` can say which command takes --force.
 */
export function parseArgs(
  args: readonly string[],
  specs: Readonly<Record<string, OptionSpec>>,
  where: ParseWhere,
): ParsedArgs {
  const values: Record<string, string | boolean | string[]> = {};
  const positionals: string[] = [];
  const byShort = new Map(
    Object.entries(specs)
      .filter(([, spec]) => spec.short)
      .map(([name, spec]) => [spec.short as string, name]),
  );
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-" || !arg.startsWith("-")) {
      positionals.push(arg);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
    } else {
      const short = byShort.get(arg.slice(1));
      if (short === undefined) throw unknownOption(arg, specs, where);
      name = short;
    }
    const spec = specs[name];
    if (!spec) throw unknownOption(`--${name}`, specs, where);
    if (spec.type === "boolean") {
      if (inline !== undefined) {
        throw usageError(
          `--${name} takes no value (got ${JSON.stringify(`${arg}`)})`,
          `write --${name} alone; see \`${where.help}\``,
        );
      }
      values[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith("-") && next !== "-" && looksLikeOption(next))) {
        throw usageError(
          `--${name} needs a value (${spec.value ?? "VALUE"})`,
          `for example --${name} ${example(name, spec)}; a value that starts with "-" is written --${name}=VALUE`,
        );
      }
      value = next;
      i++;
    }
    const before = values[name];
    if (spec.repeatable) {
      values[name] = [...(Array.isArray(before) ? before : []), value];
      continue;
    }
    if (before !== undefined && before !== value) {
      throw usageError(
        `--${name} is given twice (${JSON.stringify(before)} and ${JSON.stringify(value)})`,
        `give --${name} once`,
      );
    }
    if (spec.choices && !spec.choices.includes(value)) {
      const guess = closest(value, spec.choices);
      throw usageError(
        `--${name} must be one of ${spec.choices.join(", ")}, not ${JSON.stringify(value)}`,
        guess ? `did you mean --${name} ${guess}?` : `for example --${name} ${spec.choices[0]}`,
      );
    }
    values[name] = value;
  }
  return { values, positionals };
}

/** An argument that a person most likely meant as an option (not a negative number or `-`). */
function looksLikeOption(text: string): boolean {
  return /^--?[A-Za-z]/.test(text);
}

function example(name: string, spec: OptionSpec): string {
  if (spec.choices?.[0]) return spec.choices[0];
  if (name === "reason") return `"what you repaired"`;
  return spec.value ?? "VALUE";
}

function unknownOption(
  arg: string,
  specs: Readonly<Record<string, OptionSpec>>,
  where: ParseWhere,
) {
  const name = arg.replace(/^-+/, "").replace(/=.*$/s, "");
  const explained = where.explain?.(name);
  if (explained) return usageError(explained.message, explained.fix);
  const shown = arg.replace(/=.*$/s, "");
  const guess = closest(name, Object.keys(specs));
  const elsewhere = where.others?.get(name);
  let fix: string;
  if (guess) fix = `did you mean --${guess}? see \`${where.help}\``;
  else if (elsewhere && elsewhere.length > 0)
    fix = `--${name} is an option of \`poison ${elsewhere.join("`, `poison ")}\`; see \`${where.help}\``;
  else if (!arg.startsWith("--"))
    fix = `an argument that starts with "-" goes after \`--\` (for example \`poison show -- ${arg}\`); see \`${where.help}\``;
  else fix = `see \`${where.help}\` for the options`;
  return usageError(`unknown option ${JSON.stringify(shown)}`, fix);
}

/**
 * The candidate closest to `word`, when close enough to be a likely typo: an edit distance of
 * at most 1 for short words and 2 for longer ones (transpositions count as one), or a prefix.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  if (lower === "") return undefined;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const allowed = lower.length <= 4 ? 1 : 2;
  if (best !== undefined && bestDistance <= allowed) return best;
  const prefixed = candidates.filter((c) => c.toLowerCase().startsWith(lower));
  return lower.length >= 2 && prefixed.length === 1 ? prefixed[0] : undefined;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const row = d[i] as number[];
      const up = d[i - 1] as number[];
      row[j] = Math.min(
        (up[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (up[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
    }
  }
  return (d[rows - 1] as number[])[cols - 1] as number;
}
