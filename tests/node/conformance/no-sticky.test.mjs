// No sticky sessions: three conformance servers on one Redis, signing connection tokens with one
// shared key (CONNECTION_TOKEN_KEY), behind an nginx that balances round robin with no affinity
// and no upstream keepalive (tests/node/nginx.mjs), so one client's negotiate, transport request,
// long-polling GETs and POSTs and DELETE each land on any server. A request that reaches a server
// that does not own the connection is forwarded to the owner over Redis; WebSockets and SSE
// attach where they land. Official clients over every transport × protocol run invocations,
// streams both ways, cancellation, client results, groups, users and connection sends through
// nginx and must never lose their connection, and once stopped must be gone from the cluster;
// requests for a connection its owner already ended must not bring it back on another server;
// then a node is killed with SIGKILL and every client must keep working or reconnect
// (withAutomaticReconnect) and invoke again.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { createServer as createTcpServer, connect as tcpConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  DefaultHttpClient,
  HttpClient,
  HttpTransportType,
  HubConnectionBuilder,
  HubConnectionState,
  LogLevel,
  NullLogger,
  Subject,
} from "@microsoft/signalr";
import { startNginx } from "../nginx.mjs";
import { startRedis } from "../redis.mjs";
import { assertAlive, startNodes, stopNodes } from "./nodes.mjs";
import { Inbox, connect, delay, stopAll, waitUntil, withTimeout } from "./server.mjs";

const { WebSockets, ServerSentEvents, LongPolling } = HttpTransportType;
// How long a duplicate push gets to show up before exactly-once is checked.
const QUIET_MS = 250;
// A hang fails its suite instead of the whole run.
const SUITE_TIMEOUT_MS = 60_000;
// Any single invocation longer than this counts as hung (they all take milliseconds).
const CALL_TIMEOUT_MS = 10_000;
// Every server signs and checks connection tokens with this key (at least 32 bytes).
const TOKEN_KEY = randomBytes(32).toString("hex");

// Every transport × protocol the official client offers (SSE is text only: no MessagePack).
const COMBOS = [
  { transport: WebSockets, protocol: "json" },
  { transport: WebSockets, protocol: "messagepack" },
  { transport: ServerSentEvents, protocol: "json" },
  { transport: LongPolling, protocol: "json" },
  { transport: LongPolling, protocol: "messagepack" },
].map((combo) => ({ ...combo, name: `${HttpTransportType[combo.transport]}-${combo.protocol}` }));

const key = (message) => JSON.stringify(message);
const countOf = (list, message) => list.filter((m) => key(m) === key(message)).length;

/**
 * The official client's own HTTP client, recording every error answer it gets (negotiate,
 * sends, polls, DELETE; the status and the server's body text) for failure messages: the
 * client swallows some of them (a DELETE's, for one).
 */
class RecordingHttpClient extends HttpClient {
  constructor() {
    super();
    this.inner = new DefaultHttpClient(NullLogger.instance);
    this.errors = [];
  }

  getCookieString(url) {
    return this.inner.getCookieString(url);
  }

  async send(request) {
    try {
      return await this.inner.send(request);
    } catch (error) {
      if (error.statusCode !== undefined) {
        const path = new URL(request.url).pathname;
        this.errors.push(`${new Date().toISOString()} ${request.method} ${path}: ${error.statusCode} ${error.message}`);
      }
      throw error;
    }
  }
}

/** One plain HTTP request to 127.0.0.1:port; resolves with { status, body }. */
function http(port, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, method, path }, async (res) => {
      let text = "";
      res.setEncoding("utf8");
      for await (const chunk of res) text += chunk;
      resolve({ status: res.statusCode, body: text });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** As in backplane.test.mjs: wait for the expected pushes, give duplicates time, check exactly. */
async function expectOnce(inbox, caller, expected) {
  const arrived = () =>
    Object.entries(expected).every(([name, want]) =>
      want.every((message) => countOf(inbox.messagesOf(name), message) >= countOf(want, message)),
    );
  await waitUntil(arrived, 5_000).catch(() => {});
  await delay(QUIET_MS);
  await inbox.expect(caller, expected);
}

/** Collects a server-to-client stream; resolves with its items on completion. */
function streamAll(connection, method, ...args) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const items = [];
      connection.stream(method, ...args).subscribe({
        next: (item) => items.push(item),
        error: reject,
        complete: () => resolve(items),
      });
    }),
    CALL_TIMEOUT_MS,
    `stream ${method} did not complete within ${CALL_TIMEOUT_MS} ms`,
  );
}

