/** `poison demo`: the quick start's first command, through the built bin. */
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { describe, it } from "node:test";
import { ANSI, runPoison } from "./support.js";

interface DemoDoc {
  store: string;
  kept: boolean;
  steps: { step: number; title: string }[];
  refusal: { code: string; message: string; holder: string };
  inspected: { state: string; token: string; error: { message: string } };
  audit: { action: string; actor: string; reason: string };
  free: boolean;
}

describe("poison demo", () => {
  it("tells the story: failure, poison, refusal, inspection, audited clear, success", () => {
    const run = runPoison(["demo"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, "");
    assert.doesNotMatch(run.stdout, ANSI);
    const story = [
      /1\. procedure-A starts "alter-table" on table\/1024/,
      /shard 4 fails/,
      /\$ poison list\nKEY\s+STATE.*\ntable\/1024\s+poisoned\s+procedure-A/,
      /ResourcePoisonedError: resource "table\/1024" is quarantined by a poison key held by token "procedure-A"; the run with token "procedure-B" was refused/,
      /inspect it: {2}poison show table\/1024/,
      /\$ poison show table\/1024\nkey\s+table\/1024/,
      /\$ poison clear table\/1024 --force --reason 're-ran ALTER on shard 4, schema verified'/,
      /force-cleared "table\/1024"/,
      /\$ poison history\nAT\s+AGO\s+ACTION/,
      /table\/1024 is free\./,
    ];
    let from = 0;
    for (const step of story) {
      const match = step.exec(run.stdout.slice(from));
      assert.ok(match, `the demo prints ${step} after what came before:\n${run.stdout}`);
      from += match.index + match[0].length;
    }
  });

  it("--json: one document; the temporary store is removed, or kept with --keep", () => {
    const doc = runPoison(["demo", "--json"]).json<DemoDoc>();
    assert.equal(doc.steps.length, 6);
    assert.equal(doc.refusal.code, "RESOURCE_POISONED");
    assert.equal(doc.refusal.holder, "procedure-A");
    assert.equal(doc.inspected.state, "poisoned");
    assert.match(doc.inspected.error.message, /shard 4/);
    assert.equal(doc.audit.action, "force-delete");
    assert.equal(doc.free, true);
    assert.equal(existsSync(doc.store.slice("sqlite:".length)), false);

    const kept = runPoison(["demo", "--json", "--keep"]).json<DemoDoc>();
    const file = kept.store.slice("sqlite:".length);
    try {
      assert.equal(existsSync(file), true);
      const history = runPoison(["history", "--store", kept.store, "--json"]).json<{
        entries: unknown[];
      }>();
      assert.equal(history.entries.length, 1);
    } finally {
      rmSync(dirname(file), { recursive: true, force: true });
    }
  });
});
