/**
 * What the tests that start a server of their own share (test/drivers/redis-private.ts,
 * mysql-watch-restart.test.ts, etcd-watch.test.ts, postgres-watch.test.ts): a free port, the
 * ids of the system user a server runs as, and a child process killed only by its own pid.
 * The shared servers are never touched.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createServer } from "node:net";

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
  let child: ChildProcess | null = spawn(command, args, { stdio: "ignore" });
  const handle: PrivateProcess = {
    async kill() {
      const running = child;
      child = null;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once("exit", resolve));
      running.kill("SIGKILL");
      await exited;
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
