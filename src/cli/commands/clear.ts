import type { PoisonStoreClient } from "../../core/contract.js";
import { HolderAliveError, InvalidArgumentError, PoisonConflictError } from "../../core/errors.js";
import { aliveForRefusal, DEFAULT_CLOCK_SKEW_MS, describeLiveness } from "../../core/liveness.js";
import type { PoisonRecord } from "../../core/records.js";
import { type CommandContextOf, defineCommand, type OptionSpecs } from "../context.js";
import { CliError, ExitCode, usageError } from "../errors.js";
import { printable, StreamingTable } from "../format.js";
import { forEachRecord } from "../listing.js";
import { confirm } from "../prompt.js";
import { conflictError, listColumns, livenessJson, printRecord, shellQuote } from "../render.js";

export const DEFAULT_CLEAR_REASON = "cleared with the holder's token";

/** Keys `--all-of-token` gathers at most: no backend removes more in one atomic step. */
const MAX_ATOMIC_KEYS = 1000;

/** The options of `poison clear`; `run` and its helpers are typed by them. */
const CLEAR_OPTIONS = {
  token: {
    type: "string",
    value: "T",
    help: "clear only if T holds the key (the holder's own clear)",
  },
  force: {
    type: "boolean",
    help: "operator recovery: clear whoever holds the key (needs --reason)",
  },
  reason: {
    type: "string",
    value: "R",
    help: "why, for the audit log (required with --force and for a poisoned key)",
  },
  "expect-token": {
    type: "string",
    value: "T",
    help: "with --force: refuse unless T holds the key",
  },
  "all-of-token": {
    type: "string",
    value: "T",
    help: "with --force: every key token T holds, in one atomic step",
  },
  prefix: {
    type: "string",
    value: "P",
    help: "with --all-of-token: only its keys that start with P",
  },
  "even-if-alive": {
    type: "boolean",
    help: "clear even a live holder's key (its run loses the key and aborts)",
  },
  yes: {
    type: "boolean",
    short: "y",
    help: "do not ask for confirmation (required off a terminal)",
  },
  actor: {
    type: "string",
    value: "A",
    help: "who does it, for the audit log (default $POISON_ACTOR, else the OS user)",
  },
} as const satisfies OptionSpecs;
type ClearContext = CommandContextOf<typeof CLEAR_OPTIONS>;

