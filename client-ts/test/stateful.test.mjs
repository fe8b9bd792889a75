// Stateful reconnect (a TCP proxy cuts the sockets under the client mid-traffic), the
// "Client didn't negotiate…" check, and the HTTP request timeout.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer as createHttpServer } from "node:http";
import { createServer, connect as tcpConnect } from "node:net";
import WebSocket from "ws";
import {
  HttpTransportType,
  HubConnectionBuilder,
  JsonHubProtocol,
  NegotiateError,
  TimeoutError,
} from "../dist/index.js";
import { MessagePackHubProtocol } from "../dist/msgpack.js";
import { startServer } from "./server.mjs";

const delay = (ms) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (predicate, ms = 3000) => {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await delay(10);
  }
};

/** A TCP proxy to 127.0.0.1:`target`; `cut()` destroys every open connection (both sides). */
async function startProxy(target) {
  const sockets = new Set();
  const proxy = { connections: 0, cut: () => (sockets.forEach((s) => s.destroy()), sockets.clear()) };
  const server = createServer((client) => {
    proxy.connections++;
    const upstream = tcpConnect(target, "127.0.0.1");
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      sockets.add(a);
      a.on("error", () => {});
      a.on("close", () => (sockets.delete(a), b.destroy()));
      a.pipe(b);
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.port = server.address().port;
  proxy.close = () => new Promise((resolve) => (proxy.cut(), server.close(() => resolve())));
  return proxy;
}

describe("stateful reconnect over WebSockets", () => {
  let server;
  let proxy;
  before(async () => {
    server = await startServer();
    proxy = await startProxy(Number(new URL(server.url()).port));
  });
  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  for (const [name, protocol] of [["json", () => new JsonHubProtocol()], ["messagepack", () => new MessagePackHubProtocol()]]) {
    test(`a cut TCP connection is resumed (${name}): same id, every call answered, every push once in order`, async () => {
      const hub = new HubConnectionBuilder()
        .withUrl(`http://127.0.0.1:${proxy.port}/hub`, { transport: HttpTransportType.WebSockets, WebSocket })
        .withHubProtocol(protocol())
        .withStatefulReconnect()
        .withAutomaticReconnect()
        .build();
      const events = [];
      const items = [];
      hub.onclose((e) => events.push(["close", e?.message]));
      hub.onreconnecting((e) => events.push(["reconnecting", e?.message]));
      hub.onreconnected((id) => events.push(["reconnected", id]));
      hub.on("item", (i) => items.push(i));
      await hub.start();
      try {
        const id = hub.connectionId;
        assert.ok(id);
        assert.equal(await hub.invoke("ConnectionId"), id);
        const before = proxy.connections;
        const pushes = hub.invoke("PushToCaller", 60, 10);
        const echoes = [];
        for (let i = 0; i < 40; i++) {
          echoes.push(hub.invoke("Echo", `m${i}`));
          if (i === 15) {
            await waitFor(() => items.length >= 5);
            proxy.cut();
          }
          await delay(10);
        }
        assert.equal(await pushes, 60);
        assert.deepEqual(await Promise.all(echoes), echoes.map((_, i) => `m${i}`));
        assert.deepEqual(items, Array.from({ length: 60 }, (_, i) => i));
        assert.ok(proxy.connections > before, "the client did not reconnect through the proxy");
        assert.equal(hub.connectionId, id);
        assert.equal(await hub.invoke("ConnectionId"), id);
        assert.equal(hub.state, "Connected");
        assert.equal(hub.transport, "WebSockets");
        assert.deepEqual(events, []);
      } finally {
        await hub.stop();
      }
      assert.equal(hub.state, "Disconnected");
    });
  }
});

/** A node:http server answering every request with `handler`; returns its base URL. */
async function fakeServer(t, handler) {
  const http = createHttpServer(handler);
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  t.after(() => (http.closeAllConnections(), http.close()));
  return `http://127.0.0.1:${http.address().port}/hub`;
}

test("a server answering useStatefulReconnect unasked fails start", async (t) => {
  const url = await fakeServer(t, (req, res) => {
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify({
      useStatefulReconnect: true,
      negotiateVersion: 1,
      connectionId: "a",
      connectionToken: "b",
      availableTransports: [{ transport: "WebSockets", transferFormats: ["Text", "Binary"] }],
    }));
  });
  const hub = new HubConnectionBuilder().withUrl(url, { WebSocket }).build();
  await assert.rejects(hub.start(), (error) => {
    assert.ok(error instanceof NegotiateError);
    assert.equal(error.message, "Client didn't negotiate Stateful Reconnect but the server did.");
    return true;
  });
  assert.equal(hub.state, "Disconnected");
});

test("negotiate asks for stateful reconnect only with withStatefulReconnect", async (t) => {
  const urls = [];
  const url = await fakeServer(t, (req, res) => {
    urls.push(req.url);
    res.statusCode = 500;
    res.end();
  });
  for (const build of [(b) => b, (b) => b.withStatefulReconnect()]) {
    await assert.rejects(build(new HubConnectionBuilder().withUrl(url)).build().start(), NegotiateError);
  }
  assert.deepEqual(urls, ["/hub/negotiate?negotiateVersion=1", "/hub/negotiate?negotiateVersion=1&useStatefulReconnect=true"]);
});

test("a negotiate with no answer times out (timeout option)", async (t) => {
  const url = await fakeServer(t, () => {});
  const hub = new HubConnectionBuilder().withUrl(url, { timeout: 200 }).build();
  const started = Date.now();
  await assert.rejects(hub.start(), (error) => {
    assert.ok(error instanceof TimeoutError);
    assert.equal(error.message, "Failed to complete negotiation with the server: TimeoutError: A timeout occurred.");
    return true;
  });
  assert.ok(Date.now() - started < 2000);
});