/** The `?id=` of a logged request line ("GET /hub?id=…&_=… HTTP/1.1"), if any. */
function tokenOf(request) {
  const match = /[?&]id=([^& ]+)/.exec(request);
  return match ? decodeURIComponent(match[1]) : undefined;
}

/** Who served the requests through nginx so far, for failure messages. */
function describeRequests(nginx, last = 30) {
  return nginx
    .requests()
    .slice(-last)
    .map(({ status, upstreams, request }) => `${status} ${upstreams.join(",")} ${request.slice(0, 60)}`)
    .join("\n");
}

describe("no sticky sessions: three nodes behind round-robin nginx", { timeout: SUITE_TIMEOUT_MS }, () => {
  let redis;
  let nodes;
  let nginx;
  let hubUrl;
  let inbox;
  let sender; // a long-polling MessagePack client through nginx: the other side of every combo

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(redis, ["a", "b", "c"], { CONNECTION_TOKEN_KEY: TOKEN_KEY });
    nginx = await startNginx(Object.values(nodes).map((node) => node.port));
    hubUrl = `${nginx.url}/hub`;
    inbox = new Inbox();
    sender = await connect(hubUrl, {
      transport: LongPolling,
      protocol: "messagepack",
      handlers: { receive: inbox.handler("sender"), getAnswer: (question) => `sender:${question}` },
    });
  });
  after(async () => {
    await stopAll(sender);
    await nginx?.stop();
    await stopNodes(nodes);
    await redis?.stop();
  });

  for (const { transport, protocol, name } of COMBOS) {
    it(`${name}: invocations, streams, cancellation, client results, groups, users; stays up`, async () => {
      const user = `ns-${name}`;
      const group = `ns-group-${name}`;
      const closes = [];
      let tickerCancels = 0;
      const httpClient = new RecordingHttpClient();
      // Relative to the count before: a connection an earlier failure left behind may still be
      // counted (or stop being counted) meanwhile.
      const base = await sender.invoke("ConnectionCount");
      const main = await connect(hubUrl, {
        transport,
        protocol,
        httpClient,
        accessTokenFactory: () => user,
        handlers: {
          receive: inbox.handler(name),
          getAnswer: (question) => `${name}:${question}`,
          tickerCancelled: () => tickerCancels++,
        },
      });
      main.onclose((error) => closes.push(error?.message ?? "closed without error"));
      let calls = 0;
      const call = (method, ...args) => {
        calls++;
        return withTimeout(
          main.invoke(method, ...args),
          CALL_TIMEOUT_MS,
          `${name}: ${method} got no answer within ${CALL_TIMEOUT_MS} ms`,
        );
      };
      let stopped = false;
      let stopError;
      try {
        assert.equal(await call("Transport"), HttpTransportType[transport]);
        assert.equal(await call("ConnectionId"), main.connectionId);
        assert.equal(await call("UserId"), user);

        // Echo, one at a time and several at once.
        for (let i = 0; i < 6; i++) assert.equal(await call("Echo", `${name} ${i}`), `${name} ${i}`);
        assert.deepEqual(
          await Promise.all([0, 1, 2, 3].map((i) => call("Add", i, 100))),
          [100, 101, 102, 103],
        );
        // Per-connection state: every invocation runs on the owner, wherever it entered.
        await call("SetState", `state of ${name}`);
        assert.equal(await call("GetState"), `state of ${name}`);

        // Server-to-client stream, client-to-server upload, and both at once.
        assert.deepEqual(await streamAll(main, "Counter", 5, 10), [0, 1, 2, 3, 4]);
        const numbers = new Subject();
        const sum = call("Sum", numbers);
        for (const n of [1, 2, 3, 4]) {
          numbers.next(n);
          await delay(5);
        }
        numbers.complete();
        assert.equal(await sum, 10);
        const doubles = new Subject();
        const doubled = streamAll(main, "Double", doubles);
        for (const n of [5, 6, 7]) {
          doubles.next(n);
          await delay(5);
        }
        doubles.complete();
        assert.deepEqual(await doubled, [10, 12, 14]);

        // Cancelling a stream (a CancelInvocation, over long polling a POST that may be forwarded).
        const ticks = [];
        let tickerError;
        const ticker = main.stream("Ticker", 20).subscribe({
          next: (item) => ticks.push(item),
          error: (error) => {
            tickerError = error;
          },
          complete: () => {},
        });
        await waitUntil(() => ticks.length >= 3 || tickerError, 5_000, `${name}: Ticker items did not arrive`);
        assert.equal(tickerError, undefined);
        ticker.dispose();
        await waitUntil(() => tickerCancels === 1, 5_000, `${name}: TickerCancelled was not pushed`);

        // Client results: the caller itself, this connection asked from another one, and back.
        assert.equal(await call("AskCaller", "q1"), `${name}:q1`);
        assert.equal(
          await withTimeout(sender.invoke("AskClient", main.connectionId, "q2"), CALL_TIMEOUT_MS, "AskClient hung"),
          `${name}:q2`,
        );
        assert.equal(await call("AskClient", sender.connectionId, "q3"), "sender:q3");

        // Groups, users, connections: pushes from the other client reach this one exactly once.
        await call("JoinGroup", group);
        assert.deepEqual(await call("MyGroups"), [group]);
        await sender.invoke("SendToGroup", group, "to the group");
        await expectOnce(inbox, sender, { [name]: [["group", "to the group"]] });
        await sender.invoke("SendToUser", user, "to the user");
        await expectOnce(inbox, sender, { [name]: [["user", "to the user"]] });
        await sender.invoke("SendToConnection", main.connectionId, "to the connection");
        await expectOnce(inbox, sender, { [name]: [["connection", "to the connection"]] });
        await call("SendToCaller", "to myself");
        await expectOnce(inbox, sender, { [name]: [["caller", "to myself"]] });
        await call("LeaveGroup", group);
        await sender.invoke("SendToGroup", group, "after leaving");
        await expectOnce(inbox, sender, {});

        for (let i = 0; calls < 30; i++) assert.equal(await call("Echo", `again ${i}`), `again ${i}`);
        assert.deepEqual(closes, [], `${name}: the connection closed`);
        assert.equal(main.state, HubConnectionState.Connected);
        assert.deepEqual(await sender.invoke("UserConnections", user), [main.connectionId]);
      } catch (error) {
        error.message +=
          `\nHTTP errors the client got:\n${httpClient.errors.join("\n") || "none"}` +
          `\nlast requests through nginx:\n${describeRequests(nginx)}`;
        throw error;
      } finally {
        inbox.remove(name);
        // Stopping (over long polling a DELETE, forwarded when it lands elsewhere) must end it
        // on its owner: the cluster forgets it.
        await withTimeout(main.stop(), CALL_TIMEOUT_MS, `${name}: stop() hung`).then(
          () => {
            stopped = true;
          },
          (error) => {
            stopError = error;
          },
        );
      }
      assert.ok(stopped, `${name}: stop() failed: ${stopError?.message}`);
      await waitUntil(
        async () =>
          (await sender.invoke("ConnectionCount")) <= base &&
          (await sender.invoke("UserConnections", user)).length === 0,
        5_000,
        `${name}: the stopped connection stayed in ConnectionCount (${base} before it connected) or UserConnections`,
      ).catch((error) => {
        // Over long polling, stop() sends a Close message (a POST), aborts its poll and sends a
        // DELETE: each may land on another server.
        error.message +=
          `\nHTTP errors the client got:\n${httpClient.errors.join("\n") || "none"}` +
          `\nlast requests through nginx:\n${describeRequests(nginx, 12)}`;
        throw error;
      });
    });
  }

  it("round robin spread the requests: every node served some, and long-polling connections used every node", () => {
    const ports = Object.values(nodes).map((node) => `127.0.0.1:${node.port}`);
    const seen = nginx.upstreamsSeen();
    for (const port of ports) assert.ok(seen.has(port), `no request went to ${port}; seen: ${[...seen].join(", ")}`);
    // One connection's own requests (the ?id= of its polls, sends and DELETE) went to every
    // node, i.e. most of them were served by forwarding to the owner.
    const perToken = new Map();
    for (const { upstreams, request } of nginx.requests()) {
      const token = tokenOf(request);
      if (!token) continue;
      if (!perToken.has(token)) perToken.set(token, new Set());
      for (const upstream of upstreams) perToken.get(token).add(upstream);
    }
    const spread = [...perToken.values()].filter((upstreams) => upstreams.size === ports.length);
    assert.ok(
      spread.length >= 2,
      `fewer than two connections had requests on all three nodes (${perToken.size} tokens)`,
    );
    // nginx itself saw no failed upstream (a 502 would mean a node dropped a request).
    const bad = nginx.requests().filter(({ status }) => status >= 500);
    assert.deepEqual(bad, [], "nginx answered 5xx");
    assertAlive(nodes);
  });
});

