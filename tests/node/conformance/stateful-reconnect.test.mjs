// Stateful reconnect with the official client's withStatefulReconnect(): the TCP connection under
// the client is cut by a small proxy while calls and pushes flow, and the client resumes the same
// connection (same id, nothing lost, nothing twice, no close/reconnecting events). A cut longer
// than the server's disconnect window ends in a fresh connection (withAutomaticReconnect).
import assert from "node:assert/strict";
import { createServer, connect as tcpConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import { HttpTransportType, HubConnectionBuilder, JsonHubProtocol, LogLevel } from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { PROTOCOLS, delay, startServer, stopAll, waitUntil, withTimeout } from "./server.mjs";

/**
 * A TCP proxy to 127.0.0.1:`target`. `killAll()` destroys every open connection (both sides);
 * `holdNext(ms)` makes the next new connection wait that long before it reaches the server.
 */
async function startProxy(target) {
  const sockets = new Set();
  const proxy = {
    hold: 0,
    connections: 0,
    holdNext(ms) {
      proxy.hold = ms;
    },
    killAll() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
  };
  const server = createServer((client) => {
    proxy.connections++;
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => {});
    client.pause();
    const hold = proxy.hold;
    proxy.hold = 0;
    setTimeout(() => {
      if (client.destroyed) return;
      const upstream = tcpConnect(target, "127.0.0.1");
      sockets.add(upstream);
      upstream.on("close", () => {
        sockets.delete(upstream);
        client.destroy();
      });
      upstream.on("error", () => {});
      client.on("close", () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    }, hold);
  });
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  proxy.port = server.address().port;
  proxy.close = () =>
    new Promise((resolve) => {
      proxy.killAll();
      server.close(() => resolve());
    });
  return proxy;
}

/** A stateful-reconnect client through `proxy`, recording its lifecycle events and pushes. */
async function statefulClient(proxy, { reconnect, protocol = "json" } = {}) {
  let builder = new HubConnectionBuilder()
    .withUrl(`http://127.0.0.1:${proxy.port}/hub`, { transport: HttpTransportType.WebSockets })
    .withHubProtocol(protocol === "messagepack" ? new MessagePackHubProtocol() : new JsonHubProtocol())
    .withStatefulReconnect()
    .configureLogging(process.env.SR_DEBUG ? LogLevel.Debug : LogLevel.None);
  if (reconnect) builder = builder.withAutomaticReconnect(reconnect);
  const connection = builder.build();
  const events = [];
  const items = [];
  connection.onclose((error) => events.push(["close", error?.message]));
  connection.onreconnecting((error) => events.push(["reconnecting", error?.message]));
  connection.onreconnected((id) => events.push(["reconnected", id]));
  connection.on("item", (i) => items.push(i));
  await connection.start();
  return { connection, events, items };
}

describe("stateful reconnect (official client, WebSockets)", () => {
  let server;
  let proxy;

  before(async () => {
    server = await startServer();
    proxy = await startProxy(server.port);
  });
  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  for (const protocol of PROTOCOLS) {
    it(`survives a cut TCP connection (${protocol}): same id, every call answered, every push once and in order`, async () => {
      const { connection, events, items } = await statefulClient(proxy, { protocol });
      try {
        const id = connection.connectionId;
        assert.ok(id);
        assert.equal(await connection.invoke("ConnectionId"), id);
        const connectionsBefore = proxy.connections;

        const pushes = connection.invoke("PushToCaller", 60, 10);
        const echoes = [];
        for (let i = 0; i < 40; i++) {
          echoes.push(connection.invoke("Echo", `m${i}`));
          if (i === 15) {
            // Cut everything under the client while both directions are busy.
            await waitUntil(() => items.length >= 5, 3_000, "pushes did not start");
            proxy.killAll();
          }
          await delay(10);
        }

        assert.equal(await withTimeout(pushes, 10_000, "PushToCaller did not complete"), 60);
        const answers = await withTimeout(Promise.all(echoes), 10_000, "the echoes did not complete");
        assert.deepEqual(
          answers,
          echoes.map((_, i) => `m${i}`),
        );
        assert.deepEqual(
          items,
          Array.from({ length: 60 }, (_, i) => i),
        );
        assert.ok(proxy.connections > connectionsBefore, "the client did not reconnect through the proxy");
        assert.equal(connection.connectionId, id);
        assert.equal(await connection.invoke("ConnectionId"), id);
        assert.equal(connection.state, "Connected");
        assert.deepEqual(events, [], "a stateful reconnect fires no close/reconnecting/reconnected events");
      } finally {
        await stopAll(connection);
      }
    });
  }
});

describe("stateful reconnect after the disconnect window (DISCONNECT_TIMEOUT_MS=300)", () => {
  let server;
  let proxy;

  before(async () => {
    server = await startServer({ DISCONNECT_TIMEOUT_MS: "300" });
    proxy = await startProxy(server.port);
  });
  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  it("the resume gets 404 and the client falls back to a fresh connection with a new id", async () => {
    const { connection, events } = await statefulClient(proxy, { reconnect: [0, 200, 200, 200] });
    try {
      const id = connection.connectionId;
      assert.equal(await connection.invoke("Echo", "before"), "before");
      // The client's immediate resume reaches the server only after the window has lapsed.
      proxy.holdNext(800);
      proxy.killAll();
      await waitUntil(() => events.some(([kind]) => kind === "reconnected"), 8_000, "no reconnected event");
      const reconnected = events.find(([kind]) => kind === "reconnected");
      assert.equal(events[0][0], "reconnecting");
      assert.notEqual(reconnected[1], id);
      assert.equal(await connection.invoke("ConnectionId"), reconnected[1]);
      assert.equal(await connection.invoke("Echo", "after"), "after");
      assert.ok(!events.some(([kind]) => kind === "close"), JSON.stringify(events));
    } finally {
      await stopAll(connection);
    }
  });
});
