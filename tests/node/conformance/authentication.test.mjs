// Authentication that expires and refreshes, with the official client 11.0 (the first with
// `withAuthenticationRefresh`; the rest of the suite pins 10.0.11, whose MessagePack add-on has
// no 11.0 release — these tests speak JSON):
// - a connection whose credentials expire is closed with ASP.NET Core's Close (no error,
//   reconnect allowed): the client reconnects with fresh credentials, or closes without error;
// - on a hub with authentication refresh, negotiate's tokenLifetimeSeconds schedules the
//   client's refresh: the connection outlives its first credentials and runs as the refreshed
//   principal; a refresh as another user is refused and changes nothing;
// - a long poll whose credentials stopped authenticating is answered 409
//   authentication_refresh_required: the client refreshes and polls again, losing nothing.
// Tokens are `user#roles@<expiry, ms since the epoch>` (see examples/conformance/main.rs).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  DefaultHttpClient,
  HttpTransportType,
  HubConnectionBuilder,
  HubConnectionState,
  LogLevel,
  NullLogger,
} from "@microsoft/signalr-11";
import { connect, delay, nextEvent, startServer, stopAll, waitUntil, withTimeout } from "./server.mjs";

const TRANSPORTS = ["WebSockets", "ServerSentEvents", "LongPolling"];
const unauthorized = (method) => `Failed to invoke '${method}' because user is unauthorized`;

/** A connection built with the 11.0 client; `configure(builder)` adds to it. */
async function connect11(url, transport, accessTokenFactory, configure = (b) => b, httpClient = undefined) {
  const builder = new HubConnectionBuilder()
    .withUrl(url, { transport: HttpTransportType[transport], accessTokenFactory, httpClient })
    .configureLogging(LogLevel.None);
  const connection = configure(builder).build();
  await connection.start();
  return connection;
}

const expiring = (token, ms) => `${token}@${Date.now() + ms}`;

/** The official HTTP client, recording each request's method, path and answer status. */
class RecordingHttpClient extends DefaultHttpClient {
  constructor() {
    super(NullLogger.instance);
    this.log = [];
  }
  async send(request) {
    const path = new URL(request.url).pathname;
    try {
      const response = await super.send(request);
      this.log.push(`${request.method} ${path} ${response.statusCode}`);
      return response;
    } catch (error) {
      this.log.push(`${request.method} ${path} ${error.statusCode ?? "error"}`);
      throw error;
    }
  }
}

