/**
 * A loopback TCP proxy for tests: it sits between a client and a real server and can delay,
 * black-hole, refuse or reset connections, so outage tests never need to stop a shared server.
 * Traffic goes only to the target given (always a loopback address in this project).
 */
import { once } from "node:events";
import net from "node:net";

export type ProxyMode =
  /** Forward everything. */
  | "pass"
  /** Accept connections and read requests, but never forward or answer: calls hang. */
  | "blackhole"
  /** Destroy every new connection at once (like a server that went away). */
  | "reset"
  /** Accept a connection, then drop it when the client sends its first bytes (a server that
   *  dies right after the handshake). */
  | "hangup"
  /** Forward requests, but reset the client's connection when the answer arrives: the server
   *  did the work, the client never hears of it. */
  | "cut-reply";

export interface FaultProxy {
  readonly port: number;
  readonly url: (scheme: string, path?: string) => string;
  mode: ProxyMode;
  /** Milliseconds added before each chunk is forwarded, in both directions. */
  delayMs: number;
  /** Chunks received from clients (a rough request count), connections accepted. */
  readonly stats: { chunksUp: number; connections: number };
  /** Destroy every open connection, now. */
  resetAll(): void;
  close(): Promise<void>;
}

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const sockets = new Set<net.Socket>();
  const stats = { chunksUp: 0, connections: 0 };

  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };

  const forward = (from: net.Socket, to: net.Socket, up: boolean) => {
    from.on("data", (chunk: Buffer) => {
      if (up) stats.chunksUp++;
      if (proxy.mode === "blackhole") return;
      if (!up && proxy.mode === "cut-reply") {
        if (!to.destroyed) to.resetAndDestroy();
        return;
      }
      const send = () => {
        if (!to.destroyed) to.write(chunk);
      };
      if (proxy.delayMs > 0) setTimeout(send, proxy.delayMs);
      else send();
    });
    from.on("close", () => setTimeout(() => to.destroy(), proxy.delayMs));
  };

  const server = net.createServer((client) => {
    stats.connections++;
    track(client);
    if (proxy.mode === "reset") {
      client.resetAndDestroy();
      return;
    }
    if (proxy.mode === "hangup") {
      client.once("data", () => client.destroy());
      return;
    }
    const upstream = net.connect(target.port, target.host);
    track(upstream);
    forward(client, upstream, true);
    forward(upstream, client, false);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;

  const proxy: FaultProxy = {
    port,
    url: (scheme, path = "") => `${scheme}://127.0.0.1:${port}${path}`,
    mode: "pass",
    delayMs: 0,
    stats,
    resetAll() {
      for (const socket of sockets) {
        // A socket already shutting down cannot be reset: on Node 20, resetAndDestroy() during a
        // pending shutdown leaves the handle open and the process never exits. Destroy it.
        if (socket.writableEnded || socket.readableEnded) socket.destroy();
        else socket.resetAndDestroy();
      }
    },
    async close() {
      proxy.resetAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