const ENDED_SUITE = "no sticky sessions: requests for a connection its owner ended, on another server";
describe(ENDED_SUITE, { timeout: SUITE_TIMEOUT_MS }, () => {
  let redis;
  let nodes;
  let watcher;

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(redis, ["a", "b", "c"], { CONNECTION_TOKEN_KEY: TOKEN_KEY });
    watcher = await connect(nodes.c.url("/hub"), { transport: WebSockets });
  });
  after(async () => {
    await stopAll(watcher);
    await stopNodes(nodes);
    await redis?.stop();
  });

  // What the official long-polling client's stop() does, by hand and deterministically (no
  // nginx): a Close message to the owner, then a request of the ended connection on another
  // server, as when stop()'s DELETE, or a late send or poll, lands there. On one server the
  // DELETE gets 202 or 404, a send 404, a poll 404 or the close; none of them may bring the
  // connection back (claimed by the other server, counted again).
  for (const [method, body, acceptable] of [
    ["DELETE", undefined, (r) => r.status === 202 || r.status === 404],
    ["POST", '{"type":6}\u001e', (r) => r.status === 404],
    ["GET", undefined, (r) => r.status === 404 || (r.status === 200 && r.body.includes('"type":7'))],
  ]) {
    it(`a ${method} on another server for a connection its owner ended: no 400, not counted again`, async () => {
      const [owner, other] = [nodes.a, nodes.b];
      // Relative: a connection an earlier case brought back may still be counted.
      const before = await watcher.invoke("ConnectionCount");
      const negotiate = await http(owner.port, "POST", "/hub/negotiate?negotiateVersion=1");
      assert.equal(negotiate.status, 200);
      const path = `/hub?id=${encodeURIComponent(JSON.parse(negotiate.body).connectionToken)}`;
      assert.equal((await http(owner.port, "GET", path)).status, 200); // attaches on the owner
      assert.equal((await http(owner.port, "POST", path, '{"protocol":"json","version":1}\u001e')).status, 200);
      assert.deepEqual(await http(owner.port, "GET", path), { status: 200, body: "{}\u001e" });
      assert.equal(await watcher.invoke("ConnectionCount"), before + 1);

      assert.equal((await http(owner.port, "POST", path, '{"type":7}\u001e')).status, 200); // Close
      await delay(20);
      const late = await http(other.port, method, path, body);
      const answered = `${late.status} ${JSON.stringify(late.body)}`;
      let counted;
      await waitUntil(
        async () => (counted = await watcher.invoke("ConnectionCount")) <= before,
        3_000,
        "",
      ).catch(() => {});
      assert.ok(
        acceptable(late) && counted <= before,
        `${method} on node b 20 ms after the owner (node a) ended the connection: answered ${answered}; ` +
          `ConnectionCount ${counted} 3 s later (${before} before the connection)`,
      );
    });
  }
});

