// Invocations with the official client: results, send(), errors (spec §4, §8), the
// stream/invoke mismatch, and what a hub method sees of its connection and request.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MessageType, Subject } from "@microsoft/signalr";
import { PROTOCOLS, connect, encodeFrame, rawHub, startServer, stopAll, withTimeout } from "./server.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

/** Asserts that `promise` rejects with an Error whose message is exactly `text` (or matches it). */
async function rejectsWith(promise, text) {
  await assert.rejects(promise, (error) => {
    if (text instanceof RegExp) assert.match(error.message, text);
    else assert.equal(error.message, text);
    return true;
  });
}

for (const protocol of PROTOCOLS) {
  describe(`invoke (${protocol})`, () => {
    let hub;
    let detailed;
    let pushes;
    let record;
    before(async () => {
      pushes = [];
      record = [];
      hub = await connect(server.url("/hub"), {
        protocol,
        record,
        handlers: { receive: (label, text) => pushes.push([label, text]) },
      });
      detailed = await connect(server.url("/detailed"), { protocol });
    });
    after(() => stopAll(hub, detailed));

    it("Echo returns unicode strings unchanged", async () => {
      for (const text of ["hi", "héllo àçcénts", "日本語の文字", "emoji 😀🎉👩‍👩‍👧", "mixed é😀中\u0000end"]) {
        assert.equal(await hub.invoke("Echo", text), text);
      }
    });

    it("Echo returns the empty string", async () => {
      assert.equal(await hub.invoke("Echo", ""), "");
    });

    it("EchoValue round-trips nested values", async () => {
      const value = { a: [1, 2.5, "x", null, true], b: { c: "d" } };
      assert.deepEqual(await hub.invoke("EchoValue", value), value);
    });

    it("Add returns the sum", async () => {
      assert.equal(await hub.invoke("Add", 2, 40), 42);
      assert.equal(await hub.invoke("Add", -5, 3), -2);
    });

    it("Void resolves to null", async () => {
      assert.equal(await hub.invoke("Void"), null);
    });

    it("method names match case-insensitively", async () => {
      assert.equal(await hub.invoke("echo", "lower"), "lower");
      assert.equal(await hub.invoke("ECHO", "upper"), "upper");
      assert.equal(await hub.invoke("aDd", 1, 2), 3);
    });

    it("several concurrent invocations all complete with their own results", async () => {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => hub.invoke("Add", i, 1000)));
      assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => i + 1000));
    });

    it("invocations from one client run one at a time, in order", async () => {
      const order = [];
      await Promise.all([
        hub.invoke("Sleep", 200).then((ms) => order.push(["Sleep", ms])),
        hub.invoke("Echo", "after sleep").then((text) => order.push(["Echo", text])),
      ]);
      assert.deepEqual(order, [
        ["Sleep", 200],
        ["Echo", "after sleep"],
      ]);
    });

    it("an upload stream to a method without stream parameters: the stream-count error", async () => {
      const subject = new Subject();
      const pending = hub.invoke("Void", subject);
      subject.next(1);
      subject.complete();
      await rejectsWith(
        pending,
        "An unexpected error occurred invoking 'Void' on the server. HubException: Client sent 1 stream(s), Hub method expects 0.",
      );
      assert.equal(await hub.invoke("Echo", "after upload"), "after upload");
    });

    it("send() to SendToCaller still delivers the push", async () => {
      pushes.length = 0;
      await hub.send("SendToCaller", "via send");
      // The next invocation completes after the push (the caller's calls run in order).
      await hub.invoke("Void");
      assert.deepEqual(pushes, [["caller", "via send"]]);
    });

    it("send() gets no Completion back, even for unknown or throwing methods", async () => {
      record.length = 0;
      await hub.send("Nope");
      await hub.send("Throw");
      await hub.send("Add", 1);
      await hub.send("Echo", "ignored");
      assert.equal(await hub.invoke("Echo", "still usable"), "still usable");
      const completions = record.filter((m) => m.type === MessageType.Completion);
      assert.equal(completions.length, 1, `completions seen: ${JSON.stringify(completions)}`);
      assert.equal(completions[0].result, "still usable");
      const others = record.filter((m) => m.type !== MessageType.Completion && m.type !== MessageType.Ping);
      assert.deepEqual(others, []);
    });

    it("Throw gives the generic error without details on /hub", async () => {
      await rejectsWith(hub.invoke("Throw"), "An unexpected error occurred invoking 'Throw' on the server.");
    });

    it("Throw gives the generic error plus '<Type>: the database is down' on /detailed", async () => {
      await rejectsWith(
        detailed.invoke("Throw"),
        /^An unexpected error occurred invoking 'Throw' on the server\. \S+: the database is down$/,
      );
    });

    it("a typed error (ClientError) reads as a HubException's text; its value rides in a header the client ignores", async () => {
      record.length = 0;
      await rejectsWith(
        hub.invoke("Bounded", 9, 5),
        "An unexpected error occurred invoking 'Bounded' on the server. HubException: 9 is above 5",
      );
      await rejectsWith(
        hub.invoke("Bounded", -1, 5),
        "An unexpected error occurred invoking 'Bounded' on the server. HubException: negative values are refused",
      );
      assert.equal(await hub.invoke("Bounded", 3, 5), 3);
      // The official client parsed the Completions (headers included) and went on.
      const completion = record.find((m) => m.type === MessageType.Completion && m.error);
      assert.deepEqual(JSON.parse(completion.headers["hubs-error"]), {
        type: "ConformanceError",
        error: { kind: "OutOfRange", value: 9, max: 5 },
      });
    });

    it("a hub that refuses other contracts serves the official client, which presents none", async () => {
      const strict = await connect(server.url("/strict-contract"), { protocol });
      try {
        assert.equal(await strict.invoke("Echo", "ok"), "ok");
        assert.equal(await strict.invoke("TraceParent"), null, "the official client sends no invocation headers");
      } finally {
        await stopAll(strict);
      }
    });

    it("ThrowHub always appends 'HubException: <message>'", async () => {
      const text = "An unexpected error occurred invoking 'ThrowHub' on the server. HubException: x";
      await rejectsWith(hub.invoke("ThrowHub", "x"), text);
      await rejectsWith(detailed.invoke("ThrowHub", "x"), text);
    });

    it("an unknown method gives 'Method does not exist.'", async () => {
      const text = "Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist.";
      await rejectsWith(hub.invoke("Nope"), text);
      await rejectsWith(detailed.invoke("Nope"), text);
    });

    it("the wrong number of arguments gives the binding error", async () => {
      await rejectsWith(hub.invoke("Add", 1), "Failed to invoke 'Add' due to an error on the server.");
      await rejectsWith(
        detailed.invoke("Add", 1),
        "Failed to invoke 'Add' due to an error on the server. InvalidDataException: Invocation provides 1 argument(s) but target expects 2.",
      );
      await rejectsWith(
        detailed.invoke("Add", 1, 2, 3),
        "Failed to invoke 'Add' due to an error on the server. InvalidDataException: Invocation provides 3 argument(s) but target expects 2.",
      );
    });

    it("an argument of the wrong type gives the binding error", async () => {
      await rejectsWith(hub.invoke("Add", "a", 1), "Failed to invoke 'Add' due to an error on the server.");
      const binding =
        "Failed to invoke 'Add' due to an error on the server. InvalidDataException: Error binding arguments. " +
        "Make sure that the types of the provided values match the types of the hub method being invoked.";
      await rejectsWith(detailed.invoke("Add", "a", 1), binding);
      await rejectsWith(detailed.invoke("Add", 1.5, 1), binding);
    });

    // The conformance hub's Add is `a + b` on i64: 2^62 + 2^62 overflows, which panics in the
    // debug build the tests use. A panicking method is this server's "method threw": ASP.NET
    // sends the generic Completion error (§8) and the connection carries on.
    it(
      "a method that panics (Add overflow in the debug build) fails the invocation with the generic error",
      async () => {
        const raw = await rawHub(server.url("/hub"), protocol);
        try {
          if (protocol === "json") {
            const text = '{"type":1,"invocationId":"1","target":"Add","arguments":[4611686018427387904,4611686018427387904]}\u001e';
            raw.socket.write(encodeFrame(text, 1));
          } else {
            // [1, {}, "1", "Add", [int64 2^62, int64 2^62]] (the JS encoder can't write int64).
            const int64 = Buffer.from([0xd3, 0x40, 0, 0, 0, 0, 0, 0, 0]);
            const body = Buffer.concat([Buffer.from([0x95, 0x01, 0x80, 0xa1, 0x31, 0xa3, 0x41, 0x64, 0x64, 0x92]), int64, int64]);
            raw.socket.write(encodeFrame(Buffer.concat([Buffer.from([body.length]), body]), 2));
          }
          let message;
          do message = await raw.receive(2_000);
          while (message.type === MessageType.Ping);
          assert.deepEqual(
            [message.type, message.invocationId, message.error],
            [MessageType.Completion, "1", "An unexpected error occurred invoking 'Add' on the server."],
          );
          raw.send({ type: MessageType.Invocation, invocationId: "2", target: "Echo", arguments: ["after panic"], headers: {} });
          do message = await raw.receive(2_000);
          while (message.type === MessageType.Ping);
          assert.equal(message.result, "after panic");
        } finally {
          raw.close();
        }
      },
    );

    it("the connection stays usable after errors", async () => {
      await assert.rejects(hub.invoke("Throw"));
      await assert.rejects(hub.invoke("Nope"));
      assert.equal(await hub.invoke("Add", 20, 22), 42);
    });

    it("stream() on a non-streaming method errors the subscriber", async () => {
      const error = await withTimeout(
        new Promise((resolve, reject) => {
          hub.stream("Echo", "x").subscribe({
            next: (item) => reject(new Error(`unexpected item ${JSON.stringify(item)}`)),
            complete: () => reject(new Error("unexpected completion")),
            error: resolve,
          });
        }),
        3_000,
        "stream() did not finish",
      );
      assert.equal(
        error.message,
        "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation.",
      );
      assert.equal(await hub.invoke("Echo", "after stream"), "after stream");
    });

    it("ConnectionId equals the client's connectionId", async () => {
      assert.equal(typeof hub.connectionId, "string");
      assert.equal(await hub.invoke("ConnectionId"), hub.connectionId);
      assert.equal(await detailed.invoke("ConnectionId"), detailed.connectionId);
      assert.notEqual(hub.connectionId, detailed.connectionId);
    });

    it("Transport reports WebSockets", async () => {
      assert.match(await hub.invoke("Transport"), /websocket/i);
    });

    it("UserId is null without an access token", async () => {
      assert.equal(await hub.invoke("UserId"), null);
    });

    it("UserId is the bearer token from accessTokenFactory", async () => {
      const alice = await connect(server.url("/hub"), { protocol, accessTokenFactory: () => "alice" });
      try {
        assert.equal(await alice.invoke("UserId"), "alice");
      } finally {
        await alice.stop();
      }
    });

    it("Header sees a custom request header; absent headers are null", async () => {
      const client = await connect(server.url("/hub"), { protocol, headers: { "x-custom": "v" } });
      try {
        assert.equal(await client.invoke("Header", "x-custom"), "v");
        assert.equal(await client.invoke("Header", "X-Custom"), "v");
        assert.equal(await client.invoke("Header", "x-absent"), null);
      } finally {
        await client.stop();
      }
    });

    it("Query sees the hub URL's query string", async () => {
      const client = await connect(server.url("/hub?foo=bar&n=1"), { protocol });
      try {
        assert.equal(await client.invoke("Query", "foo"), "bar");
        assert.equal(await client.invoke("Query", "n"), "1");
        assert.equal(await client.invoke("Query", "absent"), null);
      } finally {
        await client.stop();
      }
    });

    it("per-connection state is isolated between connections", async () => {
      const other = await connect(server.url("/hub"), { protocol });
      try {
        assert.equal(await hub.invoke("GetState"), null);
        await hub.invoke("SetState", "mine");
        assert.equal(await other.invoke("GetState"), null);
        await other.invoke("SetState", "theirs");
        assert.equal(await hub.invoke("GetState"), "mine");
        assert.equal(await other.invoke("GetState"), "theirs");
        await hub.invoke("SetState", "changed");
        assert.equal(await hub.invoke("GetState"), "changed");
        assert.equal(await other.invoke("GetState"), "theirs");
      } finally {
        await other.stop();
      }
    });
  });
}
