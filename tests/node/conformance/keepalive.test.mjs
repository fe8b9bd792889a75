// Keep-alive and client timeout (spec §6, §8, §7.1) with short timers:
// KEEP_ALIVE_MS=300, CLIENT_TIMEOUT_MS=1500.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { HubConnectionState, MessageType } from "@microsoft/signalr";
import {
  PROTOCOLS,
  connect,
  delay,
  nextEvent,
  rawHub,
  rawUpgrade,
  startServer,
  stopAll,
  waitUntil,
} from "./server.mjs";

const TIMEOUT_CLOSE = "Server returned an error on close: Connection closed with an error.";

let server;
before(async () => {
  server = await startServer({ KEEP_ALIVE_MS: "300", CLIENT_TIMEOUT_MS: "1500" });
});
after(async () => {
  await server?.stop();
});

describe("disconnect timeout (DISCONNECT_TIMEOUT_MS=500)", () => {
  let shortServer;
  before(async () => {
    shortServer = await startServer({ DISCONNECT_TIMEOUT_MS: "500" });
  });
  after(() => shortServer?.stop());

  it("a negotiated connection no transport attaches to expires (its token then gets 404)", async () => {
    const negotiate = () =>
      fetch(shortServer.url("/hub/negotiate?negotiateVersion=1"), { method: "POST" }).then((r) => r.json());
    const [fresh, stale] = await Promise.all([negotiate(), negotiate()]);
    const early = await rawUpgrade(shortServer.url(`/hub?id=${fresh.connectionToken}`));
    early.socket?.destroy();
    assert.equal(early.status, 101, "a fresh token must work");
    // 500 ms timeout + a scan every second (§1 Lifetime), with margin.
    await delay(2_500);
    const late = await rawUpgrade(shortServer.url(`/hub?id=${stale.connectionToken}`));
    late.socket?.destroy();
    assert.equal(late.status, 404);
  });
});

// Every test waits on timers and uses its own connections, so they all run concurrently.
describe("keep-alive", { concurrency: true }, () => {
  for (const protocol of PROTOCOLS) {
    describe(`keep-alive and timeout (${protocol})`, { concurrency: true }, () => {
      it("an idle client with a 1 s server timeout survives 3 s thanks to server pings", async () => {
        const record = [];
        const client = await connect(server.url("/hub"), {
          protocol,
          record,
          serverTimeoutInMilliseconds: 1_000,
          keepAliveIntervalInMilliseconds: 300,
        });
        let closed;
        client.onclose((error) => {
          closed = error ?? "closed without error";
        });
        try {
          await delay(3_000);
          assert.equal(closed, undefined, `closed: ${closed}`);
          assert.equal(client.state, HubConnectionState.Connected);
          const pings = record.filter((m) => m.type === MessageType.Ping).length;
          // Every 300 ms for 3 s would be ~10; allow for coarse server ticks.
          assert.ok(pings >= 3, `only ${pings} server pings in 3 s`);
          assert.equal(await client.invoke("Echo", "still here"), "still here");
        } finally {
          await client.stop();
        }
      });

      it("raw: server pings are whole Ping messages in the protocol's frame type", async () => {
        const hub = await rawHub(server.url("/hub"), protocol);
        try {
          const first = await hub.receive(2_000);
          const second = await hub.receive(2_000);
          assert.deepEqual(first, { type: MessageType.Ping });
          assert.deepEqual(second, { type: MessageType.Ping });
          const frameType = protocol === "messagepack" ? 2 : 1;
          // messagepack: varint 2 + [6] = 02 91 06; json: {"type":6}␞
          const bytes = protocol === "messagepack" ? Buffer.from([0x02, 0x91, 0x06]) : Buffer.from('{"type":6}\u001e');
          assert.deepEqual(Buffer.concat(hub.frames.map((f) => f.payload)), Buffer.concat([bytes, bytes]));
          for (const frame of hub.frames) assert.equal(frame.opcode, frameType);
        } finally {
          hub.close();
        }
      });

      it("raw: without a client Ping the server never times the client out", async () => {
        // ClientTimeoutInterval is armed only after the first client Ping (§6).
        const hub = await rawHub(server.url("/hub"), protocol);
        try {
          await delay(2_500);
          hub.send({ type: MessageType.Invocation, invocationId: "1", target: "Echo", arguments: ["alive"], headers: {} });
          let message;
          do message = await hub.receive(2_000);
          while (message.type === MessageType.Ping);
          assert.equal(message.type, MessageType.Completion);
          assert.equal(message.result, "alive");
        } finally {
          hub.close();
        }
      });

      it("a client that stops pinging is closed with an error after the client timeout", async () => {
        const record = [];
        const client = await connect(server.url("/hub"), {
          protocol,
          record,
          keepAliveIntervalInMilliseconds: 60_000,
          serverTimeoutInMilliseconds: 60_000,
        });
        // The observer pings, so the server's client timeout leaves it alone.
        const observer = await connect(server.url("/hub"), { protocol, keepAliveIntervalInMilliseconds: 300 });
        try {
          const id = client.connectionId;
          const started = Date.now();
          const { arg: error } = await nextEvent(client, "onclose", 4_000);
          const elapsed = Date.now() - started;
          assert.ok(error instanceof Error, "onclose got no error");
          assert.equal(error.message, TIMEOUT_CLOSE);
          assert.ok(elapsed >= 1_000, `closed after only ${elapsed} ms`);
          const close = record.find((m) => m.type === MessageType.Close);
          assert.equal(close?.error, "Connection closed with an error.");
          assert.equal(close?.allowReconnect, true);
          const entry = await waitUntil(
            async () => (await observer.invoke("Disconnections")).find(([cid]) => cid === id),
            2_000,
            "OnDisconnected not recorded",
          );
          assert.equal(typeof entry[1], "string", "OnDisconnected should see an error for a timeout");
        } finally {
          await stopAll(client, observer);
        }
      });

      it("the timeout Close allows reconnect: withAutomaticReconnect reconnects with a new connection id", async () => {
        const client = await connect(server.url("/hub"), {
          protocol,
          reconnect: [0],
          keepAliveIntervalInMilliseconds: 60_000,
          serverTimeoutInMilliseconds: 60_000,
        });
        try {
          const oldId = client.connectionId;
          const reconnecting = nextEvent(client, "onreconnecting", 4_000);
          const reconnected = nextEvent(client, "onreconnected", 6_000);
          const { arg: error } = await reconnecting;
          assert.equal(error?.message, TIMEOUT_CLOSE);
          const { arg: newId } = await reconnected;
          assert.equal(client.state, HubConnectionState.Connected);
          assert.notEqual(newId, oldId);
          assert.equal(newId, client.connectionId);
          assert.equal(await client.invoke("ConnectionId"), newId);
        } finally {
          await client.stop();
        }
      });
    });
  }
});
