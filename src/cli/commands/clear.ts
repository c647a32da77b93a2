import { createInterface } from "node:readline";
import type { PoisonStoreClient } from "../../core/contract.js";
import { PoisonConflictError } from "../../core/errors.js";
import type { PoisonRecord } from "../../core/records.js";
import type { Command, CommandContext } from "../context.js";
import { CliError, ExitCode, usageError } from "../errors.js";
import { age } from "../format.js";
import type { InputStream } from "../io.js";
import { printRecord, shellQuote } from "./show.js";

export const DEFAULT_CLEAR_REASON = "cleared with the holder's token";

export const clearCommand: Command = {
  name: "clear",
  summary: "remove a poison key: token-checked, or forced by an operator with a reason (audited)",
  usage:
    "poison clear KEY --token T | poison clear KEY --force --reason R [--actor A] [--yes] [--expect-token T]",
  description: `With --token T: deletes KEY only if T holds it (for example a manual quarantine you put);
on a mismatch nothing changes and the command exits with 3, showing the current holder.

With --force --reason R: the operator's recovery, once the resource has been inspected and
repaired. Deletes KEY whoever holds it, and writes an audit entry (actor, reason, time, and the
record that was removed) in the same atomic step. It works on a record whose stored value is
malformed. On a terminal it shows the record and asks for confirmation, and then removes only
the record it showed (if another token took the key meanwhile, it refuses with 3). Without a
terminal it refuses unless --yes is given. --expect-token T refuses unless T holds the key.

Clearing a key that is not present changes nothing and exits with 0.`,
  options: {
    token: { type: "string", value: "T", help: "token-checked: clear only if T holds the key" },
    force: {
      type: "boolean",
      help: "operator recovery: clear whoever holds the key (needs --reason)",
    },
    reason: { type: "string", value: "R", help: "why, for the audit log (required with --force)" },
    actor: {
      type: "string",
      value: "A",
      help: "who does it (default $POISON_ACTOR, else the OS user)",
    },
    yes: {
      type: "boolean",
      short: "y",
      help: "do not ask for confirmation (required with --force off a terminal)",
    },
    "expect-token": {
      type: "string",
      value: "T",
      help: "with --force: refuse unless T holds the key",
    },
  },
  positionals: { min: 1, max: 1 },
  examples: [
    "poison clear table/1024 --token maint-4711",
    'poison clear table/1024 --force --reason "re-ran ALTER on shard 4, schema verified"',
    'poison clear table/1024 --force --reason "OPS-12" --expect-token procedure-A --yes   # from a script',
  ],
  async run(ctx: CommandContext): Promise<number> {
    const key = ctx.args[0] as string;
    const token = ctx.string("token");
    const reason = ctx.string("reason");
    const expectToken = ctx.string("expect-token");
    if (ctx.flag("force")) {
      if (token !== undefined) {
        throw usageError(
          "--token and --force do not go together",
          "with --force, name the holder you expect with --expect-token T",
        );
      }
      if (!reason) {
        throw usageError(
          "--force needs --reason R: the audit log records why the key was cleared",
          `for example --reason "re-ran ALTER on shard 4, schema verified"`,
        );
      }
      return forceClear(ctx, key, reason, expectToken);
    }
    if (token === undefined) {
      throw usageError(
        "clear needs --token T (token-checked) or --force --reason R (operator recovery)",
        `see \`poison show ${shellQuote(key)}\` for the holder's token, and \`poison clear --help\``,
      );
    }
    if (expectToken !== undefined) {
      throw usageError(
        "--expect-token goes with --force",
        "without --force, --token already checks the holder",
      );
    }
    const actor = ctx.actor();
    const auditReason = reason || DEFAULT_CLEAR_REASON;
    return ctx.withStore(async (store) => {
      const before = await store.inspectPoison(key);
      if (!before) return nothingToClear(ctx, store, key);
      try {
        await store.deletePoison(key, token, { audit: { actor, reason: auditReason } });
      } catch (error) {
        if (error instanceof PoisonConflictError) throw await conflictError(store, error);
        throw error;
      }
      if (ctx.global.json) {
        await ctx.out.json({
          ...ctx.where(store),
          cleared: true,
          forced: false,
          actor,
          reason: auditReason,
          record: before,
        });
        return ExitCode.Ok;
      }
      await ctx.out.line(
        `${ctx.out.colour.green("cleared")} ${JSON.stringify(key)} (token ${JSON.stringify(token)}; audited as ${actor}: "${auditReason}")`,
      );
      return ExitCode.Ok;
    });
  },
};