const KILLED_SUITE = "no sticky sessions: a node killed with SIGKILL behind round-robin nginx";
describe(KILLED_SUITE, { timeout: SUITE_TIMEOUT_MS }, () => {
  const RECONNECT_DELAYS = [0, 250, 500, 1_000, 1_000, 2_000, 2_000, 2_000, 2_000, 2_000];
  const RECOVER_MS = 15_000;
  let redis;
  let nodes;
  let nginx;
  let clients = []; // { name, connection, events: [] }

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(redis, ["a", "b", "c"], { CONNECTION_TOKEN_KEY: TOKEN_KEY });
    nginx = await startNginx(Object.values(nodes).map((node) => node.port));
    // Three of every combo, one after another; before each, `round` requests that go nowhere
    // shift round robin by one more server, so each combo gets a connection on every node.
    for (const round of [0, 1, 2]) {
      for (const { transport, protocol, name: combo } of COMBOS) {
        const name = `${combo}-${round}`;
        for (let i = 0; i < round; i++) await http(nginx.port, "GET", "/spacer");
        const events = [];
        const connection = await connect(`${nginx.url}/hub`, {
          transport,
          protocol,
          reconnect: RECONNECT_DELAYS,
          handlers: { getAnswer: (question) => `${name}:${question}` },
        });
        connection.onreconnecting((error) => events.push(`reconnecting: ${error?.message}`));
        connection.onreconnected((id) => events.push(`reconnected as ${id}`));
        connection.onclose((error) => events.push(`closed: ${error?.message}`));
        clients.push({ name, connection, events });
      }
    }
  });
  after(async () => {
    await stopAll(clients.map(({ connection }) => connection));
    await nginx?.stop();
    await stopNodes(nodes);
    await redis?.stop();
  });

  it("every client keeps working or reconnects and invokes again; nothing hangs", async () => {
    const count = clients.length;
    const [first] = clients;
    await waitUntil(
      async () => (await first.connection.invoke("ConnectionCount")) === count,
      5_000,
      `ConnectionCount did not become ${count}`,
    );
    for (const { name, connection } of clients) {
      assert.equal(
        await withTimeout(connection.invoke("Echo", `${name} before`), CALL_TIMEOUT_MS, `${name}: Echo hung`),
        `${name} before`,
      );
    }

    const killedAt = Date.now();
    await nodes.b.stop(); // SIGKILL: no goodbye to Redis, the other nodes or nginx

    /**
     * Invokes Echo until one succeeds within RECOVER_MS. An attempt that gets no answer for 5 s
     * while the connection stays Connected counts as a hang (a lost request or reply).
     */
    async function recovers({ name, connection, events }) {
      const hangs = [];
      let lastError;
      for (let attempt = 0; ; attempt++) {
        if (connection.state === HubConnectionState.Connected) {
          const text = `${name} after ${attempt}`;
          let reply;
          try {
            reply = await withTimeout(connection.invoke("Echo", text), 5_000, "no answer within 5 s");
          } catch (error) {
            lastError = error;
            if (error.message === "no answer within 5 s" && connection.state === HubConnectionState.Connected) {
              hangs.push(`attempt ${attempt} at +${Date.now() - killedAt} ms`);
            }
          }
          if (reply !== undefined) {
            assert.equal(reply, text, `${name}: Echo answered wrongly`);
            if (hangs.length) {
              throw new Error(`${name}: invocations hung: ${hangs.join("; ")}; events: ${events.join("; ")}`);
            }
            return Date.now() - killedAt;
          }
        }
        if (Date.now() - killedAt > RECOVER_MS) {
          throw new Error(
            `${name}: no successful invocation within ${RECOVER_MS} ms of the kill; state ${connection.state}; ` +
              `last error: ${lastError?.message}; hangs: ${hangs.join("; ") || "none"}; ` +
              `events: ${events.join("; ") || "none"}`,
          );
        }
        await delay(100);
      }
    }
    const results = await withTimeout(
      Promise.allSettled(clients.map(recovers)),
      RECOVER_MS + 10_000,
      "recovering the clients hung",
    );
    const failures = results.flatMap((result) => (result.status === "rejected" ? [result.reason.message] : []));
    assert.deepEqual(failures, [], `clients did not recover:\n${failures.join("\n")}\n${describeRequests(nginx, 60)}`);

    // The kill did hit connections of every transport (b owned them: they had to reconnect),
    // and no client gave up.
    const reconnected = clients.filter(({ events }) => events.some((event) => event.startsWith("reconnected")));
    for (const transport of ["WebSockets", "ServerSentEvents", "LongPolling"]) {
      assert.ok(
        reconnected.some(({ name }) => name.startsWith(`${transport}-`)),
        `no ${transport} client lost its connection: node b owned none (round robin placed them ` +
          `elsewhere; reconnected: ${reconnected.map(({ name }) => name).join(", ") || "none"})`,
      );
    }
    for (const { name, events } of clients) {
      assert.ok(!events.some((event) => event.startsWith("closed")), `${name} closed: ${events.join("; ")}`);
    }

    // The survivors go on: everyone invokes, answers a client result asked from another node's
    // client, and the cluster counts exactly the live connections again.
    for (const { name, connection } of clients) {
      for (let i = 0; i < 3; i++) {
        assert.equal(
          await withTimeout(connection.invoke("Echo", `${name} ${i}`), CALL_TIMEOUT_MS, `${name}: Echo hung`),
          `${name} ${i}`,
        );
      }
    }
    for (const { name, connection } of clients.slice(1)) {
      assert.equal(
        await withTimeout(
          first.connection.invoke("AskClient", connection.connectionId, "q"),
          CALL_TIMEOUT_MS,
          `AskClient to ${name} hung`,
        ),
        `${name}:q`,
      );
    }
    await waitUntil(
      async () => (await first.connection.invoke("ConnectionCount")) === count,
      5_000,
      `ConnectionCount did not come back to ${count}`,
    );
    assertAlive({ a: nodes.a, c: nodes.c });
  });
});

