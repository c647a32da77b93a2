/**
 * `runCli` in-process, for what the bin cannot provoke cheaply: a backend that fails after the
 * first page of a streamed --json document.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runCli } from "../../src/cli/cli.js";
import type { CliIo } from "../../src/cli/io.js";
import {
  BackendConfigurationError,
  createPoisonStore,
  memoryDriver,
  type PoisonDriver,
  type PoisonStoreClient,
} from "../../src/index.js";

function capture(): { text: () => string; write(chunk: string): boolean } {
  let text = "";
  return {
    text: () => text,
    write(chunk: string) {
      text += chunk;
      return true;
    },
  };
}

/** `runCli` on a store the test builds; what it printed, and its exit code. */
async function runOn(
  openStore: () => PoisonStoreClient,
  argv: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const io: CliIo = { stdout, stderr, stdin: process.stdin, env: {}, openStore };
  const code = await runCli([...argv, "--store", "memory:"], io);
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** A memory driver whose list and audit reads fail from the second call on. */
function failingAfterFirstPage(): PoisonDriver {
  const inner = memoryDriver();
  let lists = 0;
  let audits = 0;
  return {
    ...inner,
    async list(query) {
      if (++lists > 1) throw new Error("connection reset by peer");
      return inner.list(query);
    },
    async audit(query) {
      if (++audits > 1) throw new Error("connection reset by peer");
      return inner.audit(query);
    },
  };
}

describe("runCli in-process", () => {
  for (const command of ["list", "history"] as const) {
    it(`${command} --json: a failure after the first page still leaves one JSON document`, async () => {
      const driver = failingAfterFirstPage();
      const seed = createPoisonStore(driver);
      const keys = Array.from({ length: 600 }, (_, i) => `k/${String(i).padStart(4, "0")}`);
      await seed.tryPutPoisons(keys, "t", { audit: { actor: "test", reason: "seed" } });
      const { code, stdout, stderr } = await runOn(
        () => createPoisonStore(driver),
        [command, "--json", "--limit", "1000"],
      );
      assert.equal(code, 5);
      const doc = JSON.parse(stdout) as {
        count: number;
        truncated: boolean;
        error: { code: string; exitCode: number };
      };
      assert.ok(doc.count > 0, "the first page was printed");
      assert.equal(doc.truncated, true);
      assert.equal(doc.error.code, "BACKEND_UNAVAILABLE");
      assert.equal(doc.error.exitCode, 5);
      assert.match(stderr, /^poison: error: memory backend unavailable: connection reset by peer/);
    });
  }
});

describe("runCli: a store whose close() fails", () => {
  const hangingClose = (): PoisonDriver => ({
    ...memoryDriver(),
    close: () => new Promise<void>(() => undefined),
  });
  const run = (argv: string[]) =>
    runOn(() => createPoisonStore(hangingClose(), { timeoutMs: 200 }), argv);

  it("a command that succeeded still exits 0, with a warning about the close", async () => {
    const { code, stderr } = await run(["put", "k", "--token", "t", "--reason", "maintenance"]);
    assert.equal(code, 0);
    assert.match(stderr, /^poison: warning: closing the store failed: .*close did not finish/m);
  });

  it("a command that failed reports its own error, not the close's", async () => {
    const { code, stderr } = await run(["show", "absent-key"]);
    assert.equal(code, 4);
    assert.doesNotMatch(stderr, /closing the store failed/);
  });
});

/** `runCli` on a store the caller opens, with the clock the caller sets. */
async function runWith(
  openStore: () => PoisonStoreClient,
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const io: CliIo = { stdout, stderr, stdin: process.stdin, env, openStore };
  const code = await runCli(argv, io);
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** `store` with some methods replaced (its own methods stay bound to it). */
function overriding(
  store: PoisonStoreClient,
  methods: Partial<PoisonStoreClient>,
): PoisonStoreClient {
  return new Proxy(store, {
    get(target, name) {
      if (Object.hasOwn(methods, name)) return methods[name as keyof PoisonStoreClient];
      const value = Reflect.get(target, name, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

describe("runCli: tables", () => {
  it("column widths fit every row printed, not only the first page", async () => {
    const driver = memoryDriver();
    const seed = createPoisonStore(driver);
    const keys = Array.from({ length: 600 }, (_, i) => `k/${String(i).padStart(4, "0")}`);
    await seed.tryPutPoisons(keys, "t");
    await seed.markPoisons(keys, "t", new Error("failed"));
    await seed.tryPutPoison("z/a-key-longer-than-any-on-the-first-page", "late-token");
    const { code, stdout } = await runWith(
      () => createPoisonStore(driver),
      ["list", "--store", "memory:"],
    );
    assert.equal(code, 0);
    const last = stdout.split("\n").find((line) => line.startsWith("z/"));
    assert.match(
      last ?? "",
      /^z\/a-key-longer-than-any-on-the-first-page {2}in-progress {2}late-token /,
    );
    assert.doesNotMatch(stdout, /…/, "nothing was cut");
  });
});

describe("runCli: a store that was never written", () => {
  it("reads say so, naming the store; nothing is created", async () => {
    const inits: boolean[] = [];
    const unwritten = (): PoisonDriver => {
      const inner = memoryDriver();
      return {
        ...inner,
        backend: "postgres",
        init: async ({ create }) => {
          inits.push(create);
          return create ? inner.init({ create }) : false;
        },
      };
    };
    const open = () => createPoisonStore(unwritten());
    const list = await runWith(open, ["list", "--store", "memory:"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      /^no poison keys in memory: \(namespace \/__procedure_poison\/\) \(this store has never been written\)\n$/,
    );
    const show = await runWith(open, ["show", "k", "--store", "memory:", "--json"]);
    assert.equal(show.code, 4);
    assert.match(JSON.parse(show.stdout).error.message, /this store has never been written/);
    const check = await runWith(open, ["check", "--state", "any", "--store", "memory:"]);
    assert.equal(check.code, 0, check.stderr);
    assert.deepEqual([...new Set(inits)], [false], "no read asked to create anything");
  });
});

describe("runCli: library failures map to exit codes with a fix that says what to do", () => {
  it("BackendConfigurationError: exit 5, what to fix, never retry", async () => {
    const misconfigured = (): PoisonDriver => ({
      ...memoryDriver(),
      backend: "postgres",
      init: () =>
        Promise.reject(
          new BackendConfigurationError("postgres", "database", 'database "nope" does not exist'),
        ),
    });
    for (const argv of [["list"], ["put", "k", "--token", "t"]]) {
      const { code, stderr } = await runWith(
        () => createPoisonStore(misconfigured()),
        [...argv, "--store", "memory:"],
      );
      assert.equal(code, 5, stderr);
      assert.match(stderr, /misconfigured \(database\): database "nope" does not exist/);
      assert.match(stderr, /fix: create the database, or correct its name in the store URL/);
      assert.doesNotMatch(stderr, /retry with|run the same command again|run the command again/);
    }
  });

  it("HolderAliveError from the atomic step (a heartbeat that landed after the read): exit 6", async () => {
    const shared = { name: "holder-alive-race" };
    const real = createPoisonStore(memoryDriver(shared));
    await real.tryPutPoison("k", "run-1", { owner: "node-1", heartbeatIntervalMs: 60_000 });
    // The operator's read saw a record without a heartbeat; the delete meets the live one.
    const stale = {
      ...(await real.inspectPoison("k")),
      heartbeatAt: undefined,
      heartbeatIntervalMs: undefined,
    };
    const view = overriding(real, { inspectPoison: async () => stale as never });
    const { code, stderr } = await runWith(
      () => view,
      ["clear", "k", "--force", "--reason", "r", "--yes", "--store", "memory:"],
    );
    assert.equal(code, 6, stderr);
    assert.match(stderr, /held by a live operation/);
    assert.match(stderr, /stop the operation first, or add --even-if-alive/);
    assert.equal(await createPoisonStore(memoryDriver(shared)).getPoison("k"), "run-1");
  });

  it("a hostile thrown value is reported, never thrown again (text, --json, --verbose)", async () => {
    const hostile = [
      new Proxy(new Error("x"), {
        get() {
          throw new Error("trap");
        },
      }),
      (() => {
        const { proxy, revoke } = Proxy.revocable(new Error("y"), {});
        revoke();
        return proxy;
      })(),
    ];
    for (const thrown of hostile) {
      const store = overriding(createPoisonStore(memoryDriver()), {
        exists: () => Promise.reject(thrown),
      });
      const { code, stderr, stdout } = await runWith(
        () => store,
        ["list", "--json", "--verbose", "--store", "memory:"],
      );
      assert.equal(code, 1);
      assert.match(stderr, /^poison: error: unexpected error: /);
      assert.equal(JSON.parse(stdout).error.code, "UNEXPECTED");
    }
  });
});