describe("authentication expiry and refresh (official client 11.0)", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  for (const transport of TRANSPORTS) {
    it(`a connection whose credentials expire is closed and reconnects with fresh ones (${transport})`, async () => {
      // Every request of the first connection (negotiate, then the transport's) carries the
      // 1.5 s credentials; the reconnect gets a minute's.
      const started = Date.now();
      const factory = () =>
        Date.now() - started < 1_000 ? `alice@${started + 1_500}` : expiring("alice", 60_000);
      const connection = await connect11(server.url("/hub"), transport, factory, (b) =>
        b.withAutomaticReconnect([0]),
      );
      try {
        const reconnecting = nextEvent(connection, "onreconnecting", 6_000);
        const reconnected = nextEvent(connection, "onreconnected", 8_000);
        assert.equal(await connection.invoke("Echo", "before"), "before");
        // Closed without error, and allowed to reconnect: the client does so at once.
        const { arg: error } = await reconnecting;
        assert.equal(error, undefined, `${error}`);
        const closedAfter = Date.now() - started;
        assert.ok(closedAfter >= 1_000 && closedAfter < 4_000, `closed after ${closedAfter} ms`);
        await reconnected;
        assert.equal(await connection.invoke("UserId"), "alice");
      } finally {
        await connection.stop();
      }
    });
  }

  it("without automatic reconnect, the client closes without error when its credentials expire", async () => {
    const token = expiring("alice", 1000);
    const connection = await connect11(server.url("/hub"), "WebSockets", () => token);
    const { arg: error } = await nextEvent(connection, "onclose", 5_000);
    assert.equal(error, undefined, `${error}`);
    assert.equal(connection.state, HubConnectionState.Disconnected);
  });

  for (const transport of TRANSPORTS) {
    it(`a refresh before the expiry keeps the connection and renews its principal (${transport})`, async () => {
      const started = Date.now();
      // 4 s credentials (negotiate reports 3 s: the client refreshes after half of it), then
      // an admin's for a minute.
      const firstExpiry = started + 4_000;
      const factory = () =>
        Date.now() - started < 1_000 ? `alice@${firstExpiry}` : expiring("alice#admin", 60_000);
      const connection = await connect11(server.url("/refreshing"), transport, factory, (b) =>
        b.withAuthenticationRefresh(),
      );
      let closed = false;
      connection.onclose(() => (closed = true));
      try {
        const refreshed = nextEvent(connection, "onAuthenticationRefreshed", 5_000);
        await assert.rejects(connection.invoke("AdminEcho", "x"), { message: unauthorized("AdminEcho") });
        const { arg: context } = await refreshed;
        assert.ok([59, 60].includes(context.newTokenLifetimeInSeconds), `${context.newTokenLifetimeInSeconds}`);
        // Past the first credentials' expiry, the connection runs on, as the refreshed admin.
        await delay(Math.max(0, firstExpiry + 1_200 - Date.now()));
        assert.equal(closed, false);
        assert.equal(connection.state, HubConnectionState.Connected);
        assert.equal(await connection.invoke("AdminEcho", "refreshed"), "refreshed");
        assert.equal(await connection.invoke("UserId"), "alice");
      } finally {
        await connection.stop();
      }
    });
  }

  it("a refresh as another user is refused (403) and the connection expires as before", async () => {
    let token = expiring("alice", 2_000);
    const connection = await connect11(server.url("/refreshing"), "WebSockets", () => token, (b) =>
      b.withAuthenticationRefresh({ enableAutoRefresh: false }),
    );
    try {
      const failed = nextEvent(connection, "onAuthenticationRefreshFailed", 3_000);
      const closed = nextEvent(connection, "onclose", 5_000);
      token = expiring("mallory", 60_000);
      await assert.rejects(connection.refreshAuthentication(), {
        message: "Unexpected status code returned from authentication refresh '403'",
      });
      await failed;
      assert.equal(await connection.invoke("UserId"), "alice");
      const { arg: error } = await closed;
      assert.equal(error, undefined, `${error}`);
    } finally {
      await connection.stop();
    }
  });

  it("a long poll with credentials that stopped authenticating is told to refresh, and goes on", async () => {
    // /refreshing-lenient does not close connections on expiry: what the poll carries decides.
    let token = expiring("alice", 1_000);
    const received = [];
    const http = new RecordingHttpClient();
    const alice = await connect11(
      server.url("/refreshing-lenient"),
      "LongPolling",
      () => token,
      (b) => b,
      http,
    );
    alice.on("Receive", (label, text) => received.push(`${label}:${text}`));
    let closed = false;
    alice.onclose(() => (closed = true));
    const sender = await connect(server.url("/refreshing-lenient"));
    try {
      await delay(1_300);
      token = expiring("alice", 60_000);
      // The first push answers the poll held since before the expiry; the client's next poll
      // carries the expired credentials: 409, refresh (with the factory's fresh token), poll.
      await sender.invoke("SendToUser", "alice", "one");
      await waitUntil(() => received.length === 1, 3_000, "the first push");
      await sender.invoke("SendToUser", "alice", "two");
      await waitUntil(() => received.length === 2, 3_000, "the push after the refresh");
      assert.deepEqual(received, ["user:one", "user:two"]);
      // The poll after the expiry got 409, the refresh 200, and the next poll went through.
      const after = http.log.slice(http.log.indexOf("GET /refreshing-lenient 409"));
      assert.deepEqual(after.slice(0, 2), ["GET /refreshing-lenient 409", "POST /refreshing-lenient/refresh 200"], `${http.log}`);
      assert.ok(after.slice(2).includes("GET /refreshing-lenient 200"), `${http.log}`);
      assert.equal(closed, false);
      assert.equal(await withTimeout(alice.invoke("UserId"), 3_000, "invoke after refresh"), "alice");
    } finally {
      await stopAll(alice, sender);
    }
  });
});
