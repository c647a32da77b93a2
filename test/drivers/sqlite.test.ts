import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openPoisonStore } from "../../src/index.js";
import { testDriver } from "../conformance/index.js";

const dir = mkdtempSync(join(tmpdir(), "poison-sqlite-"));
const url = `sqlite:${join(dir, "conformance.db")}`;

await testDriver({
  name: "sqlite",
  durable: true,
  open: (options) => openPoisonStore(url, options),
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
});
