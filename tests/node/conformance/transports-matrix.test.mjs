// The same hub over Server-Sent Events and long polling with the official client (spec §2.2,
// §2.3): SSE×json, LP×json and LP×messagepack each run invocations and errors, pushes between two
// clients, a server stream, an upload, a client result, auth, and stop(). A hub that offers only
// SSE and long polling makes a default client pick the right one (checklist 4).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DefaultHttpClient, HttpTransportType, NullLogger, Subject } from "@microsoft/signalr";
import { Inbox, connect, startServer, stopAll, waitUntil, withTimeout } from "./server.mjs";

/** An official HttpClient that records every request it makes and how it ended. */
class RecordingHttpClient extends DefaultHttpClient {
  constructor() {
    super(NullLogger.instance);
    this.log = [];
  }

  async send(request) {
    try {
      const response = await super.send(request);
      this.log.push({ method: request.method, url: request.url, status: response.statusCode });
      return response;
    } catch (error) {
      this.log.push({ method: request.method, url: request.url, status: error.statusCode, error });
      throw error;
    }
  }
}

async function rejectsWith(promise, text) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.message, text);
    return true;
  });
}

const MATRIX = [
  { name: "SSE×json", transport: HttpTransportType.ServerSentEvents, protocol: "json", expect: "ServerSentEvents" },
  { name: "LP×json", transport: HttpTransportType.LongPolling, protocol: "json", expect: "LongPolling" },
  { name: "LP×messagepack", transport: HttpTransportType.LongPolling, protocol: "messagepack", expect: "LongPolling" },
];

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

for (const { name, transport, protocol, expect } of MATRIX) {
  describe(`transport matrix: ${name}`, () => {
    let inbox;
    let a;
    let b;
    let answers;
    before(async () => {
      inbox = new Inbox();
      answers = [];
      const open = (label, token) =>
        connect(server.url("/hub"), {
          transport,
          protocol,
          accessTokenFactory: () => token,
          handlers: {
            receive: inbox.handler(label),
            getAnswer: (question) => {
              answers.push(question);
              return `answer:${question}`;
            },
          },
        });
      [a, b] = await Promise.all([open("a", "alice"), open("b", "bob")]);
    });
    after(() => stopAll(a, b));

    it(`runs over ${expect}, with the bearer token as the user (access_token / Authorization)`, async () => {
      assert.equal(await a.invoke("Transport"), expect);
      assert.equal(await a.invoke("UserId"), "alice");
      assert.equal(await b.invoke("UserId"), "bob");
      assert.notEqual(a.connectionId, b.connectionId);
    });

    it("Echo, Add and Void", async () => {
      for (const text of ["hi", "héllo 😀", "", "line\nbreak\r\nand\u001e separator"]) {
        assert.equal(await a.invoke("Echo", text), text);
      }
      assert.equal(await a.invoke("Add", 2, 40), 42);
      assert.equal(await a.invoke("Void"), null);
      assert.deepEqual(await a.invoke("EchoValue", { x: [1, "y", null] }), { x: [1, "y", null] });
    });

    it("many concurrent invocations complete in order", async () => {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => a.invoke("Add", i, 1000)));
      assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => i + 1000));
    });

    it("errors: a throwing method, a HubException, an unknown method", async () => {
      await rejectsWith(a.invoke("Throw"), "An unexpected error occurred invoking 'Throw' on the server.");
      await rejectsWith(
        a.invoke("ThrowHub", "x"),
        "An unexpected error occurred invoking 'ThrowHub' on the server. HubException: x",
      );
      await rejectsWith(
        a.invoke("Nope"),
        "Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist.",
      );
      assert.equal(await a.invoke("Echo", "still connected"), "still connected");
    });

    it("pushes to the caller, a group and everyone reach the right clients", async () => {
      await a.invoke("SendToCaller", "me");
      await inbox.expect(a, { a: [["caller", "me"]] });
      await b.invoke("JoinGroup", "g");
      await a.invoke("SendToGroup", "g", "group");
      await inbox.expect(a, { b: [["group", "group"]] });
      await b.invoke("SendToAll", "everyone");
      await inbox.expect(a, { a: [["all", "everyone"]], b: [["all", "everyone"]] });
      await a.invoke("SendToOthers", "others");
      await inbox.expect(a, { b: [["others", "others"]] });
    });

    it("a server stream delivers its items in order, then completes", async () => {
      const items = await new Promise((resolve, reject) => {
        const got = [];
        a.stream("Counter", 20, 2).subscribe({
          next: (item) => got.push(item),
          complete: () => resolve(got),
          error: reject,
        });
      });
      assert.deepEqual(items, Array.from({ length: 20 }, (_, i) => i));
    });

    it("an upload stream reaches the method", async () => {
      const subject = new Subject();
      const total = a.invoke("Sum", subject);
      for (const n of [1, 2, 3, 4]) subject.next(n);
      subject.complete();
      assert.equal(await withTimeout(total, 5_000, "Sum did not complete"), 10);
    });

    it("a client result round-trips", async () => {
      assert.equal(await a.invoke("AskCaller", "q1"), "answer:q1");
      assert.equal(await b.invoke("AskClient", a.connectionId, "q2"), "answer:q2");
      assert.deepEqual(answers, ["q1", "q2"]);
    });

    it(`stop() ends the connection cleanly${transport === HttpTransportType.LongPolling ? " (DELETE → 202)" : ""}`, async () => {
      const httpClient = new RecordingHttpClient();
      const hub = await connect(server.url("/hub"), { transport, protocol, httpClient });
      const id = hub.connectionId;
      assert.equal(await hub.invoke("Echo", "bye"), "bye");
      await hub.stop();
      if (transport === HttpTransportType.LongPolling) {
        const deletes = httpClient.log.filter((entry) => entry.method === "DELETE");
        assert.equal(deletes.length, 1);
        assert.equal(deletes[0].status, 202);
      }
      const entry = await waitUntil(
        async () => (await a.invoke("Disconnections")).find(([cid]) => cid === id),
        3_000,
        "the server did not see the disconnection",
      );
      assert.deepEqual(entry, [id, null]);
    });
  });
}