async function forceClear(
  ctx: CommandContext,
  key: string,
  reason: string,
  expectToken: string | undefined,
): Promise<number> {
  const actor = ctx.actor();
  return ctx.withStore(async (store) => {
    const shown = await store.inspectPoison(key);
    if (!shown) return nothingToClear(ctx, store, key);
    let expectedToken = expectToken;
    if (expectToken !== undefined && shown.token !== expectToken) {
      throw await conflictError(store, new PoisonConflictError(key, expectToken, shown.token));
    }
    if (!ctx.flag("yes")) {
      if (ctx.io.stdin.isTTY !== true) {
        throw usageError(
          "refusing to force-clear without confirmation: stdin is not a terminal",
          "pass --yes to confirm from a script (and --expect-token T to clear only the holder you expect)",
        );
      }
      const err = ctx.err;
      await err.line(
        err.colour.bold(
          `About to force-clear ${JSON.stringify(key)} (store ${ctx.global.storeLabel}):`,
        ),
      );
      await printRecord(err, shown, ctx.now());
      await err.line();
      await err.line(`audit entry: force-delete by ${actor}: "${reason}"`);
      await err.write(`Clear it? Type "yes" to confirm: `);
      const answer = await readLine(ctx.io.stdin);
      if (!/^\s*(y|yes)\s*$/i.test(answer ?? "")) {
        throw new CliError(
          "NOT_CONFIRMED",
          ExitCode.Unexpected,
          "not confirmed; nothing was changed",
          'answer "yes" at the prompt, or pass --yes',
        );
      }
      // The operator confirmed the record shown: if another token took the key meanwhile, refuse.
      expectedToken ??= shown.token;
    }
    let removed: PoisonRecord | null;
    try {
      removed = await store.forceDeletePoison(key, {
        actor,
        reason,
        ...(expectedToken === undefined ? {} : { expectedToken }),
      });
    } catch (error) {
      if (error instanceof PoisonConflictError) throw await conflictError(store, error);
      throw error;
    }
    if (!removed) return nothingToClear(ctx, store, key);
    if (ctx.global.json) {
      await ctx.out.json({
        ...ctx.where(store),
        cleared: true,
        forced: true,
        actor,
        reason,
        record: removed,
      });
      return ExitCode.Ok;
    }
    const c = ctx.out.colour;
    await ctx.out.line(
      `${c.green("force-cleared")} ${JSON.stringify(key)}: it was held by token ${JSON.stringify(removed.token)} (${removed.state}${removed.operation ? `, ${removed.operation}` : ""})`,
    );
    await ctx.out.line(
      `audited: force-delete by ${actor}: ${JSON.stringify(reason)} (see \`poison history ${shellQuote(key)}\`)`,
    );
    return ExitCode.Ok;
  });
}

async function nothingToClear(
  ctx: CommandContext,
  store: PoisonStoreClient,
  key: string,
): Promise<number> {
  if (ctx.global.json) {
    await ctx.out.json({
      ...ctx.where(store),
      cleared: false,
      forced: ctx.flag("force"),
      actor: null,
      reason: null,
      record: null,
    });
  } else {
    await ctx.out.line(
      `${JSON.stringify(key)} is not present; nothing to clear (\`poison history ${shellQuote(key)}\` shows past clears)`,
    );
  }
  return ExitCode.Ok;
}

/** Exit 3, naming the current holder and what it is doing, so the operator can decide. */
export async function conflictError(
  store: PoisonStoreClient,
  error: PoisonConflictError,
): Promise<CliError> {
  // Best effort: the conflict itself is the answer; the record only makes it clearer.
  const holder = await store.inspectPoison(error.key).catch(() => null);
  const about = holder ? describeHolder(holder) : "";
  return new CliError(
    error.code,
    ExitCode.Conflict,
    `poison key ${JSON.stringify(error.key)} is held by token ${JSON.stringify(error.holder)}${about}, not ${JSON.stringify(error.token)}; nothing was changed`,
    `inspect it with \`poison show ${shellQuote(error.key)}\`; once the resource is repaired, \`poison clear ${shellQuote(error.key)} --force --reason R\``,
    { key: error.key, token: error.token, holder: error.holder, record: holder },
    { cause: error },
  );
}

function describeHolder(record: PoisonRecord): string {
  const parts: string[] = [record.state];
  if (record.operation) parts.push(`operation ${record.operation}`);
  if (record.owner) parts.push(`owner ${record.owner}`);
  parts.push(`since ${record.createdAt}, ${age(record.createdAt, new Date())} ago`);
  return ` (${parts.join(", ")})`;
}

/** One line from stdin, or null at end of input. */
function readLine(input: InputStream): Promise<string | null> {
  return new Promise((resolve) => {
    const lines = createInterface({ input, terminal: false });
    let answered = false;
    lines.once("line", (line) => {
      answered = true;
      lines.close();
      resolve(line);
    });
    lines.once("close", () => {
      if (!answered) resolve(null);
    });
  });
}
