import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PoisonStoreClient } from "../../core/contract.js";
import { OperationPoisonedError, ResourcePoisonedError } from "../../guard/errors.js";
import { PoisonGuard } from "../../guard/guard.js";
import { openPoisonStore } from "../../open.js";
import { type CommandContextOf, defineCommand, type OptionSpecs } from "../context.js";
import { ExitCode } from "../errors.js";
import { shellQuote } from "../render.js";

const RESOURCE = "table/1024";
const REPAIR_REASON = "re-ran ALTER on shard 4, schema verified";

/** The options of `poison demo`; `run` and its helpers are typed by them. */
const DEMO_OPTIONS = {
  keep: {
    type: "boolean",
    help: "keep the temporary store and print its URL, to explore it afterwards",
  },
} as const satisfies OptionSpecs;
type DemoContext = CommandContextOf<typeof DEMO_OPTIONS>;

export const demoCommand = defineCommand({
  name: "demo",
  summary: "the product in 30 seconds, on a temporary SQLite store",
  usage: ["poison demo [--keep]"],
  description: `A short scripted story on a temporary SQLite store: an operation fails half-way, its
resource stays poisoned, the next operation is refused with the message an operator would see,
the operator inspects the key and clears it (audited), and the operation runs again. The store
is deleted afterwards unless --keep is given. It never touches your own store, so it takes no
--store, --context or --namespace.`,
  options: DEMO_OPTIONS,
  positionals: { min: 0, max: 0 },
  scope: "local",
  examples: [
    ["poison demo"],
    ["poison demo --keep", "then: poison history --store <the URL it prints>"],
    ["poison demo --json", "the story as one JSON document"],
  ],
  unknownOption(name) {
    if (["store", "context", "namespace", "timeout"].includes(name))
      return {
        message: `demo always runs on a temporary SQLite store; it takes no --${name}`,
        fix: "run `poison demo` alone",
      };
    return undefined;
  },
  async run(ctx): Promise<number> {
    const dir = mkdtempSync(join(tmpdir(), "poison-demo-"));
    const url = `sqlite:${join(dir, "demo.db")}`;
    try {
      return await story(ctx, url);
    } finally {
      if (!ctx.flag("keep")) rmSync(dir, { recursive: true, force: true });
    }
  },
});

/** One guarded operation (SPEC §5), as a control plane would run it: the guard poisons the key
 *  before the body, deletes it on success, and leaves it poisoned when the body fails. */
async function runOperation(
  store: PoisonStoreClient,
  op: { key: string; token: string; operation: string; owner: string; data?: unknown },
  body: () => Promise<void>,
): Promise<void> {
  const guard = new PoisonGuard(store, { owner: op.owner, heartbeatIntervalMs: false });
  await guard.run(
    { keys: [op.key], token: op.token, operation: op.operation, data: op.data },
    body,
  );
}

