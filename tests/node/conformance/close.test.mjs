// How connections end (spec §7.1, §8): server abort and kick (Close without allowReconnect),
// client stop (OnDisconnected without error), graceful shutdown (Close with allowReconnect),
// and the maximum message size (Close with error + allowReconnect).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { HubConnectionState, JsonHubProtocol, MessageType } from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import {
  PROTOCOLS,
  connect,
  delay,
  encodeFrame,
  nextEvent,
  rawHub,
  startServer,
  stopAll,
  waitUntil,
  withTimeout,
} from "./server.mjs";

const ERROR_CLOSE = "Server returned an error on close: Connection closed with an error.";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

/** Waits until OnDisconnected was recorded for `id`; resolves with its error (null if none). */
async function disconnection(observer, id) {
  const entry = await waitUntil(
    async () => (await observer.invoke("Disconnections")).find(([cid]) => cid === id),
    3_000,
    `OnDisconnected not recorded for ${id}`,
  );
  return entry[1];
}

/** Records whether onreconnecting ever fires. */
function watchReconnects(connection) {
  const seen = { reconnecting: 0 };
  connection.onreconnecting(() => {
    seen.reconnecting += 1;
  });
  return seen;
}

for (const protocol of PROTOCOLS) {
  describe(`close (${protocol})`, () => {
    let observer;
    before(async () => {
      observer = await connect(server.url("/hub"), { protocol });
    });
    after(() => stopAll(observer));

    it("Abort: onclose without error, and an auto-reconnecting client stays down", async () => {
      const record = [];
      const client = await connect(server.url("/hub"), { protocol, reconnect: [0, 0, 0], record });
      try {
        const id = client.connectionId;
        const seen = watchReconnects(client);
        const closed = nextEvent(client, "onclose");
        // The Completion may or may not beat the close; either is fine.
        await client.invoke("Abort").catch(() => {});
        const { arg: error } = await closed;
        assert.equal(error, undefined);
        assert.equal(client.state, HubConnectionState.Disconnected);
        assert.equal(seen.reconnecting, 0);
        const close = record.find((m) => m.type === MessageType.Close);
        assert.ok(close, "no Close message before the socket closed");
        assert.equal(close.error ?? null, null); // json omits it, messagepack writes nil
        assert.notEqual(close.allowReconnect, true);
        assert.equal(await disconnection(observer, id), null);
        await delay(100);
        assert.equal(client.state, HubConnectionState.Disconnected);
        assert.equal(seen.reconnecting, 0);
      } finally {
        await client.stop();
      }
    });

    it("Kick from another connection: onclose without error, no reconnect; Kick returns whether it found it", async () => {
      const client = await connect(server.url("/hub"), { protocol, reconnect: [0, 0, 0] });
      try {
        const id = client.connectionId; // the client forgets it once closed
        const seen = watchReconnects(client);
        const closed = nextEvent(client, "onclose");
        assert.equal(await observer.invoke("Kick", id), true);
        const { arg: error } = await closed;
        assert.equal(error, undefined);
        assert.equal(client.state, HubConnectionState.Disconnected);
        assert.equal(seen.reconnecting, 0);
        assert.equal(await disconnection(observer, id), null);
        assert.equal(await observer.invoke("Kick", id), false);
        assert.equal(await observer.invoke("Kick", "no-such-connection"), false);
      } finally {
        await client.stop();
      }
    });

    it("client stop(): OnDisconnected records the connection with a null error", async () => {
      const client = await connect(server.url("/hub"), { protocol });
      const id = client.connectionId;
      await client.stop();
      assert.equal(await disconnection(observer, id), null);
    });

    it("stop() while an invocation runs: it is rejected and OnDisconnected sees no error", async () => {
      const client = await connect(server.url("/hub"), { protocol });
      const id = client.connectionId;
      const pending = client.invoke("Sleep", 5_000);
      await delay(50);
      await client.stop();
      await assert.rejects(pending);
      assert.equal(await disconnection(observer, id), null);
    });

    it("a 20 KB message works", async () => {
      const client = await connect(server.url("/hub"), { protocol });
      try {
        const text = "x".repeat(20 * 1024);
        assert.equal(await client.invoke("Echo", text), text);
      } finally {
        await client.stop();
      }
    });

    it("a 40 KB message: the server closes with an error that allows reconnect", async () => {
      const record = [];
      const client = await connect(server.url("/hub"), { protocol, record });
      try {
        const id = client.connectionId;
        const closed = nextEvent(client, "onclose");
        const pending = client.invoke("Echo", "y".repeat(40 * 1024));
        const { arg: error } = await closed;
        assert.ok(error instanceof Error, "onclose got no error");
        assert.match(error.message, /Connection closed with an error\./);
        assert.equal(error.message, ERROR_CLOSE);
        await assert.rejects(pending);
        const close = record.find((m) => m.type === MessageType.Close);
        assert.equal(close?.error, "Connection closed with an error.");
        assert.equal(close?.allowReconnect, true);
        assert.equal(typeof (await disconnection(observer, id)), "string");
      } finally {
        await client.stop();
      }
    });

    // ASP.NET gives the parser a window of MaximumReceiveMessageSize bytes, so the limit counts
    // the framing too: the JSON record separator, the MessagePack length prefix
    // (HubConnectionHandler.DispatchMessagesAsync).
    const LIMIT = 32 * 1024;
    /** An Echo invocation whose framed size (separator / varint included) is exactly `size`. */
    function echoOfSize(size) {
      const hubProtocol = protocol === "messagepack" ? new MessagePackHubProtocol() : new JsonHubProtocol();
      const bytes = (n) => {
        const data = hubProtocol.writeMessage({
          type: MessageType.Invocation,
          invocationId: "1",
          target: "Echo",
          arguments: ["s".repeat(n)],
          headers: {},
        });
        return typeof data === "string" ? Buffer.from(data) : Buffer.from(data);
      };
      let n = size - bytes(0).length;
      let message = bytes(n);
      while (message.length > size) message = bytes(--n);
      while (message.length < size) message = bytes(++n);
      assert.equal(message.length, size, "could not build a message of that size");
      return message;
    }
    async function sendRaw(size) {
      const hub = await rawHub(server.url("/hub"), protocol);
      try {
        hub.socket.write(encodeFrame(echoOfSize(size), protocol === "messagepack" ? 2 : 1));
        let message;
        do message = await hub.receive();
        while (message.type === MessageType.Ping);
        return message;
      } finally {
        hub.close();
      }
    }

    it("raw: a message of exactly 32 KiB, framing included, is accepted", async () => {
      const message = await sendRaw(LIMIT);
      assert.equal(message.type, MessageType.Completion);
      assert.equal(typeof message.result, "string");
    });

    it(
      "raw: a message of 32 KiB + 1 byte, framing included, is rejected",
      async () => {
        const message = await sendRaw(LIMIT + 1);
        assert.equal(message.type, MessageType.Close, `got ${JSON.stringify(message).slice(0, 120)}`);
        assert.equal(message.error, "Connection closed with an error.");
        assert.equal(message.allowReconnect, true);
      },
    );

    it("raw: a message of 32 KiB + 8 bytes is rejected", async () => {
      const message = await sendRaw(LIMIT + 8);
      assert.equal(message.type, MessageType.Close, `got ${JSON.stringify(message).slice(0, 200)}`);
      assert.equal(message.error, "Connection closed with an error.");
      assert.equal(message.allowReconnect, true);
    });

    it("raw: a client that keeps sending after an over-limit message still gets the Close with the error", async () => {
      // Before: the server closed the socket with the client's input unread, the kernel reset
      // the connection, and the reset discarded the Close (the client saw 1006).
      const hub = await rawHub(server.url("/hub"), protocol);
      const opcode = protocol === "messagepack" ? 2 : 1;
      const more = encodeFrame(echoOfSize(1024), opcode);
      let writing = true;
      try {
        // Not reading for a while: the Close waits in this side's buffers, where a reset from
        // the server would discard it.
        hub.socket.pause();
        hub.socket.write(encodeFrame(echoOfSize(LIMIT + 8), opcode));
        // Keep sending, as a client that has not noticed yet does.
        (async () => {
          while (writing && !hub.socket.destroyed) {
            hub.socket.write(more);
            await new Promise((resolve) => setTimeout(resolve, 1));
          }
        })().catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, 300));
        hub.socket.resume();
        let message;
        do message = await hub.receive(5_000);
        while (message.type !== MessageType.Close);
        assert.equal(message.error, "Connection closed with an error.");
        assert.equal(message.allowReconnect, true);
      } finally {
        writing = false;
        hub.close();
      }
    });

    it("a 40 KB message with automatic reconnect: the client comes back with a new id", async () => {
      const client = await connect(server.url("/hub"), { protocol, reconnect: [0] });
      try {
        const oldId = client.connectionId;
        const reconnecting = nextEvent(client, "onreconnecting");
        const reconnected = nextEvent(client, "onreconnected");
        client.invoke("Echo", "z".repeat(40 * 1024)).catch(() => {});
        assert.equal((await reconnecting).arg?.message, ERROR_CLOSE);
        const { arg: newId } = await reconnected;
        assert.notEqual(newId, oldId);
        assert.equal(await client.invoke("ConnectionId"), newId);
      } finally {
        await client.stop();
      }
    });
  });
}

