// The client against the Rust conformance hub over every transport × protocol it supports.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import {
  AbortError,
  HandshakeError,
  HttpTransportType,
  HubConnectionBuilder,
  HubConnectionState,
  HubError,
  JsonHubProtocol,
  NegotiateError,
} from "../dist/index.js";
import { MessagePackHubProtocol } from "../dist/msgpack.js";
import { startServer } from "./server.mjs";

let server;
before(async () => (server = await startServer()));
after(() => server?.stop());

const protocols = { json: () => new JsonHubProtocol(), messagepack: () => new MessagePackHubProtocol() };

/**
 * A connection whose client→server traffic is recorded (WebSocket sends and POST bodies):
 * `sent()` decodes it into hub messages (the handshake left out).
 */
function client({ path = "/hub", transport, protocol = "json", options = {}, build = (b) => b } = {}) {
  const chunks = [];
  class RecordingWebSocket extends WebSocket {
    send(data, ...rest) {
      chunks.push(typeof data === "string" ? data : new Uint8Array(data));
      return super.send(data, ...rest);
    }
  }
  const recordingFetch = (url, init) => {
    if (init?.method === "POST" && init.body) chunks.push(init.body);
    return fetch(url, init);
  };
  const hub = build(
    new HubConnectionBuilder()
      .withUrl(server.url(path), { transport, WebSocket: RecordingWebSocket, fetch: recordingFetch, ...options })
      .withHubProtocol(protocols[protocol]()),
  ).build();
  hub.sent = () => {
    const parse = protocols[protocol]().createParser();
    const out = [];
    for (const chunk of chunks) {
      if (protocol === "json") {
        const text = typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
        out.push(...parse(text.replace(/^\{"protocol"[^\x1e]*\x1e/, "")));
      } else if (typeof chunk !== "string") out.push(...parse(chunk));
    }
    return out;
  };
  return hub;
}

async function connected(options) {
  const hub = client(options);
  await hub.start();
  return hub;
}

const waitFor = async (predicate, ms = 3000) => {
  const end = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
};

async function* numbers(...values) {
  for (const value of values) {
    await new Promise((r) => setTimeout(r, 5));
    yield value;
  }
}

const MATRIX = [
  ["WebSockets", "json"],
  ["WebSockets", "messagepack"],
  ["ServerSentEvents", "json"],
  ["LongPolling", "json"],
  ["LongPolling", "messagepack"],
];

for (const [name, protocol] of MATRIX) {
  const transport = HttpTransportType[name];
  const open = (extra = {}) => connected({ transport, protocol, ...extra });

  describe(`${name} × ${protocol}`, () => {
    test("start, Echo/Add/Void, transport, connectionId, stop", async () => {
      const hub = await open();
      const closed = new Promise((resolve) => hub.onclose(resolve));
      assert.equal(hub.state, HubConnectionState.Connected);
      assert.equal(await hub.invoke("Transport"), name);
      assert.equal(hub.transport, name);
      assert.equal(await hub.invoke("Echo", "héllo ☃"), "héllo ☃");
      assert.equal(await hub.invoke("Add", 2, 40), 42);
      assert.equal(await hub.invoke("Void"), null);
      assert.equal(await hub.invoke("ConnectionId"), hub.connectionId);
      assert.match(hub.connectionId, /^[\w-]{10,}$/);
      await hub.stop();
      assert.equal(await closed, undefined);
      assert.equal(hub.state, HubConnectionState.Disconnected);
      assert.equal(hub.connectionId, null);
      assert.equal(hub.transport, null);
      assert.equal(hub.sent().at(-1).type, 7);
      assert.equal(hub.sent().at(-1).error, undefined);
    });

    test("server errors are HubErrors with the server's text", async () => {
      const hub = await open();
      try {
        await assert.rejects(hub.invoke("Throw"), (e) => {
          assert.ok(e instanceof HubError);
          assert.equal(e.message, "An unexpected error occurred invoking 'Throw' on the server.");
          return true;
        });
        await assert.rejects(hub.invoke("ThrowHub", "nope"), {
          name: "HubError",
          message: "An unexpected error occurred invoking 'ThrowHub' on the server. HubException: nope",
        });
        await assert.rejects(hub.invoke("NoSuchMethod"), {
          name: "HubError",
          message: "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.",
        });
        assert.equal(await hub.invoke("Echo", "still alive"), "still alive");
      } finally {
        await hub.stop();
      }
    });

    test("pushes reach case-insensitive handlers; off removes them; send() does not wait", async () => {
      const hub = await open();
      try {
        const got = [];
        const lower = (...args) => got.push(["lower", ...args]);
        hub.on("receive", lower);
        hub.on("RECEIVE", (...args) => got.push(["upper", ...args]));
        await hub.invoke("SendToCaller", "one");
        await waitFor(() => got.length === 2);
        assert.deepEqual(got, [["lower", "caller", "one"], ["upper", "caller", "one"]]);
        hub.off("Receive", lower);
        await hub.send("SendToCaller", "two");
        await waitFor(() => got.length === 3);
        assert.deepEqual(got[2], ["upper", "caller", "two"]);
        hub.off("receive");
        await hub.invoke("SendToCaller", "three");
        assert.equal(got.length, 3);
        const sendCall = hub.sent().find((m) => m.type === 1 && m.target === "SendToCaller" && m.arguments[0] === "two");
        assert.equal(sendCall.invocationId, undefined);
      } finally {
        await hub.stop();
      }
    });

    test("streams: async iteration, subscribe, server errors", async () => {
      const hub = await open();
      try {
        const items = [];
        for await (const item of hub.stream("Counter", 4, 5)) items.push(item);
        assert.deepEqual(items, [0, 1, 2, 3]);

        const viaSubscribe = await new Promise((resolve, reject) => {
          const seen = [];
          hub.stream("Counter", 3, 0).subscribe({ next: (v) => seen.push(v), error: reject, complete: () => resolve(seen) });
        });
        assert.deepEqual(viaSubscribe, [0, 1, 2]);

        const failed = [];
        await assert.rejects(
          (async () => {
            for await (const item of hub.stream("FailingStream", 2)) failed.push(item);
          })(),
          (e) => e instanceof HubError && /the stream broke|streaming results/.test(e.message),
        );
        assert.deepEqual(failed, [0, 1]);
      } finally {
        await hub.stop();
      }
    });

    test("aborting an invoke sends CancelInvocation and rejects with AbortError", async () => {
      const hub = await open();
      try {
        const controller = new AbortController();
        const call = hub.invoke("Sleep", 10_000, controller.signal);
        setTimeout(() => controller.abort(), 100);
        await assert.rejects(call, (e) => e instanceof AbortError && e.name === "AbortError");
        const started = Date.now();
        assert.equal(await hub.invoke("Echo", "after"), "after"); // Sleep was really cancelled
        assert.ok(Date.now() - started < 3000);
        const sleep = hub.sent().find((m) => m.target === "Sleep");
        assert.deepEqual(sleep.arguments, [10_000]); // the signal is not an argument
        await waitFor(() => hub.sent().some((m) => m.type === 5 && m.invocationId === sleep.invocationId));
        await assert.rejects(hub.invoke("Echo", "x", AbortSignal.abort()), AbortError);
      } finally {
        await hub.stop();
      }
    });

    test("aborting or leaving a stream sends CancelInvocation; the server stops", async () => {
      const hub = await open();
      try {
        let cancelled = 0;
        hub.on("tickercancelled", () => cancelled++);
        const controller = new AbortController();
        const items = [];
        await assert.rejects(
          (async () => {
            for await (const item of hub.stream("Ticker", 10, controller.signal)) {
              items.push(item);
              if (items.length === 2) controller.abort();
            }
          })(),
          AbortError,
        );
        assert.deepEqual(items, [0, 1]);
        await waitFor(() => cancelled === 1);
        for await (const item of hub.stream("Ticker", 10)) if (item === 1) break;
        await waitFor(() => cancelled === 2);
        const subscription = hub.stream("Ticker", 10).subscribe({ next() {} });
        await new Promise((r) => setTimeout(r, 50));
        subscription.dispose();
        await waitFor(() => cancelled === 3);
        const tickers = hub.sent().filter((m) => m.type === 4 && m.target === "Ticker").map((m) => m.invocationId);
        assert.equal(tickers.length, 3);
        for (const id of tickers) assert.ok(hub.sent().some((m) => m.type === 5 && m.invocationId === id));
      } finally {
        await hub.stop();
      }
    });

    test("uploads from async iterables (invoke and stream), and a failing upload", async () => {
      const hub = await open();
      try {
        assert.equal(await hub.invoke("Sum", numbers(1, 2, 3, 4)), 10);
        const doubled = [];
        for await (const item of hub.stream("Double", numbers(1, 2, 3))) doubled.push(item);
        assert.deepEqual(doubled, [2, 4, 6]);
        async function* broken() {
          yield 1;
          throw new Error("upload broke");
        }
        await assert.rejects(hub.invoke("Sum", broken()), HubError);
        const sum = hub.sent().find((m) => m.type === 1 && m.target === "Sum");
        assert.deepEqual(sum.arguments, []);
        assert.equal(sum.streamIds.length, 1);
        const uploadId = sum.streamIds[0];
        assert.deepEqual(
          hub.sent().filter((m) => m.invocationId === uploadId).map((m) => [m.type, m.item]),
          [[2, 1], [2, 2], [2, 3], [2, 4], [3, undefined]],
        );
        assert.ok(hub.sent().some((m) => m.type === 3 && m.error === "upload broke"));
      } finally {
        await hub.stop();
      }
    });

    test("client results: sync and async handlers, errors, missing handler", async () => {
      const hub = await open();
      try {
        assert.match(String(await hub.invoke("AskCaller", "q").catch((e) => e.message)), /Client didn't provide a result/);
        hub.on("getanswer", (question) => `answer to ${question}`);
        assert.equal(await hub.invoke("AskCaller", "life"), "answer to life");
        hub.off("GetAnswer");
        hub.on("GetAnswer", async (question) => ({ question, n: 42 }));
        assert.deepEqual(await hub.invoke("AskCaller", "obj"), { question: "obj", n: 42 });
        hub.off("GetAnswer");
        hub.on("GetAnswer", () => {
          throw new Error("bad");
        });
        await assert.rejects(hub.invoke("AskCaller", "x"), HubError);
        const replies = hub.sent().filter((m) => m.type === 3 && !hub.sent().some((s) => s.streamIds?.includes(m.invocationId)));
        assert.deepEqual(
          replies.map((m) => m.error ?? m.result),
          ["Client didn't provide a result.", "answer to life", { question: "obj", n: 42 }, "Error: bad"],
        );
      } finally {
        await hub.stop();
      }
    });

    test("server Abort closes the client for good, even with automatic reconnect", async () => {
      const hub = client({ transport, protocol, build: (b) => b.withAutomaticReconnect([0]) });
      await hub.start();
      let reconnecting = 0;
      hub.onreconnecting(() => reconnecting++);
      const closed = new Promise((resolve) => hub.onclose(resolve));
      hub.invoke("Abort").catch(() => {});
      await closed;
      assert.equal(reconnecting, 0);
      assert.equal(hub.state, HubConnectionState.Disconnected);
      await assert.rejects(hub.invoke("Echo", "x"));
    });

    test("an access token reaches the server as the user", async () => {
      const hub = await open({ options: { accessTokenFactory: () => "alice" } });
      try {
        assert.equal(await hub.invoke("UserId"), "alice");
      } finally {
        await hub.stop();
      }
    });
  });
}

describe("negotiate, handshake and fallback", () => {
  test("a 404 negotiate is a NegotiateError with the status", async () => {
    await assert.rejects(client({ path: "/nowhere" }).start(), (e) => {
      assert.ok(e instanceof NegotiateError);
      assert.equal(e.status, 404);
      assert.match(e.message, /Status code '404' Either this is not a SignalR endpoint/);
      return true;
    });
  });

  test("a rejected token is a 401 NegotiateError", async () => {
    await assert.rejects(client({ options: { accessTokenFactory: () => "reject" } }).start(), { status: 401 });
  });

  test("a negotiate error field rejects start with its text", async () => {
    const fakeFetch = async () => new Response(JSON.stringify({ error: "no way" }), { status: 200 });
    const hub = new HubConnectionBuilder().withUrl("http://127.0.0.1:1/hub", { fetch: fakeFetch }).build();
    await assert.rejects(hub.start(), { name: "NegotiateError", message: "no way" });
  });

  test("redirects: re-negotiate at the new url with its access token; the hop limit", async () => {
    const seen = [];
    let hops = 0;
    const redirecting = (limit) => async (url, init) => {
      seen.push([String(url), init.headers.Authorization]);
      if (String(url).includes("/redirect") && hops++ < limit) {
        return new Response(JSON.stringify({ url: limit > 5 ? "http://x.test/redirect" : server.url(), accessToken: "bob" }));
      }
      return fetch(url, init);
    };
    const hub = new HubConnectionBuilder()
      .withUrl("http://x.test/redirect", { fetch: redirecting(1), WebSocket, accessTokenFactory: () => "alice" })
      .build();
    await hub.start();
    try {
      assert.equal(await hub.invoke("UserId"), "bob");
      assert.deepEqual(seen[0], ["http://x.test/redirect/negotiate?negotiateVersion=1", "Bearer alice"]);
      assert.deepEqual(seen[1], [`${server.url()}/negotiate?negotiateVersion=1`, "Bearer bob"]);
    } finally {
      await hub.stop();
    }
    hops = 0;
    const looping = new HubConnectionBuilder().withUrl("http://x.test/redirect", { fetch: redirecting(1000) }).build();
    await assert.rejects(looping.start(), { message: "Negotiate redirection limit exceeded." });
    assert.equal(hops, 100);
  });

  test("negotiate v0 servers: the connectionId is the token", async () => {
    const v0 = async (url, init) => {
      const response = await fetch(url, init);
      if (!String(url).includes("/negotiate")) return response;
      const body = await response.json();
      return new Response(JSON.stringify({ negotiateVersion: 0, connectionId: body.connectionToken, availableTransports: body.availableTransports }));
    };
    const hub = new HubConnectionBuilder().withUrl(server.url(), { fetch: v0, WebSocket }).build();
    await hub.start();
    try {
      assert.equal(await hub.invoke("Echo", "v0"), "v0");
    } finally {
      await hub.stop();
    }
  });

  test("query strings on the hub url are kept", async () => {
    const hub = await connected({ path: "/hub?flavour=mint", transport: HttpTransportType.LongPolling });
    try {
      assert.equal(await hub.invoke("Query", "flavour"), "mint");
    } finally {
      await hub.stop();
    }
  });

  test("skipNegotiation over WebSockets: works, connectionId stays null", async () => {
    const hub = await connected({ transport: HttpTransportType.WebSockets, options: { skipNegotiation: true } });
    try {
      assert.equal(hub.connectionId, null);
      assert.equal(await hub.invoke("Echo", "direct"), "direct");
    } finally {
      await hub.stop();
    }
  });

  test("an unknown protocol is a HandshakeError with the server's text", async () => {
    const xml = Object.assign(new JsonHubProtocol(), { name: "xml" });
    const hub = new HubConnectionBuilder().withUrl(server.url(), { WebSocket }).withHubProtocol(xml).build();
    await assert.rejects(hub.start(), (e) => {
      assert.ok(e instanceof HandshakeError);
      assert.equal(e.message, "Server returned handshake error: The protocol 'xml' is not supported.");
      return true;
    });
    assert.equal(hub.state, HubConnectionState.Disconnected);
  });

  test("transports follow negotiate's order: /no-ws gives SSE for json, long polling for msgpack", async () => {
    for (const [protocol, expected] of [["json", "ServerSentEvents"], ["messagepack", "LongPolling"]]) {
      const hub = await connected({ path: "/no-ws", protocol });
      try {
        assert.equal(await hub.invoke("Transport"), expected);
        assert.equal(hub.transport, expected);
      } finally {
        await hub.stop();
      }
    }
  });

  test("every transport allowed, with ws: WebSockets (the `transport` property)", async () => {
    const hub = new HubConnectionBuilder().withUrl(server.url(), { WebSocket }).build();
    await hub.start();
    try {
      assert.equal(hub.transport, "WebSockets");
      assert.equal(await hub.invoke("Transport"), "WebSockets");
    } finally {
      await hub.stop();
    }
    assert.equal(hub.transport, null);
  });

  test("a WebSocket that fails falls back to the next transport, negotiating again", async () => {
    let negotiations = 0;
    class Broken {
      constructor() {
        setTimeout(() => this.onclose?.({ code: 1006, reason: "" }), 1);
      }
      close() {}
    }
    const counting = (url, init) => {
      if (String(url).includes("/negotiate")) negotiations++;
      return fetch(url, init);
    };
    const hub = new HubConnectionBuilder().withUrl(server.url(), { WebSocket: Broken, fetch: counting }).build();
    assert.equal(hub.transport, null);
    await hub.start();
    try {
      assert.equal(await hub.invoke("Transport"), "ServerSentEvents");
      assert.equal(hub.transport, "ServerSentEvents");
      assert.equal(negotiations, 2);
    } finally {
      await hub.stop();
    }
  });
});

describe("automatic reconnect", () => {
  let quick;
  before(async () => (quick = await startServer({ KEEP_ALIVE_MS: "200", CLIENT_TIMEOUT_MS: "800" })));
  after(() => quick?.stop());

  test("a Close with allowReconnect (server client timeout) reconnects with a new connectionId", async () => {
    // The client pings once after the handshake, then stays silent (keep-alive 60 s): the
    // server's 800 ms client timeout closes it with allowReconnect.
    const hub = new HubConnectionBuilder()
      .withUrl(quick.url(), { WebSocket, transport: HttpTransportType.WebSockets })
      .withKeepAliveInterval(60_000)
      .withAutomaticReconnect([0, 100])
      .build();
    const events = [];
    hub.onreconnecting((error) => events.push(["reconnecting", error.message, hub.state, hub.transport]));
    const reconnected = new Promise((resolve) => hub.onreconnected(resolve));
    await hub.start();
    const first = hub.connectionId;
    const pending = assert.rejects(hub.invoke("Sleep", 5_000), /Connection closed with an error/);
    const id = await reconnected;
    await pending;
    assert.deepEqual(events, [
      ["reconnecting", "Server returned an error on close: Connection closed with an error.", "Reconnecting", null],
    ]);
    assert.notEqual(id, first);
    assert.equal(hub.connectionId, id);
    assert.equal(hub.state, HubConnectionState.Connected);
    assert.equal(hub.transport, "WebSockets");
    assert.equal(await hub.invoke("Echo", "back"), "back");
    await hub.stop();
    assert.equal(hub.state, HubConnectionState.Disconnected);
  });

  test("after a reconnect, `transport` is the transport connected then (here a fallback to SSE)", async () => {
    let sockets = 0;
    class OneSocket extends WebSocket {
      constructor(...args) {
        if (sockets++) throw new Error("no second WebSocket");
        super(...args);
      }
    }
    const hub = new HubConnectionBuilder()
      .withUrl(quick.url(), { WebSocket: OneSocket })
      .withKeepAliveInterval(60_000) // the server's client timeout closes it with allowReconnect
      .withAutomaticReconnect([0])
      .build();
    const reconnected = new Promise((resolve) => hub.onreconnected(resolve));
    await hub.start();
    try {
      assert.equal(hub.transport, "WebSockets");
      await reconnected;
      assert.equal(hub.transport, "ServerSentEvents");
      assert.equal(await hub.invoke("Transport"), "ServerSentEvents");
    } finally {
      await hub.stop();
    }
  });

  test("a retry policy that gives up ends in onclose; stop() during reconnecting ends it", async () => {
    let calls = 0;
    const hub = new HubConnectionBuilder()
      .withUrl(quick.url(), { WebSocket })
      .withKeepAliveInterval(60_000)
      .withAutomaticReconnect({ nextRetryDelayInMilliseconds: () => (calls++ === 0 ? 60_000 : null) })
      .build();
    const closed = new Promise((resolve) => hub.onclose(resolve));
    const reconnecting = new Promise((resolve) => hub.onreconnecting(resolve));
    await hub.start();
    await reconnecting;
    assert.equal(hub.state, HubConnectionState.Reconnecting);
    await hub.stop();
    assert.ok((await closed) instanceof Error);
    assert.equal(hub.state, HubConnectionState.Disconnected);
  });

  test("the server timeout closes a silent connection with a TimeoutError", async () => {
    // The server pings every 200 ms, so a 100 ms server timeout expires between two pings.
    const hub = new HubConnectionBuilder()
      .withUrl(quick.url(), { WebSocket, transport: HttpTransportType.WebSockets })
      .withServerTimeout(100)
      .build();
    const closed = new Promise((resolve) => hub.onclose(resolve));
    await hub.start();
    const error = await closed;
    assert.equal(error.name, "TimeoutError");
    assert.equal(error.message, "Server timeout elapsed without receiving a message from the server.");
  });
});