export const clearCommand = defineCommand({
  name: "clear",
  summary: "remove a poison key: with its token, or forced by an operator with a reason (audited)",
  usage: [
    "poison clear KEY --token T [--reason R] [--even-if-alive] [--yes] [--actor A]",
    "poison clear KEY --force --reason R [--expect-token T] [--even-if-alive] [--yes] [--actor A]",
    "poison clear --all-of-token T --force --reason R [--prefix P] [--even-if-alive] [--yes] [--actor A]",
  ],
  description: `With --token T: deletes KEY only if T holds it (for example a manual quarantine you put); on
a mismatch nothing changes and the command exits with 3, showing the current holder. Every such
clear is audited. A key in state poisoned is a failed operation's: clearing it is a recovery, so
it needs --reason and a confirmation, as --force does.

With --force --reason R: the operator's recovery, once the resource has been inspected and
repaired. Deletes KEY whoever holds it, and writes an audit entry (actor, reason, time, and the
record removed) in the same atomic step. It works on a record whose stored value is malformed.
--expect-token T refuses (exit 3) unless T holds the key.

With --all-of-token T --force --reason R: removes every key token T holds (one operation's keys,
narrowed by --prefix P) in one atomic audited step: all or none. More keys than one atomic step
of the backend takes is an error (narrow with --prefix), never a silent split.

A holder whose heartbeat is recent is live: the operation is most likely still running, so
clearing its key would let a second operation onto the resource while the first still works on
it. Every form refuses a live holder with exit 6, unless --even-if-alive (the run then loses
its key and aborts; the audit entry records the override).

On a terminal it shows what it will remove, with the holder's liveness, and asks for
confirmation: only the exact answer "yes" confirms ("y" declines); Ctrl-C aborts (exit 130).
Without a terminal it refuses unless --yes is given. After a "yes" it removes only what it
showed: if another token took the key meanwhile, it refuses with 3. Clearing a key that is not
present changes nothing and exits with 0.`,
  options: CLEAR_OPTIONS,
  positionals: { min: 0, max: 1 },
  scope: "store",
  examples: [
    ["poison clear table/1024 --token maint-4711", "lift your own quarantine"],
    ['poison clear table/1024 --force --reason "re-ran ALTER on shard 4, schema verified"'],
    [
      'poison clear table/1024 --force --reason "OPS-12" --expect-token procedure-A --yes',
      "from a script",
    ],
    [
      'poison clear --all-of-token procedure-A --force --reason "OPS-12: restored shards"',
      "one operation's keys",
    ],
  ],
  async run(ctx): Promise<number> {
    const key = ctx.key();
    const token = ctx.token("token");
    const reason = ctx.string("reason");
    const expectToken = ctx.token("expect-token");
    const allOfToken = ctx.token("all-of-token");
    if (allOfToken !== undefined) {
      if (key !== undefined)
        throw usageError(
          "--all-of-token clears every key of a token: it takes no KEY",
          "drop KEY, or drop --all-of-token to clear one key",
        );
      if (token !== undefined || expectToken !== undefined)
        throw usageError(
          "--all-of-token T already names the holder: it takes no --token or --expect-token",
          "drop --token/--expect-token",
        );
      if (!ctx.flag("force"))
        throw usageError(
          "--all-of-token needs --force --reason R: it is an operator's audited recovery",
          `for example ${ctx.suggest(`clear --all-of-token ${shellQuote(allOfToken)} --force --reason ${shellQuote("what you repaired")}`)}`,
        );
      return clearAllOfToken(ctx, allOfToken, needReason(reason, "--all-of-token"));
    }
    if (key === undefined)
      throw usageError("clear needs KEY (or --all-of-token T)", "see `poison clear --help`");
    if (ctx.string("prefix") !== undefined)
      throw usageError("--prefix goes with --all-of-token", "drop --prefix when clearing one key");
    if (ctx.flag("force")) {
      if (token !== undefined) {
        throw usageError(
          "--token and --force do not go together",
          "with --force, name the holder you expect with --expect-token T",
        );
      }
      return forceClear(ctx, key, needReason(reason, "--force"), expectToken);
    }
    if (token === undefined) {
      throw usageError(
        "clear needs --token T (the holder's clear) or --force --reason R (an operator's recovery)",
        `see the holder's token with \`${ctx.suggest(`show ${shellQuote(key)}`)}\`, and \`poison clear --help\``,
      );
    }
    if (expectToken !== undefined) {
      throw usageError(
        "--expect-token goes with --force",
        "without --force, --token already checks the holder",
      );
    }
    return tokenClear(ctx, key, token, reason);
  },
});

function needReason(reason: string | undefined, what: string): string {
  if (reason) return reason;
  throw usageError(
    `${what} needs --reason R: the audit log records why the key was cleared`,
    `for example --reason "re-ran ALTER on shard 4, schema verified"`,
  );
}

