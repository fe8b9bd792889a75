// Server-Sent Events and long polling at the HTTP level (spec §2.2–2.4; checklist 14, 33, 34,
// 40–46, 58), with node:http, plus the official client's behaviour around them: SSE keep-alive
// pings, no pings and no timeout on long polling, idle polls answered after the poll timeout.
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, it } from "node:test";
import { DefaultHttpClient, HttpTransportType, MessageType, NullLogger } from "@microsoft/signalr";
import { connect, delay, rawUpgrade, startServer, stopAll, withTimeout } from "./server.mjs";

const HANDSHAKE_JSON = '{"protocol":"json","version":1}\u001e';
const ALLOWED_ORIGIN = "http://allowed.test";

/** One request with node:http: { status, headers, body (Buffer) }. */
function raw(method, url, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, async (res) => {
      const chunks = [];
      for await (const chunk of res) chunks.push(chunk);
      resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Opens an event stream; `next()` resolves with the next raw chunk (as a string). */
function eventStream(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { Accept: "text/event-stream", ...headers } }, (res) => {
      const chunks = [];
      const waiters = [];
      let ended = false;
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        const waiter = waiters.shift();
        if (waiter) waiter.resolve(chunk);
        else chunks.push(chunk);
      });
      res.on("end", () => {
        ended = true;
        for (const waiter of waiters.splice(0)) waiter.resolve(null);
      });
      resolve({
        status: res.statusCode,
        headers: res.headers,
        /** The next chunk, or null at the end of the stream. */
        next(timeoutMs = 3_000) {
          if (chunks.length) return Promise.resolve(chunks.shift());
          if (ended) return Promise.resolve(null);
          return withTimeout(
            new Promise((resolveChunk) => waiters.push({ resolve: resolveChunk })),
            timeoutMs,
            `no event-stream data within ${timeoutMs} ms`,
          );
        },
        /** Reads until `count` whole events (ending in a blank line) arrived; returns the text. */
        async events(count, timeoutMs = 3_000) {
          let text = "";
          while ((text.match(/\r\n\r\n/g) ?? []).length < count) {
            const chunk = await this.next(timeoutMs);
            if (chunk === null) break;
            text += chunk;
          }
          return text;
        },
        close() {
          req.destroy();
        },
      });
    });
    req.on("error", reject);
    req.end();
  });
}

/** An official HttpClient that records every response (method, status, content length). */
class RecordingHttpClient extends DefaultHttpClient {
  constructor() {
    super(NullLogger.instance);
    this.log = [];
  }

  async send(request) {
    const response = await super.send(request);
    this.log.push({ method: request.method, status: response.statusCode, length: response.content?.length ?? 0 });
    return response;
  }
}

let server;
let base;
before(async () => {
  server = await startServer();
  base = server.url("/hub");
});
after(async () => {
  await server?.stop();
});

async function negotiateToken(path = "/hub") {
  const response = await raw("POST", `${server.url(path)}/negotiate?negotiateVersion=1`);
  return JSON.parse(response.body.toString()).connectionToken;
}

describe("Server-Sent Events over HTTP", () => {
  it("200 text/event-stream, unbuffered, `:` first, then the handshake reply as a data event", async () => {
    const token = await negotiateToken();
    const events = await eventStream(`${base}?id=${token}`);
    try {
      assert.equal(events.status, 200);
      assert.equal(events.headers["content-type"], "text/event-stream");
      assert.equal(events.headers["cache-control"], "no-cache,no-store");
      assert.equal(events.headers.pragma, "no-cache");
      assert.equal(events.headers["content-encoding"], "identity");
      assert.equal(await events.next(), ":\r\n");
      const post = await raw("POST", `${base}?id=${token}`, {
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
        body: HANDSHAKE_JSON + '{"arguments":["x"],"invocationId":"0","target":"Echo","type":1}\u001e',
      });
      assert.equal(post.status, 200);
      assert.equal(post.body.length, 0);
      const text = await events.events(2);
      assert.equal(text, 'data: {}\u001e\r\n\r\ndata: {"type":3,"invocationId":"0","result":"x"}\u001e\r\n\r\n');
    } finally {
      events.close();
    }
  });

  it("a messagepack handshake is refused with the transfer-format error, then the stream ends", async () => {
    const token = await negotiateToken();
    const events = await eventStream(`${base}?id=${token}`);
    assert.equal(await events.next(), ":\r\n");
    await raw("POST", `${base}?id=${token}`, { body: '{"protocol":"messagepack","version":1}\u001e' });
    const error =
      "Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format.";
    assert.equal(await events.events(1), `data: {"error":"${error}"}\u001e\r\n\r\n`);
    assert.equal(await events.next(), null);
  });

  it("event stream without id → 400, unknown id → 404", async () => {
    const missing = await eventStream(base);
    assert.equal(missing.status, 400);
    const unknown = await eventStream(`${base}?id=nope`);
    assert.equal(unknown.status, 404);
  });
});

