// A connection endpoint without the hub protocol (`/raw-echo`, HubServerBuilder::connection_handler,
// ASP.NET Core's MapConnectionHandler) with the official client's own HttpConnection — what
// HubConnection runs on, used here directly, as an application of ASP.NET's connection handlers
// would: negotiate, then every transport carries the client's bytes to the handler and back.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, describe, it } from "node:test";
import { HttpTransportType, TransferFormat, LogLevel } from "@microsoft/signalr";
import { rawUpgrade, startServer, withTimeout, FrameReader, encodeFrame } from "./server.mjs";

const require = createRequire(import.meta.url);
// Not re-exported by the package's index; the class HubConnection uses.
const { HttpConnection } = require("@microsoft/signalr/dist/cjs/HttpConnection.js");

const logger = { log(level, message) { if (level >= LogLevel.Error) console.error(message); } };

/** An HttpConnection to `url` over `transport`, started with `format`; collects what it receives. */
async function open(url, transport, format) {
  const connection = new HttpConnection(url, { transport, logger });
  const received = [];
  let closedWith;
  const closed = new Promise((resolve) => {
    connection.onclose = (error) => {
      closedWith = error;
      resolve(error);
    };
  });
  connection.onreceive = (data) => received.push(data);
  await withTimeout(connection.start(format), 10_000, "start");
  return { connection, received, closed, closedError: () => closedWith };
}

async function waitFor(check, what) {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const text = (data) => (typeof data === "string" ? data : Buffer.from(data).toString("utf8"));

describe("connection endpoints without the hub protocol, official HttpConnection", { timeout: 60_000 }, () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  for (const [name, transport] of [
    ["WebSockets", HttpTransportType.WebSockets],
    ["ServerSentEvents", HttpTransportType.ServerSentEvents],
    ["LongPolling", HttpTransportType.LongPolling],
  ]) {
    it(`echoes text over ${name}, in order, and ends when the server ends it`, async () => {
      const { connection, received, closed } = await open(server.url("/raw-echo"), transport, TransferFormat.Text);
      assert.ok(connection.connectionId, "negotiated a connection id");
      const sent = ["hello", "with\nnewlines", "ünïcödé ✓", "x".repeat(20_000)];
      for (const message of sent) await connection.send(message);
      await waitFor(() => received.map(text).join("") === sent.join(""), `the echo of ${sent.length} messages`);
      // `bye` makes the handler return: the server ends the connection.
      await connection.send("bye");
      await withTimeout(closed, 10_000, "the server's end of the connection");
    });
  }

  for (const [name, transport] of [
    ["WebSockets", HttpTransportType.WebSockets],
    ["LongPolling", HttpTransportType.LongPolling],
  ]) {
    it(`echoes binary over ${name}`, async () => {
      const { connection, received } = await open(server.url("/raw-echo"), transport, TransferFormat.Binary);
      const bytes = new Uint8Array([0, 1, 2, 255, 254, 0x1e]);
      await connection.send(bytes.buffer);
      await waitFor(() => received.length > 0, "the echo");
      const back = new Uint8Array(received[0]);
      assert.deepEqual([...back], [...bytes]);
      await connection.stop();
    });
  }

  it("a raw WebSocket client's close is answered with 1000, and the binary switch gives binary frames", async () => {
    const negotiate = await fetch(server.url("/raw-echo/negotiate?negotiateVersion=1"), { method: "POST" });
    const { connectionToken } = await negotiate.json();
    const upgrade = await rawUpgrade(server.url(`/raw-echo?id=${connectionToken}`));
    assert.equal(upgrade.status, 101, upgrade.body);
    const { socket } = upgrade;
    const reader = new FrameReader(socket, upgrade.head);
    socket.write(encodeFrame(Buffer.from("binary"), 1));
    const frame = await withTimeout(reader.next(), 5_000, "the echo");
    assert.equal(frame.opcode, 2, "a binary frame after the switch");
    assert.equal(frame.payload.toString(), "binary");
    socket.write(encodeFrame(Buffer.from([0x03, 0xe8]), 8)); // Close 1000
    const close = await withTimeout(reader.next(), 5_000, "the server's close");
    assert.equal(close.opcode, 8);
    assert.equal(close.payload.readUInt16BE(0), 1000);
    socket.destroy();
  });

  it("refuses stateful reconnect and lists every transport at negotiate", async () => {
    const response = await fetch(server.url("/raw-echo/negotiate?negotiateVersion=1&useStatefulReconnect=true"), { method: "POST" });
    const body = await response.json();
    assert.equal(body.useStatefulReconnect, undefined);
    assert.deepEqual(body.availableTransports.map((t) => t.transport), ["WebSockets", "ServerSentEvents", "LongPolling"]);
  });
});
