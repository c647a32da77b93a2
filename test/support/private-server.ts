/**
 * What the tests that start a server of their own share (test/drivers/redis-private.ts,
 * mysql-watch-restart.test.ts, etcd-watch.test.ts, postgres-watch.test.ts,
 * test/greptimedb/places.ts): a free port, the ids of the system user a server runs as, a child
 * process stopped only through its own pid, and a one-member etcd. The shared servers are never
 * touched.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** A TCP port on 127.0.0.1 that nothing listens on (as of now). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The uid and gid of a system user (mysql, postgres), for the directories its server owns. */
export function userIds(name: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync("id", [flag, name]).toString().trim());
  return { uid: id("-u"), gid: id("-g") };
}

/** A server process of a test's own. */
export interface PrivateProcess {
  /** SIGKILL (no clean shutdown, as a crash), then wait for the exit; a no-op once it exited. */
  kill(): Promise<void>;
  /** SIGTERM, and SIGKILL if it has not exited within 5 s; a no-op once it exited. */
  stop(): Promise<void>;
}

/**
 * Spawns `command` (output ignored) and polls `ready` every `pollMs` until it answers true; past
 * `timeoutMs`, throws `${name} did not start`. `ready` may throw: that counts as not yet.
 */
export async function startPrivateProcess(
  command: string,
  args: readonly string[],
  options: {
    name: string;
    ready: () => Promise<boolean> | boolean;
    timeoutMs: number;
    pollMs: number;
  },
): Promise<PrivateProcess> {
  const child: ChildProcess = spawn(command, args, { stdio: "ignore" });
  const running = () => child.exitCode === null && child.signalCode === null;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const handle: PrivateProcess = {
    async kill() {
      if (!running()) return;
      child.kill("SIGKILL");
      await exited;
    },
    async stop() {
      if (!running()) return;
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(5000)]);
      if (running()) await handle.kill();
    },
  };
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const up = await Promise.resolve()
      .then(options.ready)
      .catch(() => false);
    if (up) return handle;
    if (Date.now() > deadline) {
      await handle.kill();
      throw new Error(`${options.name} did not start`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs));
  }
}

/**
 * A one-member etcd named `name` with its data in `dataDir`, serving clients on `clientPort`
 * (http://127.0.0.1); started again on the same directory and ports, it has the same history.
 * Ready once /health says so; `timeoutMs` bounds the wait.
 */
export function startPrivateEtcd(settings: {
  name: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
  timeoutMs: number;
}): Promise<PrivateProcess> {
  const endpoint = `http://127.0.0.1:${settings.clientPort}`;
  const peer = `http://127.0.0.1:${settings.peerPort}`;
  return startPrivateProcess(
    "etcd",
    [
      "--name",
      settings.name,
      "--data-dir",
      settings.dataDir,
      "--listen-client-urls",
      endpoint,
      "--advertise-client-urls",
      endpoint,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `${settings.name}=${peer}`,
    ],
    {
      name: `the private etcd on ${endpoint}`,
      ready: async () => {
        const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
        return (await response.text()).includes('"health":"true"');
      },
      timeoutMs: settings.timeoutMs,
      pollMs: 100,
    },
  );
}
