// Authentication refresh (ASP.NET Core 11) against the conformance hub: `/refreshing` (refresh on,
// connections closed when their credentials expire) and `/refreshing-lenient` (not closed).
// Tokens are `user#roles@<expiry, ms since the epoch>` (see examples/conformance/main.rs); an
// expired one gets 401. tests/node/conformance/authentication.test.mjs runs the same scenarios
// with the official 11.0 client. Every HTTP request goes through a recording `fetch`, which can
// also answer some requests itself.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { HttpTransportType, HubConnectionBuilder, HubConnectionState, LogLevel } from "../dist/index.js";
import { startServer } from "./server.mjs";

const TRANSPORTS = ["WebSockets", "ServerSentEvents", "LongPolling"];
const unauthorized = (method) => `Failed to invoke '${method}' because user is unauthorized`;
const delay = (ms) => new Promise((r) => setTimeout(r, ms));
const expiring = (token, ms) => `${token}@${Date.now() + ms}`;
const bearer = (token) => `Bearer ${token}`;

const waitFor = async (predicate, ms, what) => {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
};

/** The first call of an event (`onclose`, `onAuthenticationRefreshed`…), with its argument. */
const nextEvent = (hub, event, ms) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    hub[event]((arg) => (clearTimeout(timer), resolve({ arg, at: Date.now() })));
  });

/**
 * A `fetch` that records each request (method, path, query, headers, then status) in request
 * order; `answer(entry)` may return a Response instead of the server's, `seen(entry, response)`
 * looks at each response before the client does.
 */
function recorder({ answer, seen } = {}) {
  const log = [];
  const record = async (url, init = {}) => {
    const { pathname, searchParams } = new URL(url);
    const entry = { method: init.method, path: pathname, query: searchParams, headers: { ...init.headers } };
    log.push(entry);
    const response = (await answer?.(entry)) ?? (await fetch(url, init));
    entry.status = response.status;
    await seen?.(entry, response);
    return response;
  };
  const lines = () => log.map((e) => `${e.method} ${e.path} ${e.status ?? "pending"}`);
  const refreshes = () => log.filter((e) => e.path.endsWith("/refresh"));
  return { log, fetch: record, lines, refreshes };
}

