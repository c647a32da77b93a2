/**
 * The MySQL/MariaDB native change feed across a server restart, on a PRIVATE mariadbd (own
 * datadir, socket and port, started like scripts/services-tls.sh starts its second one; the
 * shared server on 3306 is never touched): the server is killed (SIGKILL) while a watch runs
 * and writes continue before and after; once it is back, the watch resumes from its last
 * position and every change arrives exactly once, in order per key, with no `resync` (the change
 * log is durable with the changes).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type ChangeEvent, mysqlDriver, openPoisonStore } from "../../src/index.js";
import {
  freePort,
  type PrivateProcess,
  startPrivateProcess,
  userIds,
} from "../support/private-server.js";

const MARIADBD = "/usr/sbin/mariadbd";

function unavailable(): string | null {
  if (!existsSync(MARIADBD)) return `${MARIADBD} is not installed`;
  if (process.getuid?.() !== 0) return "starting a private mariadbd as user mysql needs root";
  try {
    execFileSync("id", ["mysql"], { stdio: "ignore" });
  } catch {
    return "no mysql user";
  }
  return null;
}

const reason = unavailable();
if (reason !== null && process.env.POISON_REQUIRE_ALL === "1") {
  it("a private mariadbd can be started (POISON_REQUIRE_ALL=1)", () => assert.fail(reason));
}

/** A mariadbd of this test's own. */
class PrivateMariadb {
  readonly dir = mkdtempSync(join(tmpdir(), "poison-mariadb-"));
  readonly data = join(this.dir, "data");
  readonly socket = join(this.dir, "mysqld.sock");
  port = 0;
  #process: PrivateProcess | null = null;

  get url(): string {
    return `mysql://poison@127.0.0.1:${this.port}/test`;
  }

  async init(): Promise<void> {
    const { uid, gid } = userIds("mysql");
    chownSync(this.dir, uid, gid);
    execFileSync(
      "mariadb-install-db",
      [
        "--no-defaults",
        "--user=mysql",
        "--basedir=/usr",
        "--skip-test-db",
        "--auth-root-authentication-method=socket",
        `--datadir=${this.data}`,
      ],
      { stdio: "ignore" },
    );
    this.port = await freePort();
    await this.start();
    execFileSync("mariadb", [
      `--socket=${this.socket}`,
      "-uroot",
      "-e",
      "CREATE DATABASE IF NOT EXISTS test; CREATE USER IF NOT EXISTS 'poison'@'%'; GRANT ALL ON test.* TO 'poison'@'%';",
    ]);
  }

  async start(): Promise<void> {
    this.#process = await startPrivateProcess(
      MARIADBD,
      [
        "--no-defaults",
        "--user=mysql",
        "--basedir=/usr",
        `--datadir=${this.data}`,
        `--socket=${this.socket}`,
        `--pid-file=${join(this.dir, "mysqld.pid")}`,
        `--port=${this.port}`,
        "--bind-address=127.0.0.1",
        "--skip-name-resolve",
        "--skip-log-bin",
        "--innodb-buffer-pool-size=32M",
        `--log-error=${join(this.dir, "error.log")}`,
      ],
      {
        name: "the private mariadbd",
        ready: () => {
          execFileSync("mariadb-admin", [`--socket=${this.socket}`, "-uroot", "ping"], {
            stdio: "ignore",
          });
          return true;
        },
        timeoutMs: 30_000,
        pollMs: 100,
      },
    );
  }

  /** SIGKILL: no clean shutdown, InnoDB recovers from its redo log on the next start. */
  async kill(): Promise<void> {
    const child = this.#process;
    this.#process = null;
    await child?.kill();
  }

  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe("mysql native change feed across a server restart", { skip: reason ?? false }, () => {
  const server = new PrivateMariadb();
  before(async () => server.init());
  after(async () => server.destroy());

  it("loses no change and emits no resync when the server is killed and restarted", async () => {
    const store = openPoisonStore(
      mysqlDriver({
        url: server.url,
        watchIntervalMs: 50,
        connectTimeoutMs: 1000,
        queryTimeoutMs: 2000,
      }),
      { timeoutMs: 3000 },
    );
    const prefix = `${randomUUID()}/`;
    const controller = new AbortController();
    const events: ChangeEvent[] = [];
    try {
      await store.tryPutPoison(`${prefix}setup`, "t");
      const stream = store.watch({ prefix, signal: controller.signal, onError: () => undefined });
      assert.equal(stream.source, "native");
      const reading = (async () => {
        for await (const event of stream) events.push(event);
      })();
      assert.equal(await stream.ready, true);
      const of = (key: string) => events.filter((e) => e.key === key).map((e) => e.type);
      const until = async (condition: () => boolean, ms: number, what: string) => {
        const deadline = Date.now() + ms;
        while (!condition()) {
          if (Date.now() > deadline)
            throw new Error(`${what} not within ${ms} ms; saw ${JSON.stringify(events)}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      };
      const expected = new Map<string, string[]>();
      const note = (key: string, type: string) =>
        expected.set(key, [...(expected.get(key) ?? []), type]);

      // Before the crash: some changes, seen.
      for (let i = 0; i < 5; i++) {
        await store.tryPutPoison(`${prefix}k${i}`, "t");
        note(`${prefix}k${i}`, "put");
      }
      await until(() => events.length >= 5, 5000, "the changes before the crash");
      // Committed just before the kill: durable, so they must be delivered after the restart
      // even if the watch had not read them yet.
      for (let i = 0; i < 5; i++) {
        await store.markPoisoned(`${prefix}k${i}`, "t", new Error("before the crash"));
        note(`${prefix}k${i}`, "poisoned");
      }
      await server.kill();
      await new Promise((resolve) => setTimeout(resolve, 500)); // the watch fails and backs off
      await server.start();
      // After the restart: more changes, made while the watch is still reconnecting.
      const retrying = async (write: () => Promise<unknown>) => {
        const deadline = Date.now() + 20_000;
        for (;;) {
          try {
            return await write();
          } catch (error) {
            if (Date.now() > deadline) throw error;
            await new Promise((resolve) => setTimeout(resolve, 200));
          }
        }
      };
      for (let i = 0; i < 5; i++) {
        await retrying(() => store.deletePoison(`${prefix}k${i}`, "t"));
        note(`${prefix}k${i}`, "deleted");
        await retrying(() => store.tryPutPoison(`${prefix}n${i}`, "t"));
        note(`${prefix}n${i}`, "put");
      }
      const total = [...expected.values()].reduce((n, list) => n + list.length, 0);
      await until(() => events.length >= total, 30_000, `all ${total} changes`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.ok(!events.some((e) => e.type === "resync"), "resumed, no resync");
      for (const [key, types] of expected) assert.deepEqual(of(key), types, key);
      assert.equal(events.length, total, "each change once");
      controller.abort();
      await reading;
    } finally {
      controller.abort();
      await store.close();
    }
  });
});
