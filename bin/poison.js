#!/usr/bin/env node
// The `poison` command (see docs/CLI.md). The code lives in src/cli/ and runs from the build.
let cli;
try {
  cli = await import("../dist/src/cli/main.js");
} catch (error) {
  if (error?.code !== "ERR_MODULE_NOT_FOUND") throw error;
  process.stderr.write(
    "poison: error: the CLI is not built (dist/ is missing)\n  fix: run `npm run build` in the poison-store checkout\n",
  );
  process.exit(1);
}
await cli.main();