/** The holder's clear: token-checked, audited; a poisoned key's is a recovery. */
async function tokenClear(
  ctx: ClearContext,
  key: string,
  token: string,
  reason: string | undefined,
): Promise<number> {
  const actor = ctx.actor();
  return ctx.withStore(async (store) => {
    await ctx.checkStorage(store);
    const before = await store.inspectPoison(key);
    if (!before) return nothingToClear(ctx, store, key);
    if (before.token !== token)
      throw await conflictError(
        ctx,
        store,
        new PoisonConflictError(key, token, before.token, before),
      );
    if (before.state === "poisoned" && !reason) {
      throw usageError(
        `poison key ${JSON.stringify(key)} is poisoned (its operation failed): clearing it is a recovery, audited with a reason`,
        `once the resource is repaired: ${ctx.suggest(`clear ${shellQuote(key)} --token ${shellQuote(token)} --reason ${shellQuote("what you repaired")}`)}`,
      );
    }
    // The token-checked delete has no liveness condition of its own: the check is made on the
    // record just read (docs/CLI.md says so). A live holder's own token is most often a script
    // run by mistake while the operation still works.
    refuseIfAlive(
      ctx,
      before,
      `clear ${shellQuote(key)} --token ${shellQuote(token)}${reason ? ` --reason ${shellQuote(reason)}` : ""}`,
    );
    const auditReason = reason || DEFAULT_CLEAR_REASON;
    if (before.state === "poisoned") {
      await confirm(
        ctx,
        async () => {
          await showAbout(
            ctx,
            `About to clear poisoned key ${JSON.stringify(key)} with its holder's token (a recovery)`,
            before,
          );
          await ctx.err.line(
            `audit entry: delete by ${printable(actor)}: ${JSON.stringify(auditReason)}`,
          );
        },
        "Clear it?",
        {
          what: "clear a poisoned key",
          fix: "pass --yes to confirm from a script",
        },
      );
    }
    try {
      await store.deletePoison(key, token, { audit: { actor, reason: auditReason } });
    } catch (error) {
      if (error instanceof PoisonConflictError) throw await conflictError(ctx, store, error);
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
      `${ctx.out.colour.green("cleared")} ${JSON.stringify(key)} (token ${JSON.stringify(token)}; audited as ${printable(actor)}: ${JSON.stringify(auditReason)})`,
    );
    return ExitCode.Ok;
  });
}

async function forceClear(
  ctx: ClearContext,
  key: string,
  reason: string,
  expectToken: string | undefined,
): Promise<number> {
  const actor = ctx.actor();
  const evenIfAlive = ctx.flag("even-if-alive");
  const again = `clear ${shellQuote(key)} --force --reason ${shellQuote(reason)}${expectToken === undefined ? "" : ` --expect-token ${shellQuote(expectToken)}`}`;
  return ctx.withStore(async (store) => {
    await ctx.checkStorage(store);
    const shown = await store.inspectPoison(key);
    if (!shown) return nothingToClear(ctx, store, key);
    let expectedToken = expectToken;
    if (expectToken !== undefined && shown.token !== expectToken) {
      throw await conflictError(
        ctx,
        store,
        new PoisonConflictError(key, expectToken, shown.token, shown),
      );
    }
    refuseIfAlive(ctx, shown, again);
    const wasAlive = aliveForRefusal(shown, ctx.now(), DEFAULT_CLOCK_SKEW_MS);
    await confirm(
      ctx,
      async () => {
        await showAbout(ctx, `About to force-clear ${JSON.stringify(key)}`, shown);
        await ctx.err.line(
          `audit entry: force-delete by ${printable(actor)}: ${JSON.stringify(reason)}`,
        );
      },
      "Clear it?",
      {
        what: "force-clear",
        fix: "pass --yes to confirm from a script (and --expect-token T to clear only the holder you expect)",
      },
    );
    // The operator confirmed the record shown: if another token took the key meanwhile, refuse.
    if (!ctx.flag("yes")) expectedToken ??= shown.token;
    let removed: PoisonRecord | null;
    try {
      removed = await store.forceDeletePoison(key, {
        actor,
        reason,
        evenIfAlive,
        ...(expectedToken === undefined ? {} : { expectedToken }),
      });
    } catch (error) {
      if (error instanceof PoisonConflictError) throw await conflictError(ctx, store, error);
      if (error instanceof HolderAliveError) throw holderAlive(ctx, [error.record], again, error);
      throw error;
    }
    if (!removed) return nothingToClear(ctx, store, key);
    if (ctx.global.json) {
      await ctx.out.json({
        ...ctx.where(store),
        cleared: true,
        forced: true,
        evenIfAlive: evenIfAlive && wasAlive,
        actor,
        reason,
        record: removed,
      });
      return ExitCode.Ok;
    }
    const c = ctx.out.colour;
    await ctx.out.line(
      `${c.green("force-cleared")} ${JSON.stringify(key)}: it was held by token ${JSON.stringify(removed.token)} (${removed.state}${removed.operation ? `, ${printable(removed.operation)}` : ""})`,
    );
    if (evenIfAlive && wasAlive)
      await ctx.out.line(
        c.yellow("its holder was live: its run loses the key and aborts (PoisonLostError)"),
      );
    await ctx.out.line(
      `audited: force-delete by ${printable(actor)}: ${JSON.stringify(reason)} (see \`${ctx.suggest(`history ${shellQuote(key)}`)}\`)`,
    );
    return ExitCode.Ok;
  });
}