describe("sends (POST)", () => {
  it("400 without id, 404 for an unknown id, 405 on a WebSocket connection", async () => {
    const missing = await raw("POST", base, { body: "x" });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.toString(), "Connection ID required");
    const unknown = await raw("POST", `${base}?id=nope`, { body: "x" });
    assert.equal(unknown.status, 404);
    const token = await negotiateToken();
    const upgrade = await rawUpgrade(`${base}?id=${token}`);
    assert.equal(upgrade.status, 101);
    try {
      const post = await raw("POST", `${base}?id=${token}`, { body: HANDSHAKE_JSON });
      assert.equal(post.status, 405);
      assert.equal(post.body.toString(), "POST requests are not allowed for WebSocket connections.");
      const del = await raw("DELETE", `${base}?id=${token}`);
      assert.equal(del.status, 400);
      assert.equal(del.body.toString(), "Cannot terminate this connection using the DELETE endpoint.");
    } finally {
      upgrade.socket.destroy();
    }
  });
});

describe("long polling over HTTP", () => {
  const NO_CACHE = (headers) => {
    assert.equal(headers["cache-control"], "no-cache, no-store");
    assert.equal(headers.pragma, "no-cache");
    assert.equal(headers.expires, "Thu, 01 Jan 1970 00:00:00 GMT");
  };

  /** Negotiates, makes the first poll, sends a JSON handshake and reads its reply. */
  async function lpConnection() {
    const token = await negotiateToken();
    const url = `${base}?id=${token}`;
    const first = await raw("GET", `${url}&_=${Date.now()}`);
    assert.equal(first.status, 200);
    assert.equal(await (await raw("POST", url, { body: HANDSHAKE_JSON })).status, 200);
    const reply = await raw("GET", `${url}&_=${Date.now()}`);
    assert.equal(reply.body.toString(), "{}\u001e");
    return url;
  }

  it("the first poll returns at once, empty, with no-cache headers; the next one holds", async () => {
    const token = await negotiateToken();
    const url = `${base}?id=${token}`;
    const started = Date.now();
    const first = await raw("GET", `${url}&_=${Date.now()}`);
    assert.ok(Date.now() - started < 1_000);
    assert.equal(first.status, 200);
    assert.equal(first.headers["content-length"], "0");
    assert.equal(first.body.length, 0);
    NO_CACHE(first.headers);
    await raw("POST", url, { body: HANDSHAKE_JSON });
    assert.equal((await raw("GET", `${url}&_=1`)).body.toString(), "{}\u001e");
    let settled = false;
    const held = raw("GET", `${url}&_=2`).finally(() => {
      settled = true;
    });
    await delay(300);
    assert.equal(settled, false, "the poll returned without data");
    await raw("POST", url, { body: '{"type":1,"invocationId":"1","target":"Add","arguments":[1,2]}\u001e' });
    const data = await held;
    assert.equal(data.status, 200);
    assert.equal(data.headers["content-type"], "application/octet-stream");
    assert.equal(data.body.toString(), '{"type":3,"invocationId":"1","result":3}\u001e');
    NO_CACHE(data.headers);
  });

  it("a second concurrent poll makes the first one return 204", async () => {
    const url = await lpConnection();
    const older = raw("GET", url);
    await delay(200);
    const newer = raw("GET", url);
    const first = await older;
    assert.equal(first.status, 204);
    await raw("POST", url, { body: '{"type":1,"invocationId":"1","target":"Echo","arguments":["n"]}\u001e' });
    assert.equal((await newer).body.toString(), '{"type":3,"invocationId":"1","result":"n"}\u001e');
  });

  it("DELETE → 202, the pending poll gets 204, the token is gone", async () => {
    const url = await lpConnection();
    const pending = raw("GET", url);
    await delay(200);
    const del = await raw("DELETE", url);
    assert.equal(del.status, 202);
    assert.equal((await pending).status, 204);
    assert.equal((await raw("GET", url)).status, 404);
  });

  it("a messagepack connection gets binary poll bodies", async () => {
    const token = await negotiateToken();
    const url = `${base}?id=${token}`;
    await raw("GET", url);
    await raw("POST", url, { body: '{"protocol":"messagepack","version":1}\u001e' });
    assert.equal((await raw("GET", url)).body.toString(), "{}\u001e");
    // [1, {}, "1", "Echo", ["b"]] framed: a 5-element Invocation as the JS client writes it.
    const invocation = Buffer.from([0x0d, 0x95, 0x01, 0x80, 0xa1, 0x31, 0xa4, 0x45, 0x63, 0x68, 0x6f, 0x91, 0xa1, 0x62]);
    assert.equal((await raw("POST", url, { body: invocation, headers: { "Content-Type": "application/octet-stream" } })).status, 200);
    const reply = await raw("GET", url);
    assert.deepEqual([...reply.body], [0x08, 0x95, 0x03, 0x80, 0xa1, 0x31, 0x03, 0xa1, 0x62]);
  });
});

