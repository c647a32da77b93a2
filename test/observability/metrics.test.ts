/**
 * collectMetrics: scraped and parsed, with the values expected for a store whose every record
 * and time is known; the scan's cache and bound; an unreachable store (never 0, never absent
 * silently); your own registry; /metrics through the admin service. The example alerting rules
 * of docs/ are checked by promtool (check rules, and the unit tests of alerts.test.yml) when it
 * is installed (.ci/run installs it), else by parsing.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Counter, Registry } from "prom-client";
import {
  collectMetrics,
  createPoisonAdmin,
  createPoisonStore,
  markCleanPoisons,
  memoryDriver,
  openPoisonStore,
  PoisonGuard,
  type PoisonStoreClient,
} from "../../src/index.js";
import { ROOT } from "../cli/support.js";

/** The text exposition as `name{label="v",…}` (labels sorted) → value. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `a sample line: ${line}`);
    const labels = [...(match[2] ?? "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, name, value]) => `${name}="${value}"`)
      .sort();
    const value = match[3] === "NaN" ? Number.NaN : Number(match[3]);
    samples.set(`${match[1]}${labels.length > 0 ? `{${labels.join(",")}}` : ""}`, value);
  }
  return samples;
}

function sample(samples: Map<string, number>, name: string): number | undefined {
  return samples.get(name);
}

/** A clock the test moves. */
function clockAt(iso: string) {
  let now = Date.parse(iso);
  return {
    now: () => new Date(now),
    set: (next: string) => {
      now = Date.parse(next);
    },
  };
}