/** Every key of one token, in one atomic audited step: all or none, never split. */
async function clearAllOfToken(ctx: ClearContext, token: string, reason: string): Promise<number> {
  const actor = ctx.actor();
  const evenIfAlive = ctx.flag("even-if-alive");
  const prefix = ctx.string("prefix");
  const filters = { token, ...(prefix === undefined ? {} : { prefix }) };
  const about = `token ${JSON.stringify(token)}${prefix === undefined ? "" : ` under prefix ${JSON.stringify(prefix)}`}`;
  const again = `clear --all-of-token ${shellQuote(token)}${prefix === undefined ? "" : ` --prefix ${shellQuote(prefix)}`} --force --reason ${shellQuote(reason)}`;
  return ctx.withStore(async (store) => {
    await ctx.checkStorage(store);
    const held: PoisonRecord[] = [];
    let count = 0;
    await forEachRecord(store, filters, async (records) => {
      count += records.length;
      for (const record of records) if (held.length < MAX_ATOMIC_KEYS) held.push(record);
    });
    if (count === 0) {
      if (ctx.global.json) {
        await ctx.out.json({
          ...ctx.where(store),
          cleared: false,
          forced: true,
          token,
          prefix: prefix ?? null,
          actor: null,
          reason: null,
          records: [],
          count: 0,
          remaining: 0,
        });
      } else {
        await ctx.out.line(
          `${about} holds no poison keys ${ctx.searched(store)}${ctx.neverWrittenNote()}; nothing to clear`,
        );
      }
      return ExitCode.Ok;
    }
    if (count > held.length)
      throw tooMany(ctx, about, count, MAX_ATOMIC_KEYS, store.backend, token);
    const now = ctx.now();
    const alive = held.filter((record) => aliveForRefusal(record, now, DEFAULT_CLOCK_SKEW_MS));
    if (alive.length > 0 && !evenIfAlive) throw holderAlive(ctx, alive, again);
    await confirm(
      ctx,
      async () => {
        await ctx.err.line(
          ctx.err.colour.bold(
            `About to force-clear ${count} key${count === 1 ? "" : "s"} of ${about}, in one atomic step (store ${ctx.global.storeLabel}, namespace ${store.namespace}):`,
          ),
        );
        const table = new StreamingTable<PoisonRecord>(ctx.err, listColumns(now));
        await table.write(held);
        await table.end();
        if (alive.length > 0)
          await ctx.err.line(
            ctx.err.colour.yellow(
              `${alive.length} of them held by a live operation: its run loses them and aborts`,
            ),
          );
        await ctx.err.line(
          `audit entries: force-delete by ${printable(actor)}: ${JSON.stringify(reason)}`,
        );
      },
      "Clear them?",
      { what: "force-clear", fix: "pass --yes to confirm from a script" },
    );
    let removed: PoisonRecord[];
    try {
      removed = await store.forceDeletePoisons(
        held.map((record) => record.key),
        { actor, reason, expectedToken: token, evenIfAlive },
      );
    } catch (error) {
      if (error instanceof PoisonConflictError) throw await conflictError(ctx, store, error);
      if (error instanceof HolderAliveError) throw holderAlive(ctx, [error.record], again, error);
      if (error instanceof InvalidArgumentError && error.argument === "keys") {
        const max = /at most (\d+)/.exec(error.reason)?.[1];
        if (max !== undefined)
          throw tooMany(ctx, about, count, Number(max), store.backend, token, error);
      }
      throw error;
    }
    // The step removed what was listed; a key the token took after the listing is not among
    // them. Say so rather than claim the token holds nothing now.
    const left = await store.listPoisons({ ...filters, limit: 1 });
    const remaining = left.records.length;
    if (ctx.global.json) {
      await ctx.out.json({
        ...ctx.where(store),
        cleared: removed.length > 0,
        forced: true,
        token,
        prefix: prefix ?? null,
        evenIfAlive: evenIfAlive && alive.length > 0,
        actor,
        reason,
        records: removed,
        count: removed.length,
        remaining,
      });
    } else {
      const c = ctx.out.colour;
      await ctx.out.line(
        `${c.green("force-cleared")} ${removed.length} key${removed.length === 1 ? "" : "s"} of ${about} in one atomic step: ${removed.map((r) => JSON.stringify(r.key)).join(", ")}`,
      );
      await ctx.out.line(
        `audited: force-delete by ${printable(actor)}: ${JSON.stringify(reason)} (see \`${ctx.suggest("history")}\`)`,
      );
    }
    if (remaining > 0) {
      await ctx.err.line(
        `poison: warning: ${about} took more keys after they were listed; they were not cleared: \`${ctx.suggest(`list --token ${shellQuote(token)}`)}\``,
      );
    }
    return ExitCode.Ok;
  });
}

