import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.js";

describe("fault proxy (test support)", () => {
  let echo: net.Server;
  let proxy: FaultProxy;

  before(async () => {
    echo = net.createServer((socket) => {
      socket.on("error", () => socket.destroy());
      socket.pipe(socket);
    });
    echo.listen(0, "127.0.0.1");
    await once(echo, "listening");
    proxy = await startFaultProxy({
      host: "127.0.0.1",
      port: (echo.address() as net.AddressInfo).port,
    });
  });
  after(async () => {
    await proxy.close();
    await new Promise((resolve) => echo.close(resolve));
  });

  const roundTrip = async (timeoutMs: number): Promise<string> => {
    const socket = net.connect(proxy.port, "127.0.0.1");
    try {
      return await new Promise<string>((resolve) => {
        const timer = setTimeout(() => resolve("timeout"), timeoutMs);
        const done = (result: string) => {
          clearTimeout(timer);
          resolve(result);
        };
        socket.on("connect", () => socket.write("ping"));
        socket.on("data", (chunk) => done(String(chunk)));
        socket.on("error", () => done("closed"));
        socket.on("close", () => done("closed"));
      });
    } finally {
      socket.destroy();
    }
  };

  it("passes, black-holes and resets on demand", async () => {
    assert.equal(await roundTrip(1000), "ping");
    proxy.mode = "blackhole";
    assert.equal(await roundTrip(200), "timeout");
    proxy.mode = "reset";
    assert.equal(await roundTrip(1000), "closed");
    proxy.mode = "pass";
    assert.equal(await roundTrip(1000), "ping");
    assert.ok(proxy.stats.connections >= 4);
  });
});