describe("collectMetrics", () => {
  it("reports the values expected for a known store", async () => {
    const clock = clockAt("2030-01-01T00:00:00.000Z");
    const store = openPoisonStore("memory:", { clock: clock.now });
    const metrics = await collectMetrics(store, { intervalMs: 0, now: clock.now });
    try {
      // Two keys poisoned at 00:00 and 01:00, three in progress: one live, two stale.
      await store.tryPutPoison("p/1", "t1");
      await store.markPoisoned("p/1", "t1", new Error("half-applied"));
      clock.set("2030-01-01T00:01:00.000Z");
      await store.tryPutPoison("p/2", "t2");
      await store.markPoisoned("p/2", "t2", new Error("half-applied"));
      await store.tryPutPoison("i/stale-heartbeat", "t3", { heartbeatIntervalMs: 1000 });
      await store.tryPutPoison("i/no-heartbeat", "t4");
      clock.set("2030-01-01T00:02:00.000Z");
      await store.tryPutPoison("i/live", "t5", { heartbeatIntervalMs: 60_000 });
      // Guarded runs: one succeeds, one is refused (p/1 is poisoned), one poisons its key.
      const guard = new PoisonGuard(store, { heartbeatIntervalMs: false });
      await guard.run({ keys: ["g/ok"], token: "g1" }, async () => "done");
      await assert.rejects(
        guard.run({ keys: ["p/1"], token: "g2" }, async () => "never"),
        {
          code: "RESOURCE_POISONED",
        },
      );
      await assert.rejects(
        guard.run({ keys: ["g/clean"], token: "g3" }, async () => {
          throw markCleanPoisons(new Error("nothing changed"));
        }),
      );
      await assert.rejects(
        guard.run({ keys: ["g/broken"], token: "g4" }, async () => {
          throw new Error("half-way");
        }),
        { code: "OPERATION_POISONED" },
      );
      clock.set("2030-01-01T00:03:00.000Z");

      let samples = parse(await metrics.metrics());
      assert.equal(sample(samples, 'poison_keys{state="poisoned"}'), 3);
      assert.equal(sample(samples, 'poison_keys{state="in-progress"}'), 3);
      assert.equal(sample(samples, 'poison_keys{state="stale"}'), 2);
      assert.equal(sample(samples, "poison_oldest_poisoned_seconds"), 180);
      assert.equal(sample(samples, "poison_store_up"), 1);
      assert.equal(sample(samples, "poison_keys_scan_truncated"), 0);
      assert.equal(sample(samples, 'poison_guard_runs_total{outcome="succeeded"}'), 1);
      assert.equal(sample(samples, 'poison_guard_runs_total{outcome="refused"}'), 1);
      assert.equal(sample(samples, 'poison_guard_runs_total{outcome="failed"}'), 1);
      assert.equal(sample(samples, 'poison_guard_runs_total{outcome="poisoned"}'), 1);
      assert.equal(sample(samples, 'poison_guard_runs_total{outcome="lost"}'), 0);
      assert.equal(sample(samples, "poison_force_deletes_total"), 0);
      const count = (op: string, outcome: string) =>
        sample(
          samples,
          `poison_store_call_duration_seconds_count{backend="memory",op="${op}",outcome="${outcome}"}`,
        );
      assert.equal(count("markPoisoned", "ok"), 2);
      assert.equal(count("tryPutPoison", "ok"), 5);
      assert.equal(count("tryPutPoisons", "POISON_CONFLICT"), 1, "the refused run's put");
      assert.equal(count("tryPutPoisons", "ok"), 3);
      assert.equal(
        sample(
          samples,
          'poison_store_call_duration_seconds_bucket{backend="memory",le="+Inf",op="markPoisoned",outcome="ok"}',
        ),
        2,
      );

      // A forced delete, by any process, is counted from the audit log at the next scan.
      await store.forceDeletePoison("i/no-heartbeat", { actor: "olga", reason: "dead holder" });
      samples = parse(await metrics.metrics());
      assert.equal(sample(samples, "poison_force_deletes_total"), 1);
      assert.equal(sample(samples, 'poison_keys{state="in-progress"}'), 2);
      assert.equal(sample(samples, 'poison_keys{state="stale"}'), 1);
      assert.equal(count("forceDeletePoison", "ok"), 1);
    } finally {
      metrics.close();
      await store.close();
    }
  });

  it("scans at most once per interval, at most maxKeys keys, and says when it stopped early", async () => {
    const store = openPoisonStore("memory:");
    await store.tryPutPoisons(["a", "b", "c", "d", "e"], "t");
    let lists = 0;
    store.onCall((call) => {
      if (call.op === "listPoisons") lists++;
    });
    const metrics = await collectMetrics(store, { intervalMs: 60_000, maxKeys: 2 });
    try {
      const [first] = await Promise.all([metrics.metrics(), metrics.metrics()]);
      await metrics.metrics();
      assert.equal(lists, 1, "concurrent and later scrapes share one scan");
      const samples = parse(first);
      assert.equal(sample(samples, 'poison_keys{state="in-progress"}'), 2);
      assert.equal(sample(samples, "poison_keys_scan_truncated"), 1);
      await metrics.refresh();
      assert.equal(lists, 2, "refresh() scans now");
    } finally {
      metrics.close();
      await store.close();
    }
  });

  it("an unreachable store reads as unknown (NaN) with poison_store_up 0, never as 0 keys", async () => {
    const driver = memoryDriver();
    const store = createPoisonStore({
      ...driver,
      async list() {
        throw new Error("connection refused");
      },
    });
    const errors: unknown[] = [];
    const metrics = await collectMetrics(store, { onError: (e) => errors.push(e) });
    try {
      const samples = parse(await metrics.metrics());
      assert.equal(sample(samples, "poison_store_up"), 0);
      assert.ok(Number.isNaN(sample(samples, 'poison_keys{state="poisoned"}')));
      assert.ok(Number.isNaN(sample(samples, "poison_oldest_poisoned_seconds")));
      assert.equal(errors.length, 1);
      assert.match(String(errors[0]), /connection refused/);
    } finally {
      metrics.close();
      await store.close();
    }
  });

  it("registers into your own registry, beside your metrics, and close() takes only its own", async () => {
    const registry = new Registry();
    new Counter({ name: "my_requests_total", help: "mine", registers: [registry] });
    const store: PoisonStoreClient = openPoisonStore("memory:");
    const metrics = await collectMetrics(store, { registry });
    assert.equal(metrics.registry, registry);
    assert.equal(metrics.contentType, registry.contentType);
    let text = await registry.metrics();
    assert.match(text, /^my_requests_total 0$/m);
    assert.match(text, /^poison_keys\{state="poisoned"\} 0$/m);
    await assert.rejects(collectMetrics(store, { registry }), /already been registered/);
    metrics.close();
    text = await registry.metrics();
    assert.match(text, /my_requests_total/);
    assert.doesNotMatch(text, /poison_/);
    await store.close();
  });

  it("is served at /metrics by the admin service, with the access it is given", async () => {
    const store = openPoisonStore("memory:");
    await store.tryPutPoison("k", "t");
    await store.markPoisoned("k", "t", new Error("x"));
    const metrics = await collectMetrics(store);
    const admin = createPoisonAdmin(store, {
      anonymous: { role: "viewer", actor: "test" },
      metrics: {
        contentType: metrics.contentType,
        metrics: () => metrics.metrics(),
        access: "public",
      },
    });
    try {
      const response = await admin.fetch(new Request("http://127.0.0.1/metrics"));
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
      assert.equal(sample(parse(await response.text()), 'poison_keys{state="poisoned"}'), 1);
    } finally {
      await admin.close();
      metrics.close();
      await store.close();
    }
  });
});