/** Print the record about to be removed, with where it is and whether its holder lives. */
async function showAbout(ctx: ClearContext, title: string, record: PoisonRecord): Promise<void> {
  const err = ctx.err;
  await err.line(err.colour.bold(`${title} (store ${ctx.global.storeLabel}):`));
  await printRecord(err, record, ctx.now());
  await err.line();
  if (aliveForRefusal(record, ctx.now(), DEFAULT_CLOCK_SKEW_MS))
    await err.line(
      err.colour.yellow("its holder is live (--even-if-alive): its run loses the key and aborts"),
    );
}

/** Exit 6 before anything changes, when `record`'s holder is live and no override was given. */
function refuseIfAlive(ctx: ClearContext, record: PoisonRecord, again: string): void {
  if (ctx.flag("even-if-alive")) return;
  if (aliveForRefusal(record, ctx.now(), DEFAULT_CLOCK_SKEW_MS))
    throw holderAlive(ctx, [record], again);
}

/** Exit 6: the last heartbeat, the owner, and the way on. */
function holderAlive(
  ctx: ClearContext,
  records: readonly PoisonRecord[],
  again: string,
  cause?: HolderAliveError,
): CliError {
  const now = ctx.now();
  const first = records[0] as PoisonRecord;
  const describe = (record: PoisonRecord) =>
    `${JSON.stringify(record.key)} (${describeLiveness(record, now)}; owner ${record.owner === undefined ? "unknown" : JSON.stringify(record.owner)}, token ${JSON.stringify(record.token)}${record.operation ? `, operation ${JSON.stringify(record.operation)}` : ""})`;
  const shown = records.slice(0, 5).map(describe).join(", ");
  const more = records.length > 5 ? ` and ${records.length - 5} more` : "";
  const subject =
    records.length === 1
      ? `poison key ${shown} is held by a live operation`
      : `${records.length} keys are held by a live operation: ${shown}${more}`;
  return new CliError(
    "HOLDER_ALIVE",
    ExitCode.HolderAlive,
    `${subject}; stop the operation first, or add --even-if-alive (its run then loses the key and aborts); nothing was changed`,
    `once you are sure, \`${ctx.suggest(`${again} --even-if-alive`)}\``,
    {
      key: first.key,
      holder: first.token,
      record: first,
      liveness: livenessJson(first, now),
      keys: records.map((r) => r.key),
    },
    { cause },
  );
}

function tooMany(
  ctx: ClearContext,
  about: string,
  count: number,
  max: number,
  backend: string,
  token: string,
  cause?: unknown,
): CliError {
  return new CliError(
    "TOO_MANY_KEYS",
    ExitCode.Usage,
    `${about} holds ${count} keys, more than one atomic step of the ${backend} backend removes (at most ${max}); nothing was removed (the keys are never split silently)`,
    `clear them in groups that fit one step each, with --prefix P: \`${ctx.suggest(`clear --all-of-token ${shellQuote(token)} --prefix P --force --reason R`)}\`; \`${ctx.suggest(`list --token ${shellQuote(token)}`)}\` shows them`,
    { token, count, max },
    { cause },
  );
}

async function nothingToClear(
  ctx: ClearContext,
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
      `${JSON.stringify(key)} is not present ${ctx.searched(store)}${ctx.neverWrittenNote()}; nothing to clear (\`${ctx.suggest(`history ${shellQuote(key)}`)}\` shows past clears)`,
    );
  }
  return ExitCode.Ok;
}
