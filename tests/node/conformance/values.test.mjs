// Values each protocol renders natively, through a `RawValue` parameter and result (`EchoRaw`):
// the official MessagePack protocol sends a Date as a MessagePack timestamp and a Uint8Array as
// `bin`, and both come back as what they were — the server carried the bytes as they arrived; in
// JSON the value's text comes back as it was sent. And `Timestamp` / `Binary` parameters and
// results (`OneSecondLater`, `Reversed`): a Date and a Uint8Array in MessagePack, ISO text and
// base64 in JSON — what .NET's hubs give these clients for DateTime and byte[].
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { HttpTransportType } from "@microsoft/signalr";
import { connect, startServer, stopAll } from "./server.mjs";

describe("RawValue parameters and results, official client", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  it("MessagePack: a timestamp and bin come back as a Date and a Uint8Array", async () => {
    const connection = await connect(server.url(), { protocol: "messagepack", transport: HttpTransportType.WebSockets });
    try {
      const when = new Date(Date.UTC(2026, 11, 6, 12, 34, 56, 789));
      const sent = { when, blob: new Uint8Array([0, 1, 254, 255]), n: [1, -2, 3.5], text: "ü", none: null };
      const back = await connection.invoke("EchoRaw", sent);
      assert.ok(back.when instanceof Date, `a Date, not ${typeof back.when}`);
      assert.equal(back.when.getTime(), when.getTime());
      assert.ok(back.blob instanceof Uint8Array, "a Uint8Array");
      assert.deepEqual([...back.blob], [0, 1, 254, 255]);
      assert.deepEqual(back.n, [1, -2, 3.5]);
      assert.equal(back.text, "ü");
      assert.equal(back.none, null);
    } finally {
      await stopAll(connection);
    }
  });

  it("JSON: any value comes back as sent", async () => {
    const connection = await connect(server.url(), { protocol: "json" });
    try {
      const sent = { nested: { list: [1, "two", true, null, { x: 1.25 }] }, big: 9007199254740991 };
      assert.deepEqual(await connection.invoke("EchoRaw", sent), sent);
      assert.equal(await connection.invoke("EchoRaw", "just a string"), "just a string");
    } finally {
      await stopAll(connection);
    }
  });

  it("Timestamp and Binary: a Date and a Uint8Array in MessagePack", async () => {
    const connection = await connect(server.url(), { protocol: "messagepack" });
    try {
      const when = new Date(Date.UTC(2026, 11, 6, 12, 34, 56, 789));
      const later = await connection.invoke("OneSecondLater", when);
      assert.ok(later instanceof Date, `a Date, not ${typeof later}`);
      assert.equal(later.getTime(), when.getTime() + 1000);
      const reversed = await connection.invoke("Reversed", new Uint8Array([1, 2, 255]));
      assert.ok(reversed instanceof Uint8Array, "a Uint8Array");
      assert.deepEqual([...reversed], [255, 2, 1]);
      // ISO text is a timestamp too, whatever the protocol.
      const fromText = await connection.invoke("OneSecondLater", "2026-12-06T14:34:56.789+02:00");
      assert.equal(fromText.getTime(), when.getTime() + 1000);
    } finally {
      await stopAll(connection);
    }
  });

  it("Timestamp and Binary: ISO text and base64 in JSON", async () => {
    const connection = await connect(server.url(), { protocol: "json" });
    try {
      const when = new Date(Date.UTC(2026, 11, 6, 12, 34, 56, 789));
      // A Date goes out as its ISO text (JSON.stringify).
      assert.equal(await connection.invoke("OneSecondLater", when), "2026-12-06T12:34:57.789Z");
      assert.equal(await connection.invoke("Reversed", Buffer.from([1, 2, 255]).toString("base64")), Buffer.from([255, 2, 1]).toString("base64"));
      await assert.rejects(connection.invoke("OneSecondLater", "yesterday"), /Failed to invoke 'OneSecondLater' due to an error on the server|invalid|binding|error/i);
    } finally {
      await stopAll(connection);
    }
  });
});
