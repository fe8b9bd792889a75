// How the WebSocket transport calls the WebSocket constructor: browsers get the URL alone (the
// token in ?access_token=), Node implementations such as `ws` get headers in a third argument.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { HttpTransportType, HubConnectionBuilder } from "../dist/index.js";
import { startServer } from "./server.mjs";

let server;
before(async () => (server = await startServer()));
after(() => server?.stop());

/**
 * A WebSocket that records its constructor's arguments and, like Chromium, turns an explicit
 * `undefined` protocols argument into the subprotocol "undefined", which fails the handshake.
 */
function chromiumLike(calls) {
  return class extends WebSocket {
    constructor(...args) {
      calls.push(args);
      super(args[0], args.length > 1 ? String(args[1]) : undefined);
    }
  };
}

/** Runs `body` with `window` and `document` defined, as in a page. */
async function inBrowser(body) {
  globalThis.window = globalThis;
  globalThis.document = {};
  try {
    return await body();
  } finally {
    delete globalThis.window;
    delete globalThis.document;
  }
}

describe("the WebSocket constructor call", () => {
  test("in a browser: the URL alone, the token in the query; no fallback to SSE", async () => {
    const calls = [];
    await inBrowser(async () => {
      const hub = new HubConnectionBuilder()
        .withUrl(server.url(), { WebSocket: chromiumLike(calls), accessTokenFactory: () => "alice" })
        .build();
      await hub.start();
      try {
        assert.equal(hub.transport, "WebSockets");
        assert.equal(await hub.invoke("UserId"), "alice");
      } finally {
        await hub.stop();
      }
    });
    assert.equal(calls.length, 1);
    assert.equal(calls[0].length, 1);
    assert.match(calls[0][0], /^ws:\/\/127\.0\.0\.1:\d+\/hub\?id=[\w-]+&access_token=alice$/);
  });

  test("in a browser, the global WebSocket: the URL alone", async () => {
    const calls = [];
    const global = Object.getOwnPropertyDescriptor(globalThis, "WebSocket");
    globalThis.WebSocket = chromiumLike(calls);
    try {
      await inBrowser(async () => {
        const hub = new HubConnectionBuilder()
          .withUrl(server.url(), { transport: HttpTransportType.WebSockets, skipNegotiation: true })
          .build();
        await hub.start();
        try {
          assert.equal(await hub.invoke("Echo", "page"), "page");
        } finally {
          await hub.stop();
        }
      });
    } finally {
      if (global) Object.defineProperty(globalThis, "WebSocket", global);
      else delete globalThis.WebSocket;
    }
    assert.deepEqual(calls.map((args) => args.length), [1]);
  });

  test("in Node with an injected implementation: headers in the third argument", async () => {
    const calls = [];
    class Recording extends WebSocket {
      constructor(...args) {
        calls.push(args);
        super(...args);
      }
    }
    const hub = new HubConnectionBuilder()
      .withUrl(server.url(), {
        transport: HttpTransportType.WebSockets,
        WebSocket: Recording,
        accessTokenFactory: () => "bob",
        headers: { "X-Tenant": "a" },
      })
      .build();
    await hub.start();
    try {
      assert.equal(await hub.invoke("UserId"), "bob");
    } finally {
      await hub.stop();
    }
    assert.equal(calls.length, 1);
    assert.equal(calls[0].length, 3);
    assert.equal(calls[0][1], undefined);
    assert.deepEqual(calls[0][2], { headers: { "X-Tenant": "a", Authorization: "Bearer bob" } });
  });
});