describe("the example alerting rules (docs/prometheus/poison-alerts.yml)", () => {
  const rules = join(ROOT, "docs", "prometheus", "poison-alerts.yml");
  const promtool = process.env.POISON_PROMTOOL ?? "promtool";
  const found = spawnSync(promtool, ["--version"], { encoding: "utf8" });
  const hasPromtool = found.status === 0;

  it("pass `promtool check rules` and their unit tests (`promtool test rules`)", (t) => {
    if (!hasPromtool) {
      if (process.env.POISON_REQUIRE_ALL === "1")
        assert.fail(`promtool is required (POISON_REQUIRE_ALL=1) but ${promtool} does not run`);
      t.skip("promtool is not installed (Debian's prometheus package; .ci/run installs it)");
      return;
    }
    const check = spawnSync(promtool, ["check", "rules", rules], { encoding: "utf8" });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /SUCCESS: 3 rules found/);
    const unit = spawnSync(promtool, ["test", "rules", "alerts.test.yml"], {
      cwd: join(ROOT, "test", "observability"),
      encoding: "utf8",
    });
    assert.equal(unit.status, 0, unit.stdout + unit.stderr);
  });

  it("parse: each alert has an expression over metrics collectMetrics exports", () => {
    const text = readFileSync(rules, "utf8");
    const alerts = [...text.matchAll(/- alert: (\S+)\n\s+expr: (.+)\n/g)].map(([, name, expr]) => ({
      name,
      expr,
    }));
    assert.deepEqual(
      alerts.map((a) => a.name),
      ["PoisonKeyPoisoned", "PoisonKeyStale", "PoisonStoreUnreachable"],
    );
    const exported = [
      "poison_keys",
      "poison_oldest_poisoned_seconds",
      "poison_store_up",
      "poison_keys_scan_truncated",
    ];
    for (const { name, expr } of alerts) {
      const metric = /^([a-z_]+)/.exec(expr ?? "")?.[1];
      assert.ok(metric && exported.includes(metric), `${name}: ${expr}`);
    }
    assert.match(text, /poison_oldest_poisoned_seconds > 300/, "poisoned for more than 5 minutes");
    assert.match(text, /poison_keys\{state="stale"\} > 0/, "a stale in-progress key");
    assert.doesNotMatch(text, /\t/, "YAML is indented with spaces");
  });
});
