/** Named contexts: the config file, `poison context …`, and which setting wins. */
import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { openPoisonStore } from "../../src/index.js";
import { postgresUrl } from "../support/servers.js";
import { NETWORKED_STORE_URLS, runPoisonAsync, runSuggested, scratchDir } from "./support.js";

const dir = scratchDir();
const config = `${dir}/contexts/config.json`;
const prodUrl = `sqlite:${dir}/prod.db`;
const stagingUrl = `sqlite:${dir}/staging.db`;
const otherUrl = `sqlite:${dir}/other.db`;

/** `poison ARGS` with the test's config file. */
function poison(args: string[], env: Record<string, string> = {}) {
  return runPoisonAsync(args, { env: { POISON_CONFIG: config, ...env } });
}

interface ListDoc {
  store: string;
  namespace: string;
  context: string | null;
  records: { key: string }[];
}

before(async () => {
  for (const [url, key] of [
    [prodUrl, "prod/1"],
    [stagingUrl, "staging/1"],
    [otherUrl, "other/1"],
  ] as const) {
    for (const namespace of ["/__procedure_poison/", "/ns/"]) {
      const store = openPoisonStore(url, { namespace });
      await store.tryPutPoison(key, "t");
      await store.close();
    }
  }
});

describe("poison context", () => {
  it("list without a config file says how to add one", async () => {
    const run = await poison(["context", "list"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /^no contexts in .*config\.json; add one with `poison context set NAME --store URL`/,
    );
  });

  it("set writes the file (owner-only), the first context becomes current; list and show", async () => {
    const prod = await poison(["context", "set", "prod", "--store", prodUrl]);
    assert.equal(prod.code, 0, prod.stderr);
    assert.match(prod.stdout, /it is the current context \(the first one\)/);
    assert.equal(statSync(config).mode & 0o777, 0o600);
    const staging = await poison([
      "context",
      "set",
      "staging",
      "--store",
      stagingUrl,
      "--namespace",
      "/ns/",
      "--timeout",
      "1234",
    ]);
    assert.equal(staging.code, 0, staging.stderr);
    assert.deepEqual(JSON.parse(readFileSync(config, "utf8")), {
      current: "prod",
      contexts: {
        prod: { store: prodUrl },
        staging: { store: stagingUrl, namespace: "/ns/", timeoutMs: 1234 },
      },
    });
    const list = await poison(["context", "list"]);
    assert.match(
      list.stdout,
      /^CURRENT\s+NAME\s+STORE\s+NAMESPACE\s+TIMEOUT\s+PASSWORD\n\*\s+prod\s+sqlite:\S+prod\.db\s+-\s+-\s+-\n\s+staging\s+sqlite:\S+staging\.db\s+\/ns\/\s+1234ms\s+-\n/,
    );
    assert.equal((await poison(["context", "list", "--names"])).stdout, "prod\nstaging\n");
    const show = await poison(["context", "show", "staging"]);
    assert.match(
      show.stdout,
      /context\s+staging\n.*\nstore\s+sqlite:\S+staging\.db\npassword\s+-\nnamespace\s+\/ns\/\ntimeout\s+1234 ms/,
    );
  });

  it("use switches the current context; the commands then use its store and namespace", async () => {
    const use = await poison(["context", "use", "staging"]);
    assert.equal(use.code, 0, use.stderr);
    const doc = (await poison(["list", "--json"])).json<ListDoc>();
    assert.deepEqual(
      [doc.context, doc.store, doc.namespace, doc.records.map((r) => r.key)],
      ["staging", stagingUrl, "/ns/", ["staging/1"]],
    );
  });

  it("precedence: flag, then environment, then context, then default", async () => {
    const list = async (args: string[], env: Record<string, string> = {}) => {
      const run = await poison(["list", "--json", ...args], env);
      assert.equal(run.code, 0, run.stderr);
      const doc = run.json<ListDoc>();
      return {
        context: doc.context,
        store: doc.store,
        namespace: doc.namespace,
        stderr: run.stderr,
      };
    };
    // --context beats POISON_CONTEXT, which beats the current context.
    assert.deepEqual(await list(["--context", "prod"], { POISON_CONTEXT: "staging" }), {
      context: "prod",
      store: prodUrl,
      namespace: "/__procedure_poison/",
      stderr: "",
    });
    assert.equal((await list([], { POISON_CONTEXT: "prod" })).context, "prod");
    // A setting's own flag or variable beats the context's.
    assert.equal(
      (await list(["--context", "staging", "--namespace", "/__procedure_poison/"])).namespace,
      "/__procedure_poison/",
    );
    assert.equal(
      (await list(["--context", "staging"], { POISON_NAMESPACE: "/__procedure_poison/" }))
        .namespace,
      "/__procedure_poison/",
    );
    const envStore = await list(["--context", "staging"], { POISON_STORE_URL: otherUrl });
    assert.deepEqual(
      [envStore.store, envStore.context, envStore.namespace],
      [otherUrl, "staging", "/ns/"],
    );
    assert.match(
      envStore.stderr,
      /warning: POISON_STORE_URL overrides the store of context "staging"/,
    );
    // A store named outright does not take the current context's other settings.
    const named = await list(["--store", otherUrl]);
    assert.deepEqual(
      [named.store, named.context, named.namespace],
      [otherUrl, null, "/__procedure_poison/"],
    );
    assert.equal((await list([], { POISON_STORE_URL: otherUrl })).context, null);
  });

  it("suggested commands name the context, and run as printed", async () => {
    const run = await poison(["show", "absent/key"]);
    assert.equal(run.code, 4);
    assert.match(
      run.stderr,
      /not present in sqlite:\S+staging\.db \(namespace \/ns\/, context staging\)/,
    );
    assert.match(run.stderr, /`poison list --context staging`/);
    const list = await runSuggested(run.stderr, "list", undefined, {
      env: { POISON_CONFIG: config },
    });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /staging\/1/);
  });

  it("mistakes: an unknown context or field, a malformed file, each with the fix", async () => {
    const typo = await poison(["list", "--context", "stagin"]);
    assert.equal(typo.code, 2);
    assert.match(
      typo.stderr,
      /there is no context "stagin" \(--context\) in .*\n {2}fix: did you mean "staging"\?/,
    );
    const original = readFileSync(config, "utf8");
    try {
      writeFileSync(config, JSON.stringify({ contexts: { bad: { stor: "sqlite:x" } } }));
      const field = await poison(["list", "--context", "bad"]);
      assert.equal(field.code, 2);
      assert.match(
        field.stderr,
        /context "bad" has an unknown field "stor" \(did you mean "store"\?\)/,
      );
      writeFileSync(config, "{ not json");
      const malformed = await poison(["list"]);
      assert.equal(malformed.code, 2);
      assert.match(
        malformed.stderr,
        /the config file .*config\.json is malformed: it is not valid JSON/,
      );
      const outright = await poison(["list", "--store", otherUrl]);
      assert.equal(outright.code, 0, "a store named outright does not need the file");
    } finally {
      writeFileSync(config, original);
    }
  });

  it("delete removes a context; deleting the current one leaves none current", async () => {
    assert.equal((await poison(["context", "set", "temp", "--store", otherUrl])).code, 0);
    const removed = await poison(["context", "delete", "temp"]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal((await poison(["context", "list", "--names"])).stdout, "prod\nstaging\n");
  });
});

describe("passwords of contexts", () => {
  const password = 'pw"with\\odd%40chars';
  const forms = [password, JSON.stringify(password).slice(1, -1), encodeURIComponent(password)];
  const leaked = (text: string) => forms.find((form) => text.includes(form));

  it("--password-env stores the variable's name, never the password; it is read each time", async () => {
    const set = await poison([
      "context",
      "set",
      "pg",
      "--store",
      "postgres://postgres@127.0.0.1:1/test",
      "--password-env",
      "POISON_TEST_PG_PASSWORD",
      "--timeout",
      "1000",
    ]);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(
      JSON.parse(readFileSync(config, "utf8")).contexts.pg.passwordEnv,
      "POISON_TEST_PG_PASSWORD",
    );
    const unset = await poison(["list", "--context", "pg"]);
    assert.equal(unset.code, 2);
    assert.match(
      unset.stderr,
      /context "pg" takes its password from \$POISON_TEST_PG_PASSWORD, which is not set/,
    );
    for (const args of [
      ["list"],
      ["show", "k", "--verbose"],
      ["put", "k", "--token", "t", "--json", "--verbose"],
      ["context", "show", "pg"],
      ["context", "list", "--json"],
    ]) {
      const run = await poison([...args, ...(args[0] === "context" ? [] : ["--context", "pg"])], {
        POISON_TEST_PG_PASSWORD: password,
      });
      assert.equal(
        leaked(run.stdout + run.stderr),
        undefined,
        `${args.join(" ")} leaked:\n${run.stdout}${run.stderr}`,
      );
      if (args[0] !== "context") assert.equal(run.code, 5, run.stderr);
    }
    const shown = await poison(["context", "show", "pg"], { POISON_TEST_PG_PASSWORD: password });
    assert.match(shown.stdout, /password\s+from \$POISON_TEST_PG_PASSWORD \(set\)/);
  });

  it("the password reaches the server (PostgreSQL, when it answers)", {
    skip: !NETWORKED_STORE_URLS.includes(postgresUrl) && "PostgreSQL is not reachable",
  }, async () => {
    const url = new URL(postgresUrl);
    url.password = "";
    assert.equal(
      (
        await poison([
          "context",
          "set",
          "pgreal",
          "--store",
          url.href,
          "--password-env",
          "POISON_TEST_PG_PASSWORD",
        ])
      ).code,
      0,
    );
    const run = await poison(["list", "--context", "pgreal", "--verbose"], {
      POISON_TEST_PG_PASSWORD: password,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(leaked(run.stdout + run.stderr), undefined);
  });

  it("a password written into a context's URL is warned about, and never printed", async () => {
    const set = await poison([
      "context",
      "set",
      "plain",
      "--store",
      "postgres://u:hunter22@127.0.0.1:1/x",
    ]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(
      set.stderr,
      /warning: the store URL of context plain holds a password, now stored in plain text/,
    );
    for (const args of [
      ["context", "list"],
      ["context", "show", "plain"],
      ["list", "--context", "plain", "--verbose"],
    ]) {
      const run = await poison(args);
      assert.doesNotMatch(run.stdout + run.stderr, /hunter22/);
    }
  });
});

describe("a context's timeout", () => {
  let server: net.Server;
  const sockets: net.Socket[] = [];
  before(async () => {
    server = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it("is named in a timeout, as the context's setting", async () => {
    const port = (server.address() as net.AddressInfo).port;
    assert.equal(
      (
        await poison([
          "context",
          "set",
          "slow",
          "--store",
          `etcd://127.0.0.1:${port}`,
          "--timeout",
          "600",
        ])
      ).code,
      0,
    );
    const run = await poison(["list", "--context", "slow"]);
    assert.equal(run.code, 5, run.stderr);
    assert.match(run.stderr, /no answer within 600 ms \(timeoutMs 600 of context "slow"\)/);
  });
});
