/**
 * Commands are typed by their option declarations (src/cli/context.ts): `npm run typecheck`
 * fails if a misspelt or mistyped option name below compiles (each `@ts-expect-error` must
 * find its error). Running it checks the declarations reach the command as written.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { defineCommand } from "../../src/cli/context.js";

test("a command's option declarations type its run: a misspelt name does not compile", () => {
  const command = defineCommand({
    name: "example",
    summary: "an example",
    usage: ["poison example [--prefix P] [--force]"],
    description: "",
    options: {
      prefix: { type: "string", value: "P", help: "a string option" },
      force: { type: "boolean", help: "a boolean option" },
    },
    positionals: { min: 0, max: 0 },
    examples: [],
    scope: "local",
    async run(ctx) {
      ctx.string("prefix");
      ctx.strings("prefix");
      ctx.flag("force");
      // @ts-expect-error: misspelt
      ctx.string("prefx");
      // @ts-expect-error: not declared at all
      ctx.token("token");
      // @ts-expect-error: a boolean option has no string value
      ctx.string("force");
      // @ts-expect-error: a string option is not a flag
      ctx.flag("prefix");
      return 0;
    },
  });
  assert.deepEqual(Object.keys(command.options), ["prefix", "force"]);
});
