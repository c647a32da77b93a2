import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sqliteDriver } from "../../src/index.js";
import { guardSuite } from "./suite.js";

const dir = mkdtempSync(join(tmpdir(), "poison-guard-sqlite-"));
const path = join(dir, "guard.db");

await guardSuite({
  name: "sqlite",
  driver: () => sqliteDriver({ path }),
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
});
