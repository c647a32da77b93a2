/**
 * The confirmation prompt of destructive commands. Only the exact answer `yes` confirms (as
 * Terraform does: `y`, `Y` or `yes please` decline), end of input declines, and Ctrl-C prints
 * "aborted" and exits 130.
 */
import { createInterface } from "node:readline";
import type { CommandContext } from "./context.js";
import { CliError, ExitCode, usageError } from "./errors.js";

/**
 * Refuse to go on without a person's "yes": off a terminal, only `--yes` confirms (a script
 * must say so); on one, `question` is asked after `show` has printed what will change.
 */
export async function confirm(
  ctx: CommandContext,
  show: () => Promise<void>,
  question: string,
  offTerminal: { what: string; fix: string },
): Promise<void> {
  if (ctx.flag("yes")) return;
  if (ctx.io.stdin.isTTY !== true) {
    throw usageError(
      `refusing to ${offTerminal.what} without confirmation: stdin is not a terminal`,
      offTerminal.fix,
    );
  }
  await show();
  // Listen before asking: a Ctrl-C typed as soon as the question shows must reach the handler.
  const answering = readAnswer(ctx);
  await ctx.err.write(`${question} Only "yes" confirms: `);
  const answer = await answering;
  if (answer === INTERRUPTED) {
    await ctx.err.line();
    throw new CliError("ABORTED", ExitCode.Interrupted, "aborted; nothing was changed");
  }
  if (answer?.trim() !== "yes") {
    throw new CliError(
      "NOT_CONFIRMED",
      ExitCode.Unexpected,
      `not confirmed (the answer was ${answer === null ? "end of input" : JSON.stringify(answer.trim())}, and only "yes" confirms); nothing was changed`,
      'answer "yes" at the prompt, or pass --yes',
    );
  }
}

const INTERRUPTED = Symbol("interrupted");

/** One line from stdin; null at end of input; INTERRUPTED on Ctrl-C. */
function readAnswer(ctx: CommandContext): Promise<string | null | typeof INTERRUPTED> {
  return new Promise((resolve) => {
    const lines = createInterface({ input: ctx.io.stdin, terminal: false });
    const signals = ctx.io.signals;
    let settled = false;
    const settle = (value: string | null | typeof INTERRUPTED) => {
      if (settled) return;
      settled = true;
      signals?.removeListener("SIGINT", onInterrupt);
      lines.close();
      resolve(value);
    };
    const onInterrupt = () => settle(INTERRUPTED);
    signals?.on("SIGINT", onInterrupt);
    lines.once("line", (line) => settle(line));
    lines.once("close", () => settle(null));
  });
}
