/**
 * A private redis-server for the tests that must restart or flush a server: started on a free
 * port in a temporary directory, without persistence (`--save ''`, no AOF), and only ever killed
 * by its own pid. The shared server on 6379 is never touched.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort, type PrivateProcess, startPrivateProcess } from "../support/private-server.js";

export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** Kill the server (SIGKILL: nothing is saved) and start a fresh one on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Whether a redis-server answers PING on `port`: a fresh client per try (ioredis does not
 *  retry a failed connect with lazyConnect). */
async function answersPing(port: number): Promise<boolean> {
  const client = new Redis({
    port,
    host: "127.0.0.1",
    lazyConnect: true,
    retryStrategy: () => null,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.ping();
    return true;
  } finally {
    client.disconnect();
  }
}

/** Starts a private redis-server; `extraArgs` (a memory limit, an eviction policy…) are added to
 *  its command line. */
export async function startPrivateRedis(extraArgs: readonly string[] = []): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), "poison-redis-"));
  const port = await freePort();
  let child: PrivateProcess | null = null;
  const start = async () => {
    child = await startPrivateProcess(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        ...extraArgs,
      ],
      {
        name: `the private redis-server on ${port}`,
        ready: () => answersPing(port),
        timeoutMs: 5000,
        pollMs: 25,
      },
    );
  };
  const kill = async () => {
    const running = child;
    child = null;
    await running?.kill();
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async restart() {
      await kill();
      await start();
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Counts the commands `client` writes from now on (each one a round trip); returns the count
 *  so far. */
export function countCommands(client: Redis): () => number {
  let commands = 0;
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((...args: Parameters<typeof send>) => {
    commands++;
    return send(...args);
  }) as typeof client.sendCommand;
  return () => commands;
}

/** Wait until `client` is connected again (after a restart). */
export async function untilReady(client: Redis, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (client.status !== "ready") {
    if (Date.now() > deadline) throw new Error(`the client is still ${client.status}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