describe("authentication refresh", () => {
  let server;
  before(async () => (server = await startServer()));
  after(() => server?.stop());

  /** A built (not started) connection; `configure(builder)` adds to it. */
  const build = (path, transport, accessTokenFactory, configure = (b) => b, options = {}) =>
    configure(
      new HubConnectionBuilder().withUrl(server.url(path), {
        transport: HttpTransportType[transport],
        accessTokenFactory,
        WebSocket,
        ...options,
      }),
    ).build();

  for (const transport of TRANSPORTS) {
    test(`a scheduled refresh keeps the connection past its first expiry and renews its principal (${transport})`, async () => {
      const started = Date.now();
      // 4 s credentials (negotiate reports 3 s: refreshed after half of it, 1.5 s), then an admin's.
      const firstExpiry = started + 4_000;
      const factory = () => (Date.now() - started < 1_000 ? `alice@${firstExpiry}` : expiring("alice#admin", 60_000));
      const http = recorder();
      const hub = build("/refreshing", transport, factory, (b) => b.withAuthenticationRefresh(), { fetch: http.fetch });
      let closed = false;
      hub.onclose(() => (closed = true));
      const refreshed = nextEvent(hub, "onAuthenticationRefreshed", 5_000);
      await hub.start();
      try {
        await assert.rejects(hub.invoke("AdminEcho", "x"), { message: unauthorized("AdminEcho") });
        const { arg: context, at } = await refreshed;
        assert.equal(context.connection, hub);
        assert.ok([59, 60].includes(context.newTokenLifetimeInSeconds), `${context.newTokenLifetimeInSeconds}`);
        assert.ok(context.refreshedAt instanceof Date && Math.abs(context.refreshedAt.getTime() - at) < 100);
        assert.ok(at - started >= 1_500 && at - started < 3_000, `refreshed after ${at - started} ms`);
        // One refresh: POST {hub}/refresh with the connection token and the factory's credentials.
        const [refresh, ...more] = http.refreshes();
        assert.equal(more.length, 0, `${http.lines()}`);
        assert.equal(refresh.method, "POST");
        assert.equal(refresh.path, "/refreshing/refresh");
        assert.equal(refresh.status, 200);
        assert.match(refresh.headers.Authorization, /^Bearer alice#admin@\d+$/);
        assert.equal(refresh.headers["X-Requested-With"], "XMLHttpRequest");
        const token = refresh.headers["X-SignalR-Connection-Token"];
        assert.match(token, /^[\w-]{10,}$/);
        if (transport !== "WebSockets") {
          assert.ok(http.log.some((e) => e.method === "GET" && e.query.get("id") === token), "the transport's id");
        }
        // Past the first credentials' expiry, the connection runs on, as the refreshed admin.
        await delay(Math.max(0, firstExpiry + 1_200 - Date.now()));
        assert.equal(closed, false);
        assert.equal(hub.state, HubConnectionState.Connected);
        assert.equal(await hub.invoke("AdminEcho", "refreshed"), "refreshed");
        assert.equal(await hub.invoke("UserId"), "alice");
      } finally {
        await hub.stop();
      }
    });
  }

  test("refreshBeforeExpirationInMilliseconds moves the refresh (lifetime - lead when the lifetime is over twice the lead)", async () => {
    const started = Date.now();
    const token = `alice@${started + 4_000}`; // negotiate reports 3 s; a lead of 0 refreshes after 3 s
    const hub = build("/refreshing", "WebSockets", () => token, (b) =>
      b.withAuthenticationRefresh({ enableAutoRefresh: true }).withAuthenticationRefresh({ refreshBeforeExpirationInMilliseconds: 0 }),
    );
    const refreshed = nextEvent(hub, "onAuthenticationRefreshed", 5_000);
    await hub.start();
    try {
      const { arg: context, at } = await refreshed;
      assert.ok(at - started >= 3_000, `refreshed after ${at - started} ms`);
      assert.equal(context.newTokenLifetimeInSeconds, undefined); // under a second left: no lifetime
    } finally {
      await hub.stop();
    }
  });

  test("a refresh as another user is refused (403): onAuthenticationRefreshFailed, and the connection expires as before", async () => {
    let token = expiring("alice", 2_000);
    const http = recorder();
    const hub = build("/refreshing", "WebSockets", () => token, (b) => b.withAuthenticationRefresh({ enableAutoRefresh: false }), {
      fetch: http.fetch,
    });
    await hub.start();
    try {
      const failed = nextEvent(hub, "onAuthenticationRefreshFailed", 3_000);
      const closed = nextEvent(hub, "onclose", 5_000);
      let refreshed = 0;
      hub.onAuthenticationRefreshed(() => refreshed++);
      token = expiring("mallory", 60_000);
      const message = "Unexpected status code returned from authentication refresh '403'";
      await assert.rejects(hub.refreshAuthentication(), { message });
      const { arg: context } = await failed;
      assert.equal(context.connection, hub);
      assert.ok(context.error instanceof Error);
      assert.equal(context.error.message, message);
      assert.equal(refreshed, 0);
      assert.equal(await hub.invoke("UserId"), "alice");
      const { arg: error } = await closed;
      assert.equal(error, undefined, `${error}`);
      assert.equal(http.refreshes().length, 1, `${http.lines()}`);
      await assert.rejects(hub.refreshAuthentication(), {
        message: "Cannot refresh authentication when the connection is not active.",
      });
    } finally {
      await hub.stop();
    }
  });

  test("a long poll told to refresh (409) refreshes with the factory's credentials and polls on, losing no push", async () => {
    // /refreshing-lenient does not close connections on expiry: what the poll carries decides.
    // The factory gives the expired token until the server asks for a refresh (the recording
    // fetch sees the 409 before the client does), then a fresh one.
    let token = expiring("alice", 1_000);
    const fresh = expiring("alice", 60_000);
    const http = recorder({
      seen: (entry) => {
        if (entry.method === "GET" && entry.status === 409) token = fresh;
      },
    });
    const alice = build("/refreshing-lenient", "LongPolling", () => token, (b) => b, { fetch: http.fetch });
    const received = [];
    alice.on("Receive", (label, text) => received.push(`${label}:${text}`));
    let closed = false;
    alice.onclose(() => (closed = true));
    let refreshedEvents = 0;
    alice.onAuthenticationRefreshed(() => refreshedEvents++);
    await alice.start();
    const sender = new HubConnectionBuilder().withUrl(server.url("/refreshing-lenient"), { WebSocket }).build();
    await sender.start();
    try {
      await delay(1_300);
      // The first push answers the poll held since before the expiry; the next poll carries the
      // expired credentials: 409, refresh, poll.
      await sender.invoke("SendToUser", "alice", "one");
      await waitFor(() => received.length === 1, 3_000, "the first push");
      await sender.invoke("SendToUser", "alice", "two");
      await waitFor(() => received.length === 2, 3_000, "the push after the refresh");
      assert.deepEqual(received, ["user:one", "user:two"]);
      const at = http.log.findIndex((e) => e.status === 409);
      assert.ok(at > 0, `${http.lines()}`);
      const [conflict, refresh, poll] = http.log.slice(at);
      assert.deepEqual(
        [conflict, refresh, poll].map((e) => `${e.method} ${e.path} ${e.status}`),
        ["GET /refreshing-lenient 409", "POST /refreshing-lenient/refresh 200", "GET /refreshing-lenient 200"],
        `${http.lines()}`,
      );
      assert.notEqual(conflict.headers.Authorization, bearer(fresh));
      assert.equal(refresh.headers.Authorization, bearer(fresh));
      assert.equal(refresh.headers["X-SignalR-Connection-Token"], conflict.query.get("id"));
      assert.equal(poll.headers.Authorization, bearer(fresh));
      assert.equal(closed, false);
      assert.equal(await alice.invoke("UserId"), "alice");
      // The transport's own refresh is not an application refresh (as in the official client).
      assert.equal(refreshedEvents, 0);
    } finally {
      await Promise.all([alice.stop(), sender.stop()]);
    }
  });

  test("a long poll's refresh that fails, or a second 409 in a row, closes the transport with that error", async () => {
    const conflict = () =>
      new Response(JSON.stringify({ error: "authentication_refresh_required" }), {
        status: 409,
        statusText: "Conflict",
        headers: { "Content-Type": "application/json" },
      });
    for (const [refreshStatus, expected] of [
      [401, "Unexpected status code returned from authentication refresh '401'"],
      [undefined, "Long polling failed: 409 Conflict"], // the server's refresh succeeds, the poll after it is 409 again
    ]) {
      let armed = false;
      const http = recorder({
        answer: (entry) => {
          if (!armed) return;
          if (entry.method === "GET") return conflict();
          if (entry.path.endsWith("/refresh") && refreshStatus) return new Response("", { status: refreshStatus });
        },
      });
      const hub = build("/refreshing-lenient", "LongPolling", () => "alice", (b) => b, { fetch: http.fetch });
      await hub.start();
      try {
        const closed = nextEvent(hub, "onclose", 3_000);
        armed = true;
        await hub.send("SendToCaller", "ends the held poll"); // the next poll gets the 409
        const { arg: error } = await closed;
        assert.equal(error?.message, expected);
        const at = http.log.findIndex((e) => e.status === 409);
        const tail = http.log.slice(at).filter((e) => e.method !== "DELETE").map((e) => `${e.method} ${e.path} ${e.status}`);
        assert.deepEqual(
          tail,
          refreshStatus
            ? ["GET /refreshing-lenient 409", "POST /refreshing-lenient/refresh 401"]
            : ["GET /refreshing-lenient 409", "POST /refreshing-lenient/refresh 200", "GET /refreshing-lenient 409"],
        );
      } finally {
        await hub.stop();
      }
    }
  });

  test("without withAuthenticationRefresh nothing is scheduled: the connection expires; a manual refresh still works", async () => {
    const token = expiring("alice", 2_500);
    let negotiated;
    const http = recorder({
      seen: async (entry, response) => {
        if (entry.path.endsWith("/negotiate")) negotiated = await response.clone().json();
      },
    });
    const hub = build("/refreshing", "LongPolling", () => token, (b) => b, { fetch: http.fetch });
    const refreshed = [];
    hub.onAuthenticationRefreshed((context) => refreshed.push(context.newTokenLifetimeInSeconds));
    await hub.start();
    try {
      assert.equal(negotiated.tokenLifetimeSeconds, 2); // a lifetime the client could have scheduled from
      const closed = nextEvent(hub, "onclose", 5_000);
      const lifetime = await hub.refreshAuthentication();
      assert.ok(lifetime === undefined || lifetime <= 2, `${lifetime}`);
      assert.deepEqual(refreshed, [lifetime]);
      const { arg: error } = await closed;
      assert.equal(error, undefined, `${error}`);
      assert.equal(http.refreshes().length, 1, `${http.lines()}`);
    } finally {
      await hub.stop();
    }
  });

  test("stop clears the scheduled refresh", async () => {
    const http = recorder();
    const hub = build("/refreshing", "ServerSentEvents", () => expiring("alice", 3_000), (b) => b.withAuthenticationRefresh(), {
      fetch: http.fetch,
    });
    await hub.start(); // negotiate reports 2 s: a refresh would go out after 1 s
    await delay(300);
    await hub.stop();
    await delay(1_500);
    assert.equal(http.refreshes().length, 0, `${http.lines()}`);
  });

  test("a failed scheduled refresh is reported and the connection goes on; a reconnect schedules anew", async () => {
    const started = Date.now();
    // The first connection's credentials last 1.5 s (negotiate: 1 s, a refresh after 0.5 s, which
    // the recording fetch fails with 500); it expires, reconnects with 4 s ones and refreshes after 1.5 s.
    const factory = () => (Date.now() - started < 1_000 ? `alice@${started + 1_500}` : expiring("alice", 4_000));
    let failRefreshes = true;
    const http = recorder({
      answer: (entry) => (entry.path.endsWith("/refresh") && failRefreshes ? new Response("", { status: 500 }) : undefined),
    });
    const logs = [];
    const hub = build(
      "/refreshing",
      "WebSockets",
      factory,
      (b) => b.withAuthenticationRefresh().withAutomaticReconnect([0]).configureLogging((level, message) => logs.push([level, message])),
      { fetch: http.fetch },
    );
    const failed = nextEvent(hub, "onAuthenticationRefreshFailed", 3_000);
    const reconnecting = nextEvent(hub, "onreconnecting", 4_000);
    const reconnected = nextEvent(hub, "onreconnected", 6_000);
    await hub.start();
    try {
      const { arg: context, at: failedAt } = await failed;
      assert.equal(context.error.message, "Unexpected status code returned from authentication refresh '500'");
      assert.ok(failedAt - started >= 500, `${failedAt - started} ms`);
      const logged = `Authentication refresh failed: ${context.error.message}`;
      await waitFor(() => logs.some(([level, m]) => level === LogLevel.Error && m === logged), 1_000, "the error log");
      assert.equal(hub.state, HubConnectionState.Connected);
      assert.equal(await hub.invoke("Echo", "still here"), "still here");
      // No retry of the failed refresh: the connection expires (Close, reconnect allowed, no
      // error: onreconnecting gets undefined, as with the official client).
      const { arg: reason } = await reconnecting;
      assert.equal(reason, undefined, `${reason}`);
      assert.equal(http.refreshes().length, 1, `${http.lines()}`);
      failRefreshes = false;
      const refreshed = nextEvent(hub, "onAuthenticationRefreshed", 4_000);
      const { at: reconnectedAt } = await reconnected;
      const { arg: refresh, at } = await refreshed;
      assert.ok(at - reconnectedAt >= 1_000, `refreshed ${at - reconnectedAt} ms after the reconnect`);
      assert.ok(refresh.newTokenLifetimeInSeconds >= 1, `${refresh.newTokenLifetimeInSeconds}`);
      assert.equal(http.refreshes().length, 2, `${http.lines()}`);
    } finally {
      await hub.stop();
    }
  });

  test("refresh answers: a server accessToken bears later requests; non-JSON and non-200 answers reject; {} gives no lifetime", async () => {
    // Some answers come from the recording fetch; the URL's query goes to /refresh too.
    const stubs = [];
    const http = recorder({ answer: (entry) => (entry.path.endsWith("/refresh") ? stubs.shift() : undefined) });
    const hub = build("/refreshing-lenient?tenant=a", "LongPolling", () => "alice", (b) => b, { fetch: http.fetch });
    const failures = [];
    hub.onAuthenticationRefreshFailed((context) => failures.push(context.error.message));
    await hub.start();
    try {
      stubs.push(Response.json({ tokenLifetimeSeconds: 42, accessToken: "alice#admin" }));
      assert.equal(await hub.refreshAuthentication(), 42);
      const refresh = http.refreshes()[0];
      assert.equal(refresh.path, "/refreshing-lenient/refresh");
      assert.equal(refresh.query.get("tenant"), "a");
      assert.equal(refresh.headers.Authorization, bearer("alice"));
      const sent = http.log.length;
      assert.equal(await hub.invoke("Echo", "with the server's token"), "with the server's token");
      const later = http.log.slice(sent);
      assert.ok(later.length > 0 && later.every((e) => e.headers.Authorization === bearer("alice#admin")), `${http.lines()}`);

      stubs.push(new Response("<html>", { status: 200 }));
      await assert.rejects(hub.refreshAuthentication(), {
        message: "Invalid authentication refresh response received: expected JSON content.",
      });
      stubs.push(new Response("", { status: 500 }));
      await assert.rejects(hub.refreshAuthentication(), {
        message: "Unexpected status code returned from authentication refresh '500'",
      });
      stubs.push(Response.json({}));
      assert.equal(await hub.refreshAuthentication(), undefined);
      // Each refresh carries the application's token, not the server's.
      assert.ok(http.refreshes().every((e) => e.headers.Authorization === bearer("alice")));
      // And the server's own answer (no expiry on this token: no lifetime).
      assert.equal(await hub.refreshAuthentication(), undefined);
      assert.equal(http.refreshes().at(-1).status, 200);
      assert.deepEqual(failures, [
        "Invalid authentication refresh response received: expected JSON content.",
        "Unexpected status code returned from authentication refresh '500'",
      ]);
    } finally {
      await hub.stop();
    }
  });

  test("refreshAuthentication needs a started, negotiated connection; the lead is validated", async () => {
    const idle = build("/refreshing", "WebSockets", () => "alice", (b) => b.withAuthenticationRefresh());
    await assert.rejects(idle.refreshAuthentication(), {
      message: "Cannot refresh authentication when the connection is not active.",
    });
    const direct = build("/refreshing", "WebSockets", () => "alice", (b) => b.withAuthenticationRefresh(), { skipNegotiation: true });
    await direct.start();
    try {
      await assert.rejects(direct.refreshAuthentication(), {
        message: "Authentication refresh is only supported with HTTP-based connections.",
      });
    } finally {
      await direct.stop();
    }
    for (const lead of [-1, Number.NaN, Number.POSITIVE_INFINITY, "5"]) {
      assert.throws(() => build("/refreshing", "WebSockets", undefined, (b) => b.withAuthenticationRefresh({ refreshBeforeExpirationInMilliseconds: lead })), {
        message: "Authentication refreshBeforeExpirationInMilliseconds must be a finite number greater than or equal to 0.",
      });
    }
  });
});