// Stateful reconnect across nodes: the client's WebSocket is cut (a TCP proxy in front of nginx
// destroys it); its stateful resume goes through round robin to any node. On the node that holds
// the session it resumes (same connection id, no reconnect events); on another it gets 404 and
// the client — with automatic reconnect — starts a new connection. Either way every client works
// again, nothing hangs, and none ends closed.
const STATEFUL_SUITE = "no sticky sessions: a stateful WebSocket resume lands on any node";
describe(STATEFUL_SUITE, { timeout: SUITE_TIMEOUT_MS }, () => {
  const DISCONNECT_MS = 2_000;
  let redis;
  let nodes;
  let nginx;
  let proxy;
  const clients = []; // { connection, firstId, events }

  /** A TCP proxy to nginx; `cut()` destroys every connection through it, both sides. */
  function startProxy(target) {
    const sockets = new Set();
    const server = createTcpServer((client) => {
      const upstream = tcpConnect(target, "127.0.0.1");
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        socket.on("error", () => {});
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    return new Promise((resolve) => {
      server.listen(0, "127.0.0.1", () =>
        resolve({
          port: server.address().port,
          cut() {
            for (const socket of sockets) socket.destroy();
          },
          close: () => new Promise((done) => server.close(done)),
        }),
      );
    });
  }

  before(async () => {
    redis = await startRedis();
    // A session whose client resumed elsewhere waits for it for the disconnect timeout, then
    // ends: short here, so the counts settle within the test.
    nodes = await startNodes(redis, ["a", "b", "c"], {
      CONNECTION_TOKEN_KEY: TOKEN_KEY,
      DISCONNECT_TIMEOUT_MS: String(DISCONNECT_MS),
    });
    nginx = await startNginx(Object.values(nodes).map((node) => node.port));
    proxy = await startProxy(nginx.port);
    for (let i = 0; i < 9; i++) {
      const events = [];
      const connection = new HubConnectionBuilder()
        .withUrl(`http://127.0.0.1:${proxy.port}/hub`, { transport: WebSockets })
        .withStatefulReconnect()
        .withAutomaticReconnect([0, 250, 500, 1_000, 1_000, 2_000, 2_000])
        .configureLogging(LogLevel.None)
        .build();
      connection.onreconnecting((error) => events.push(`reconnecting: ${error?.message}`));
      connection.onreconnected((id) => events.push(`reconnected as ${id}`));
      connection.onclose((error) => events.push(`closed: ${error?.message}`));
      await withTimeout(connection.start(), CALL_TIMEOUT_MS, "start");
      clients.push({ connection, firstId: connection.connectionId, events });
    }
  });
  after(async () => {
    await stopAll(clients.map(({ connection }) => connection));
    await proxy?.close();
    await nginx?.stop();
    await stopNodes(nodes);
    await redis?.stop();
  });

  /** Cuts every client's socket; checks each comes back and works. Returns how many resumed. */
  async function cutAndRecover(round) {
    const before = clients.map(({ connection, events }) => ({ id: connection.connectionId, seen: events.length }));
    proxy.cut();
    await delay(200);
    let resumed = 0;
    for (const [i, { connection, events }] of clients.entries()) {
      const fresh = () => events.slice(before[i].seen);
      await waitUntil(
        () => connection.state === HubConnectionState.Connected || fresh().some((e) => e.startsWith("closed")),
        15_000,
        `round ${round}: client ${i} did not come back: ${fresh().join("; ")}`,
      );
      assert.ok(!fresh().some((e) => e.startsWith("closed")), `round ${round}: client ${i} closed: ${fresh().join("; ")}`);
      const echoed = await withTimeout(connection.invoke("Echo", `after ${round}/${i}`), CALL_TIMEOUT_MS, `round ${round}: client ${i} echo`);
      assert.equal(echoed, `after ${round}/${i}`);
      if (connection.connectionId === before[i].id) {
        assert.deepEqual(fresh(), [], `round ${round}: client ${i} resumed its connection: no reconnect events`);
        resumed++;
      } else {
        assert.ok(fresh().some((e) => e.startsWith("reconnected as")), `round ${round}: client ${i} changed connection without reconnecting: ${fresh().join("; ")}`);
      }
    }
    // Every connection is counted once, on whichever node it now lives (a session whose client
    // started anew ends after the disconnect timeout).
    await waitUntil(
      async () => (await clients[0].connection.invoke("ConnectionCount")) === clients.length,
      DISCONNECT_MS + 5_000,
      `round ${round}: ConnectionCount did not settle at the number of clients`,
    );
    return resumed;
  }

  it("each client resumes on its node or starts anew on another, and works", async () => {
    for (const { connection } of clients) {
      assert.equal(await withTimeout(connection.invoke("Echo", "before"), CALL_TIMEOUT_MS, "echo before"), "before");
    }
    // The clients' resumes reach nginx in the order their sockets opened, so round robin's
    // phase decides where they land: as it stands, each on the node that holds its session…
    const resumedInPlace = await cutAndRecover(1);
    // …and one request later, each on another node, where the resume is refused (404) and the
    // client starts a new connection.
    await http(nginx.port, "GET", "/spacer");
    const resumedElsewhere = await cutAndRecover(2);
    assert.ok(
      resumedElsewhere < clients.length,
      `every client resumed its session although round robin sent its resume to another node (first round: ${resumedInPlace} resumed)`,
    );
    assertAlive(nodes);
  });
});
