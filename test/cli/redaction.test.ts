/**
 * Passwords never reach the CLI's output: the redactor on every URL form the backends accept,
 * with passwords full of the characters escaping changes (quotes, backslashes, `@`, `%`, `:`,
 * `/`), in every spelling they can take on the way out (raw, percent-encoded, JSON-escaped once
 * or twice); then the real CLI against the secured servers, misconfigured, in text, `--json`
 * and `--verbose`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { runCli } from "../../src/cli/cli.js";
import { type CliIo, redactor, secretForms, urlPasswords } from "../../src/cli/io.js";
import { redactUrl } from "../../src/index.js";
import { backendSkipReason } from "../conformance/index.js";
import { ALL_BACKENDS } from "../support/backends.js";
import {
  securedPassword,
  securedUnavailable,
  tlsFiles,
  withCredentials,
  withParams,
} from "../support/servers.js";

const PASSWORDS = [
  "s3cr@t-pw",
  "p@ss:w/rd?#x",
  "back\\slash\\pw",
  'quo"te"pw',
  "apo'strophe",
  "pct%41%zz",
  "ünï€ode-pw",
  "all\\\"'@:/%mixed",
  securedPassword,
];

const TEMPLATES = [
  (auth: string) =>
    `postgres://${auth}@127.0.0.1:5432/db?sslmode=verify-full&sslrootcert=/x/ca.pem`,
  (auth: string) => `postgresql://${auth}@db.example:5432/db`,
  (auth: string) => `mysql://${auth}@127.0.0.1:3307/test?ssl-mode=VERIFY_IDENTITY&ssl-ca=/x/ca.pem`,
  (auth: string) => `mariadb://${auth}@127.0.0.1:3306/test`,
  (auth: string) => `redis://${auth}@127.0.0.1:6379/0?keyPrefix=p`,
  (auth: string) => `rediss://${auth}@127.0.0.1:6380?ca=/x/ca.pem&cert=/x/c.pem&key=/x/c.key`,
  (auth: string) => `etcd://${auth}@10.0.0.1:2379,10.0.0.2:2379`,
  (auth: string) => `etcds://${auth}@10.0.0.1:2379,10.0.0.2:2379?ca=/x/ca.pem&metaPrefix=/m/`,
];

/** The texts a password may reach output in: the URL as given, quoted, re-encoded, and the
 *  password alone as a driver might quote it. */
function textsAbout(url: string, password: string): string[] {
  let reparsed = "";
  try {
    reparsed = new URL(url).toString();
  } catch {
    // not every URL form parses: the others still count
  }
  const error = new Error(`cannot open ${url} (password ${password})`);
  return [
    url,
    JSON.stringify(url),
    JSON.stringify(JSON.stringify(url)),
    JSON.stringify({ error: { message: `failed: ${JSON.stringify(url)}` } }, null, 2),
    redactUrl(url),
    reparsed,
    JSON.stringify(reparsed),
    `password authentication failed for ${password}`,
    JSON.stringify(`password ${password}`),
    `pw=${encodeURIComponent(password)}`,
    inspect(error),
    `'${password.replace(/['\\]/g, "\\$&")}'`,
  ];
}

describe("the CLI's redactor", () => {
  for (const password of PASSWORDS) {
    it(`hides ${JSON.stringify(password)} in every URL form and spelling`, () => {
      for (const template of TEMPLATES) {
        // As a careful user writes it (percent-encoded), and as typed raw where a URL allows it.
        const auths = [`user:${encodeURIComponent(password)}`];
        if (!/[/?#]/.test(password)) auths.push(`user:${password}`);
        for (const auth of auths) {
          const url = template(auth);
          const redact = redactor(urlPasswords(url));
          for (const text of textsAbout(url, password)) {
            const out = redact(text);
            for (const form of secretForms(password)) {
              assert.ok(
                !out.includes(form),
                `${JSON.stringify(form)} survives in ${JSON.stringify(out)} (from ${url})`,
              );
            }
          }
        }
      }
    });
  }

  it("urlPasswords finds the password whole, however it is typed", () => {
    assert.ok(urlPasswords("etcd://u:a@b@h:2379").includes("a@b"));
    assert.ok(urlPasswords("postgres://u:p%40ss@h/db").includes("p@ss"));
    assert.ok(urlPasswords("redis://:pw-only@h:6379").includes("pw-only"));
    assert.ok(urlPasswords("etcds://u:pw@h:2379?ca=/a@b/ca.pem").includes("pw"));
    assert.deepEqual(urlPasswords("postgres://postgres@127.0.0.1:5432/test"), []);
    assert.deepEqual(urlPasswords("sqlite:./x.db"), []);
  });

  it("secretForms spells backslashes and quotes every way output escapes them", () => {
    const forms = secretForms('a\\b"c');
    for (const form of ['a\\b"c', 'a\\\\b\\"c', 'a\\\\\\\\b\\\\\\"c', "a%5Cb%22c"]) {
      assert.ok(forms.includes(form), `${form} in ${JSON.stringify(forms)}`);
    }
  });
});

/** `poison …` in-process; what it printed and its exit code. */
async function poison(argv: string[]): Promise<{ code: number; output: string }> {
  let output = "";
  const sink = {
    write(chunk: string) {
      output += chunk;
      return true;
    },
  };
  const io: CliIo = { stdout: sink, stderr: sink, stdin: process.stdin, env: {} };
  const code = await runCli(argv, io);
  return { code, output };
}

const WRONG = 'wr0ng"p@ss\\w/rd';
/** Every secured twin of the registry (test/support/backends.ts), in report order. */
const SECURED = ALL_BACKENDS.flatMap(({ name, secured }) =>
  secured ? [{ name: `${name}-tls`, ...secured }] : [],
);

for (const server of SECURED) {
  const skip = await backendSkipReason(server.name, () => securedUnavailable(server.url));
  describe(`poison on ${server.name}, misconfigured`, { skip: skip ?? false }, () => {
    const cases = [
      { what: "a wrong password", url: withCredentials(server.url, server.user, WRONG) },
      {
        what: "an untrusted CA (the right password)",
        url: withParams(server.url, { [server.caParam]: tlsFiles.rogueCa }),
      },
    ];
    for (const { what, url } of cases) {
      it(`${what}: exit 5, what to fix, and no password in text, --json or --verbose`, async () => {
        for (const extra of [[], ["--json"], ["--verbose"], ["--json", "--verbose"]]) {
          for (const command of [["list"], ["show", "k"], ["history"]]) {
            const { code, output } = await poison([
              ...command,
              "--store",
              url,
              "--timeout",
              "4000",
              ...extra,
            ]);
            const where = `${command.join(" ")} ${extra.join(" ")}`;
            assert.equal(code, 5, `${where}: exit ${code}\n${output}`);
            assert.match(output, /misconfigured|BACKEND_CONFIGURATION/, `${where}\n${output}`);
            for (const secret of [WRONG, securedPassword]) {
              for (const form of secretForms(secret)) {
                assert.ok(!output.includes(form), `${where} leaked ${form}:\n${output}`);
              }
            }
          }
        }
      });
    }
  });
}
