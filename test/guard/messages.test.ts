/** The commands a guard error prints are meant to be copied as they are. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DEFAULT_NAMESPACE,
  OperationPoisonedError,
  type PoisonRecord,
  ResourcePoisonedError,
} from "../../src/index.js";

const record: PoisonRecord = {
  key: "table/1024",
  token: "proc-42",
  state: "poisoned",
  createdAt: "2030-01-01T00:00:00.000Z",
  updatedAt: "2030-01-01T00:01:00.000Z",
  operation: "alter-table",
  owner: "host-a:1",
};

describe("guard errors: the CLI commands they print", () => {
  it("name no namespace for a store in the default one", () => {
    const refused = new ResourcePoisonedError(record, "proc-99", "held-by-another-token");
    assert.match(refused.message, /poison show table\/1024\n/);
    assert.doesNotMatch(refused.message, /--namespace/);
    const explicit = new ResourcePoisonedError(
      record,
      null,
      "held-by-another-token",
      DEFAULT_NAMESPACE,
    );
    assert.doesNotMatch(explicit.message, /--namespace/);
  });

  it("name the store's namespace, shell-quoted, when it is not the default", () => {
    const refused = new ResourcePoisonedError(
      record,
      "proc-99",
      "held-by-another-token",
      "/team a/",
    );
    assert.match(refused.message, /poison show table\/1024 --namespace '\/team a\/'\n/);
    assert.match(
      refused.message,
      /poison clear table\/1024 --token proc-42 --reason "what was repaired" --namespace '\/team a\/'\n/,
    );
    const failed = new OperationPoisonedError({
      keys: ["table/1024"],
      token: "proc-42",
      operation: "alter-table",
      attempts: 1,
      cause: new Error("shard 4 did not answer"),
      records: [record],
      namespace: "/billing/",
    });
    assert.match(failed.message, /poison show table\/1024 --namespace \/billing\//);
    assert.match(
      failed.message,
      /poison clear table\/1024 --token proc-42 --reason "what was repaired" --namespace \/billing\//,
    );
  });

  it("name the store, password redacted, when its location is a URL", () => {
    const refused = new ResourcePoisonedError(record, "proc-99", "held-by-another-token", {
      location: "postgres://ops:***@db:5432/control",
      namespace: "/team/",
    });
    assert.match(
      refused.message,
      /poison show table\/1024 --store 'postgres:\/\/ops:\*\*\*@db:5432\/control' --namespace \/team\/\n/,
    );
    assert.doesNotMatch(refused.message, /add --store URL/);
    const inMemory = new ResourcePoisonedError(record, "proc-99", "held-by-another-token", {
      location: "memory:",
    });
    assert.doesNotMatch(inMemory.message, /--store memory/, "no other process can reach memory:");
  });

  it("list every refusing key of a multi-key operation, and the per-operation command", () => {
    const second: PoisonRecord = { ...record, key: "table/1024/shard/2" };
    const refused = new ResourcePoisonedError(record, "proc-99", "held-by-another-token", {
      holders: [record, second],
    });
    assert.equal(refused.holders.length, 2);
    assert.match(refused.message, /2 of the resources are quarantined/);
    assert.match(refused.message, /"table\/1024": held by token "proc-42"/);
    assert.match(refused.message, /"table\/1024\/shard\/2": held by token "proc-42"/);
    assert.match(refused.message, /poison clear --all-of-token proc-42 --force --reason/);
  });

  it("quote a key with control characters so printing it cannot forge the terminal", () => {
    const hostile: PoisonRecord = { ...record, key: "k\u001b[2J\rfake" };
    const refused = new ResourcePoisonedError(hostile, "proc-99", "held-by-another-token");
    assert.match(refused.message, /poison show \$'k\\u001b\[2J\\rfake'/);
    assert.ok(!(refused.message.split("inspect it")[1] ?? "").includes("\u001b"));
  });
});