describe("a hub offering only Server-Sent Events and long polling", () => {
  let hubs = [];
  after(() => stopAll(hubs));

  it("negotiate lists SSE (Text) then LP (Text, Binary)", async () => {
    const response = await fetch(`${server.url("/no-ws")}/negotiate?negotiateVersion=1`, { method: "POST" });
    assert.deepEqual((await response.json()).availableTransports, [
      { transport: "ServerSentEvents", transferFormats: ["Text"] },
      { transport: "LongPolling", transferFormats: ["Text", "Binary"] },
    ]);
  });

  it("a messagepack client with default transports picks long polling", async () => {
    const hub = await connect(server.url("/no-ws"), { transport: undefined, protocol: "messagepack" });
    hubs.push(hub);
    assert.equal(await hub.invoke("Transport"), "LongPolling");
    assert.equal(await hub.invoke("Echo", "msgpack"), "msgpack");
  });

  it("a JSON client with default transports picks Server-Sent Events", async () => {
    const hub = await connect(server.url("/no-ws"), { transport: undefined, protocol: "json" });
    hubs.push(hub);
    assert.equal(await hub.invoke("Transport"), "ServerSentEvents");
  });

  it("a client that wants WebSockets only cannot start", async () => {
    await assert.rejects(
      connect(server.url("/no-ws"), { transport: HttpTransportType.WebSockets }),
      /'ServerSentEvents' is disabled by the client\. LongPolling failed: Error: 'LongPolling' is disabled by the client\./,
    );
  });

  it("messagepack over SSE is refused by the client itself (SSE lists only Text)", async () => {
    await assert.rejects(
      connect(server.url("/hub"), { transport: HttpTransportType.ServerSentEvents, protocol: "messagepack" }),
      /'ServerSentEvents' does not support Binary/,
    );
  });
});
