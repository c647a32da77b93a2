import { hostname } from "node:os";
import { PoisonConflictError } from "../../core/errors.js";
import type { PutPoisonInfo } from "../../core/records.js";
import { defineCommand, type OptionSpecs } from "../context.js";
import { CliError, ExitCode, usageError } from "../errors.js";
import { printable } from "../format.js";
import { conflictError, printRecord, shellQuote } from "../render.js";

export const DEFAULT_PUT_OPERATION = "manual-quarantine";
export const DEFAULT_PUT_REASON = "manual quarantine";

/** The options of `poison put`; `run` and its helpers are typed by them. */
const PUT_OPTIONS = {
  token: { type: "string", value: "T", help: "the token that will own the key (required)" },
  reason: {
    type: "string",
    value: "R",
    help: `why, for the audit log (default "${DEFAULT_PUT_REASON}")`,
  },
  operation: {
    type: "string",
    value: "O",
    help: `what the key stands for (default ${DEFAULT_PUT_OPERATION})`,
  },
  owner: { type: "string", value: "W", help: "where it runs (default poison-cli:USER@HOST)" },
  data: { type: "string", value: "JSON", help: "JSON to keep with the key, for the repair" },
  actor: {
    type: "string",
    value: "A",
    help: "who does it (default $POISON_ACTOR, else the OS user)",
  },
} as const satisfies OptionSpecs;

export const putCommand = defineCommand({
  name: "put",
  summary: "quarantine a resource by hand (for example before maintenance), audited",
  usage: [
    "poison put KEY --token T [--reason R] [--operation O] [--owner W] [--data JSON] [--actor A]",
  ],
  description: `Writes the poison key KEY, owned by token T, so every guarded operation on the resource
is refused until the key is cleared. The put is written to the audit log with the actor and the
reason, in the same atomic step. Putting a key you already hold with the same token changes
nothing (exit 0); a key held by another token is left alone (exit 3, showing the holder).`,
  options: PUT_OPTIONS,
  positionals: { min: 1, max: 1 },
  scope: "store",
  examples: [
    ['poison put table/1024 --token maint-4711 --reason "disk replacement on shard 4"'],
    [
      'poison put region/eu-west --token ops-freeze --operation freeze --data \'{"ticket":"OPS-12"}\'',
      "with data for the repair",
    ],
    ["poison clear table/1024 --token maint-4711", "lift it afterwards"],
  ],
  async run(ctx): Promise<number> {
    const key = ctx.key() as string;
    const token = ctx.token("token");
    if (token === undefined) {
      throw usageError(
        "put needs --token T: the token that will own the key",
        "for example --token maint-4711; you will need it to clear the key",
      );
    }
    const actor = ctx.actor();
    const info: PutPoisonInfo = {
      operation: ctx.string("operation") ?? DEFAULT_PUT_OPERATION,
      owner: ctx.string("owner") ?? `poison-cli:${actor}@${hostname()}`,
      audit: { actor, reason: ctx.string("reason") ?? DEFAULT_PUT_REASON },
    };
    const data = ctx.string("data");
    if (data !== undefined) {
      try {
        info.data = JSON.parse(data);
      } catch (error) {
        throw usageError(
          `--data is not valid JSON (${(error as Error).message})`,
          `for example --data '{"ticket":"OPS-12"}'`,
        );
      }
    }
    return ctx.withStore(async (store) => {
      const before = await store.inspectPoison(key);
      try {
        await store.tryPutPoison(key, token, info);
      } catch (error) {
        if (error instanceof PoisonConflictError) throw await conflictError(ctx, store, error);
        throw error;
      }
      const record = await store.inspectPoison(key);
      if (!record) {
        throw new CliError(
          "UNEXPECTED",
          ExitCode.Unexpected,
          `poison key ${JSON.stringify(key)} vanished right after it was put`,
          `another client cleared it at once; see \`${ctx.suggest(`history ${shellQuote(key)}`)}\``,
        );
      }
      const changed = !(before && before.token === token);
      if (ctx.global.json) {
        await ctx.out.json({
          ...ctx.where(store),
          put: changed,
          actor,
          reason: info.audit?.reason,
          record,
        });
        return ExitCode.Ok;
      }
      const c = ctx.out.colour;
      await ctx.out.line(
        changed
          ? `${c.green("put")} ${JSON.stringify(key)}: quarantined, held by token ${JSON.stringify(token)} (audited as ${printable(actor)})`
          : `${JSON.stringify(key)} is already held by token ${JSON.stringify(token)}; nothing changed`,
      );
      await ctx.out.line();
      await printRecord(ctx.out, record, ctx.now());
      return ExitCode.Ok;
    });
  },
});