for (const protocol of PROTOCOLS) {
  describe(`graceful shutdown (${protocol})`, () => {
    let shutdownServer;
    before(async () => {
      shutdownServer = await startServer({ SHUTDOWN_TIMEOUT_MS: "500" });
    });
    after(() => shutdownServer?.stop());

    it("Shutdown: Close with allowReconnect and no error; reconnecting clients try again; the process exits", async () => {
      const url = shutdownServer.url("/hub");
      const record = [];
      const reconnecting = await connect(url, { protocol, reconnect: [0, 200, 500], record });
      const plain = await connect(url, { protocol });
      try {
        const gotReconnecting = nextEvent(reconnecting, "onreconnecting");
        const finallyClosed = nextEvent(reconnecting, "onclose", 8_000);
        const plainClosed = nextEvent(plain, "onclose");
        await plain.invoke("Shutdown").catch(() => {});
        const { arg: reconnectError } = await gotReconnecting;
        assert.equal(reconnectError, undefined, `onreconnecting got ${reconnectError}`);
        const close = record.find((m) => m.type === MessageType.Close);
        assert.ok(close, "no Close message");
        assert.equal(close.error ?? null, null); // json omits it, messagepack writes nil
        assert.equal(close.allowReconnect, true);
        const { arg: plainError } = await plainClosed;
        assert.equal(plainError, undefined);
        // The server is gone, so the reconnect attempts fail and the client ends up closed.
        const [code, signal] = await withTimeout(shutdownServer.exited, 5_000, "the server did not exit after Shutdown");
        assert.equal(code, 0, `server exit: ${code ?? signal}`);
        await finallyClosed;
        assert.equal(reconnecting.state, HubConnectionState.Disconnected);
      } finally {
        await stopAll(reconnecting, plain);
      }
    });
  });
}

describe("SIGTERM (what Docker, Kubernetes and systemd send)", () => {
  let server;
  before(async () => {
    server = await startServer({ SHUTDOWN_TIMEOUT_MS: "2000" });
  });
  after(() => server?.stop());

  it("lets an in-flight invocation finish, sends Close with allowReconnect, and exits with 0", async () => {
    const record = [];
    const client = await connect(server.url("/hub"), { record });
    try {
      const closed = nextEvent(client, "onclose");
      const sleeping = client.invoke("Sleep", 300);
      await delay(50); // the invocation is running when the signal arrives
      server.child.kill("SIGTERM");
      assert.equal(await sleeping, 300, "the running invocation got its grace period");
      const { arg: error } = await closed;
      assert.equal(error, undefined);
      const close = record.find((m) => m.type === MessageType.Close);
      assert.ok(close, "no Close message");
      assert.equal(close.allowReconnect, true);
      const [code, signal] = await withTimeout(server.exited, 5_000, "the server did not exit after SIGTERM");
      assert.equal(code, 0, `server exit: ${code ?? signal}`);
    } finally {
      await stopAll(client);
    }
  });
});