async function story(ctx: DemoContext, url: string): Promise<number> {
  const human = !ctx.global.json;
  const c = ctx.out.colour;
  const say = async (text = "") => {
    if (human) await ctx.out.line(text);
  };
  const step = (n: number, text: string) => say(`${c.bold(`${n}.`)} ${text}`);
  // The operator's view is the real CLI, run on the demo store.
  const { runCli } = await import("../cli.js");
  const poison = async (...argv: string[]) => {
    if (!human) return;
    await say(c.cyan(`$ poison ${argv.map(shellQuote).join(" ")}`));
    // The demo's own store and namespace, whatever the environment says.
    const env = { ...ctx.io.env, POISON_NAMESPACE: undefined, POISON_CONTEXT: undefined };
    await runCli([...argv, "--store", url], { ...ctx.io, env });
    await say();
  };
  const actor = ctx.actor();
  const steps: { step: number; title: string }[] = [];
  const note = (title: string) => steps.push({ step: steps.length + 1, title });

  const store = openPoisonStore(url);
  try {
    await say(
      `${c.bold("poison demo")}: an operation fails half-way; its resource stays quarantined until a person clears it.`,
    );
    await say(c.dim(`(a temporary SQLite store, ${url}; every command below runs on it)`));
    await say();

    note("procedure-A starts alter-table and poisons its resource first");
    await step(
      1,
      `procedure-A starts "alter-table" on ${RESOURCE}. Before touching anything, it writes
   the poison key, owned by its token. It alters shards 1, 2 and 3...`,
    );
    const failure = shardFailure();
    let failed = false;
    try {
      await runOperation(
        store,
        {
          key: RESOURCE,
          token: "procedure-A",
          operation: "alter-table",
          owner: "node-1:4242",
          data: {
            statement: "ALTER TABLE orders ADD COLUMN note TEXT",
            shards: [1, 2, 3, 4, 5, 6],
            done: [1, 2, 3],
          },
        },
        async () => {
          throw failure;
        },
      );
    } catch (error) {
      if (!(error instanceof OperationPoisonedError && error.cause === failure)) throw error;
      failed = true;
    }
    if (!failed) throw new Error("the demo's operation was meant to fail");

    note("shard 4 fails; the key stays, marked poisoned");
    await step(
      2,
      `...and shard 4 fails: ${c.red(`"${failure.message}"`)}. The table may be half-altered,
   so the key stays, marked poisoned. It never expires by itself.`,
    );
    await poison("list");

    note("procedure-B is refused before it touches the resource");
    await step(
      3,
      `procedure-B wants to run "add-column" on ${RESOURCE}. It is refused before it touches anything:`,
    );
    let refusal: ResourcePoisonedError | null = null;
    try {
      await runOperation(
        store,
        { key: RESOURCE, token: "procedure-B", operation: "add-column", owner: "node-2:977" },
        async () => {},
      );
    } catch (error) {
      if (!(error instanceof ResourcePoisonedError)) throw error;
      refusal = error;
    }
    if (!refusal) throw new Error("the demo's second operation was meant to be refused");
    await say(`   ${c.red(`${refusal.name}:`)} ${refusal.message.replaceAll("\n", "\n   ")}`);
    await say();

    note("the operator inspects the key");
    await step(
      4,
      "An operator is paged, and inspects the key: what ran, where, why it failed, what it kept:",
    );
    await poison("show", RESOURCE);
    const inspected = await store.inspectPoison(RESOURCE);

    note("the operator repairs the resource and clears the key, audited");
    await step(
      5,
      "The operator repairs shard 4 by hand, then clears the key, with a reason. It is audited:",
    );
    if (human) {
      await poison("clear", RESOURCE, "--force", "--reason", REPAIR_REASON, "--yes");
      await poison("history");
    } else {
      await store.forceDeletePoison(RESOURCE, { actor, reason: REPAIR_REASON });
    }
    const [audit] = (await store.auditLog({ key: RESOURCE, limit: 1 })).entries;

    note("procedure-B runs again and deletes its key when done");
    await step(
      6,
      `procedure-B runs again: it writes its key, adds the column, and deletes its key when done.`,
    );
    await runOperation(
      store,
      { key: RESOURCE, token: "procedure-B", operation: "add-column", owner: "node-2:977" },
      async () => {},
    );
    const free = (await store.getPoison(RESOURCE)) === null;
    await say(`   ${RESOURCE} is ${free ? c.green("free") : c.red("still held")}.`);
    await say();
    await say(`That is the product: a poison key never expires; a person clears it, with a trail.`);
    await say(
      c.dim(
        "Next: `poison --help`, and `poison list` on your own store (--store URL or POISON_STORE_URL).",
      ),
    );
    if (ctx.flag("keep"))
      await say(c.dim(`The demo store was kept: poison history --store ${url}`));

    if (!human) {
      await ctx.out.json({
        store: url,
        kept: ctx.flag("keep"),
        resource: RESOURCE,
        steps,
        refusal: { code: refusal.code, message: refusal.message, holder: refusal.record.token },
        inspected,
        audit: audit ?? null,
        free,
      });
    }
    return ExitCode.Ok;
  } finally {
    await store.close();
  }
}

/** The failure of the story. Its stack is short and readable on purpose: the real one would
 *  point into the CLI's own files, which says nothing to a newcomer. */
function shardFailure(): Error {
  const error = new Error("shard 4: connection reset during ALTER");
  error.stack = `Error: ${error.message}
    at alterShard (alter-table.ts:88:11)
    at alterTable (alter-table.ts:42:5)`;
  return error;
}