describe("transports and timers with the official client", () => {
  let timed;
  before(async () => {
    timed = await startServer({ KEEP_ALIVE_MS: "200", CLIENT_TIMEOUT_MS: "600", POLL_TIMEOUT_MS: "300" });
  });
  after(async () => {
    await timed?.stop();
  });

  it("SSE: the server pings an idle client (whose own pings keep it within the client timeout)", async () => {
    const record = [];
    const hub = await connect(timed.url("/hub"), {
      transport: HttpTransportType.ServerSentEvents,
      record,
      keepAliveIntervalInMilliseconds: 150,
    });
    try {
      await delay(700);
      assert.ok(record.filter((m) => m.type === MessageType.Ping).length >= 2, JSON.stringify(record));
      assert.equal(await hub.invoke("Echo", "alive"), "alive");
    } finally {
      await stopAll(hub);
    }
  });

  it("LP: no pings, idle polls answered empty after the poll timeout, and the client is never timed out", async () => {
    const record = [];
    const httpClient = new RecordingHttpClient();
    const hub = await connect(timed.url("/hub"), {
      transport: HttpTransportType.LongPolling,
      record,
      httpClient,
      serverTimeoutInMilliseconds: 500,
    });
    try {
      await delay(1_300);
      assert.equal(record.filter((m) => m.type === MessageType.Ping).length, 0, JSON.stringify(record));
      const emptyPolls = httpClient.log.filter((e) => e.method === "GET" && e.status === 200 && e.length === 0);
      assert.ok(emptyPolls.length >= 3, JSON.stringify(httpClient.log));
      assert.equal(await hub.invoke("Echo", "alive"), "alive");
      assert.equal(hub.state, "Connected");
    } finally {
      await stopAll(hub);
    }
  });
});

describe("transports a hub does not offer", () => {
  it("/no-ws refuses the WebSocket upgrade with 404", async () => {
    const token = await negotiateToken("/no-ws");
    const upgrade = await rawUpgrade(`${server.url("/no-ws")}?id=${token}`);
    assert.equal(upgrade.status, 404);
    assert.equal(upgrade.body, "WebSockets transport not supported by this end point type");
  });
});

describe("CORS (checklist 58)", () => {
  it("the preflight passes for the allowed origin with credentials and the SignalR headers", async () => {
    for (const url of [`${base}/negotiate?negotiateVersion=1`, `${base}?id=x`]) {
      const response = await raw("OPTIONS", url, {
        headers: {
          Origin: ALLOWED_ORIGIN,
          "Access-Control-Request-Method": "POST",
          "Access-Control-Request-Headers": "x-requested-with,x-signalr-user-agent,authorization,content-type",
        },
      });
      assert.equal(response.status, 204);
      assert.equal(response.headers["access-control-allow-origin"], ALLOWED_ORIGIN);
      assert.equal(response.headers["access-control-allow-credentials"], "true");
      assert.equal(response.headers["access-control-allow-methods"], "GET, POST, DELETE");
      assert.equal(
        response.headers["access-control-allow-headers"],
        "x-requested-with, x-signalr-user-agent, authorization, content-type",
      );
      assert.ok(Number(response.headers["access-control-max-age"]) > 0);
    }
  });

  it("negotiate from the allowed origin echoes it; another origin gets no CORS headers", async () => {
    const allowed = await raw("POST", `${base}/negotiate?negotiateVersion=1`, { headers: { Origin: ALLOWED_ORIGIN } });
    assert.equal(allowed.headers["access-control-allow-origin"], ALLOWED_ORIGIN);
    assert.equal(allowed.headers["access-control-allow-credentials"], "true");
    assert.match(allowed.headers.vary, /Origin/);
    const other = await raw("POST", `${base}/negotiate?negotiateVersion=1`, { headers: { Origin: "http://other.test" } });
    assert.equal(other.status, 200);
    assert.equal(other.headers["access-control-allow-origin"], undefined);
    const preflight = await raw("OPTIONS", base, {
      headers: { Origin: "http://other.test", "Access-Control-Request-Method": "GET" },
    });
    assert.equal(preflight.headers["access-control-allow-origin"], undefined);
    assert.equal(preflight.headers["access-control-allow-methods"], undefined);
  });
});
