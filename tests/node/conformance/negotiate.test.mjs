// Negotiate (spec §1), WebSocket connection ids (§2.1), handshake framing (§3) and auth (§9),
// with fetch, hand-made WebSocket upgrades, and the official client.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  DefaultHttpClient,
  HttpTransportType,
  HubConnectionBuilder,
  JsonHubProtocol,
  LogLevel,
  MessageType,
  NullLogger,
} from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { PROTOCOLS, connect, rawHub, rawUpgrade, startServer, stopAll } from "./server.mjs";

const ID = /^[A-Za-z0-9_-]{22}$/;
// A connection token is signed (any server of a deployment can check it): URL-safe, and longer
// than an id.
const TOKEN = /^[A-Za-z0-9_-]{23,}$/;
const ALL_TRANSPORTS = [
  { transport: "WebSockets", transferFormats: ["Text", "Binary"] },
  { transport: "ServerSentEvents", transferFormats: ["Text"] },
  { transport: "LongPolling", transferFormats: ["Text", "Binary"] },
];

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

async function negotiate(query = "?negotiateVersion=1", { path = "/hub", method = "POST", headers = {} } = {}) {
  const response = await fetch(`${server.url(path)}/negotiate${query}`, { method, headers });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
}

/** An official HttpClient that rewrites every negotiate URL with `rewrite`. */
class RewritingHttpClient extends DefaultHttpClient {
  constructor(rewrite) {
    super(NullLogger.instance);
    this.rewrite = rewrite;
    this.urls = [];
  }

  send(request) {
    if (request.url.includes("/negotiate")) request.url = this.rewrite(request.url);
    this.urls.push(request.url);
    return super.send(request);
  }
}

describe("negotiate over HTTP", () => {
  it("v1: 200 JSON with a 22-char URL-safe id and a different token, all three transports", async () => {
    const response = await negotiate("?negotiateVersion=1");
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type"), /^application\/json/);
    const body = response.json();
    assert.deepEqual(Object.keys(body), ["negotiateVersion", "connectionId", "connectionToken", "availableTransports"]);
    assert.equal(body.negotiateVersion, 1);
    assert.match(body.connectionId, ID);
    assert.match(body.connectionToken, TOKEN);
    assert.notEqual(body.connectionId, body.connectionToken);
    assert.deepEqual(body.availableTransports, ALL_TRANSPORTS);
    assert.equal("useStatefulReconnect" in body, false);
  });

  it("v1: every negotiate gets a fresh id and token", async () => {
    const bodies = await Promise.all(Array.from({ length: 5 }, () => negotiate().then((r) => r.json())));
    const values = bodies.flatMap((b) => [b.connectionId, b.connectionToken]);
    assert.equal(new Set(values).size, values.length);
  });

  it("without negotiateVersion: version 0 and no connectionToken", async () => {
    const response = await negotiate("");
    assert.equal(response.status, 200);
    const body = response.json();
    assert.deepEqual(Object.keys(body), ["negotiateVersion", "connectionId", "availableTransports"]);
    assert.equal(body.negotiateVersion, 0);
    assert.match(body.connectionId, ID);
    assert.deepEqual(body.availableTransports, ALL_TRANSPORTS);
  });

  it("a version above 1 is answered with 1; the query key is case-insensitive", async () => {
    assert.equal((await negotiate("?negotiateVersion=7")).json().negotiateVersion, 1);
    const body = (await negotiate("?NegotiateVersion=1")).json();
    assert.equal(body.negotiateVersion, 1);
    assert.match(body.connectionToken, TOKEN);
  });

  it("negotiateVersion=abc: the non-integer error", async () => {
    const response = await negotiate("?negotiateVersion=abc");
    assert.equal(response.status, 200);
    assert.deepEqual(response.json(), { error: "The client requested a non-integer protocol version." });
  });

  it("a negative version: the unsupported-version error", async () => {
    assert.deepEqual((await negotiate("?negotiateVersion=-1")).json(), {
      error: "The client requested version '-1', but the server does not support this version.",
    });
  });

  it("GET on negotiate: 405", async () => {
    assert.equal((await negotiate("?negotiateVersion=1", { method: "GET" })).status, 405);
  });

  it("bearer token 'reject': 401 with an empty body", async () => {
    const response = await negotiate("?negotiateVersion=1", { headers: { Authorization: "Bearer reject" } });
    assert.equal(response.status, 401);
    assert.equal(response.text, "");
  });

  it("any other bearer token is accepted", async () => {
    const response = await negotiate("?negotiateVersion=1", { headers: { Authorization: "Bearer alice" } });
    assert.equal(response.status, 200);
  });

  it("the hub path is case-insensitive", async () => {
    const response = await negotiate("?negotiateVersion=1", { path: "/HUB" });
    assert.equal(response.status, 200);
    assert.equal(response.json().negotiateVersion, 1);
    assert.equal((await negotiate("?negotiateVersion=1", { path: "/Detailed" })).status, 200);
  });

  it("an unknown path: 404", async () => {
    assert.equal((await negotiate("?negotiateVersion=1", { path: "/nope" })).status, 404);
  });
});

describe("WebSocket connection ids", () => {
  it("an unknown token: 404 before the upgrade", async () => {
    const response = await rawUpgrade(server.url("/hub?id=bogus"));
    assert.equal(response.status, 404);
    assert.equal(response.body, "No Connection with that ID");
  });

  it("v1: the public connectionId is not accepted as ?id= (404), the token is (101)", async () => {
    const body = (await negotiate()).json();
    const byId = await rawUpgrade(server.url(`/hub?id=${body.connectionId}`));
    assert.equal(byId.status, 404);
    const byToken = await rawUpgrade(server.url(`/hub?id=${body.connectionToken}`));
    assert.equal(byToken.status, 101);
    byToken.socket.destroy();
  });

  it("a closed connection's token: 404", async () => {
    const { connectionToken } = (await negotiate()).json();
    const hub = await rawHub(server.url(`/hub?id=${connectionToken}`), "json");
    hub.send({ type: MessageType.Invocation, invocationId: "1", target: "Abort", arguments: [] });
    while ((await hub.reader.next()).opcode !== 8);
    hub.close();
    const again = await rawUpgrade(server.url(`/hub?id=${connectionToken}`));
    again.socket?.destroy();
    assert.equal(again.status, 404);
  });

  it("the bearer token is also taken from ?access_token= on the upgrade", async () => {
    const hub = await rawHub(server.url("/hub?access_token=carol"), "json");
    try {
      hub.send({ type: MessageType.Invocation, invocationId: "1", target: "UserId", arguments: [] });
      assert.deepEqual(await hub.receive(), { type: MessageType.Completion, invocationId: "1", result: "carol" });
    } finally {
      hub.close();
    }
  });

  it("a rejected token on the upgrade (query or header): 401 with an empty body", async () => {
    for (const [path, headers] of [
      ["/hub?access_token=reject", {}],
      ["/hub", { Authorization: "Bearer reject" }],
    ]) {
      const response = await rawUpgrade(server.url(path), headers);
      response.socket?.destroy();
      assert.equal(response.status, 401, path);
      assert.equal(response.body, "");
    }
  });

  it("a second socket on an active connection: 409", async () => {
    const { connectionToken } = (await negotiate()).json();
    const first = await rawHub(server.url(`/hub?id=${connectionToken}`), "json");
    try {
      const second = await rawUpgrade(server.url(`/hub?id=${connectionToken}`));
      assert.equal(second.status, 409);
      // The first socket still works.
      first.send({ type: MessageType.Invocation, invocationId: "1", target: "Echo", arguments: ["ok"] });
      assert.deepEqual(await first.receive(), { type: MessageType.Completion, invocationId: "1", result: "ok" });
    } finally {
      first.close();
    }
  });
});

for (const protocol of PROTOCOLS) {
  const frameType = protocol === "messagepack" ? 2 : 1;

  describe(`connect (${protocol})`, () => {
    it("v0 negotiate: the connectionId works as ?id= on a raw WebSocket", async () => {
      const { connectionId } = (await negotiate("")).json();
      const hub = await rawHub(server.url(`/hub?id=${connectionId}`), protocol);
      try {
        assert.equal(hub.handshake.reply, "{}\u001e");
        assert.equal(hub.handshake.opcode, frameType, "handshake reply frame type");
        hub.send({ type: MessageType.Invocation, invocationId: "7", target: "ConnectionId", arguments: [], headers: {} });
        const completion = await hub.receive();
        assert.equal(completion.type, MessageType.Completion);
        assert.equal(completion.invocationId, "7");
        assert.equal(completion.result, connectionId);
        assert.ok(hub.frames.every((f) => f.opcode === frameType), `frame types ${JSON.stringify(hub.frames)}`);
      } finally {
        hub.close();
      }
    });

    it("v1 negotiate on a raw WebSocket: handshake reply and frames use the protocol's frame type", async () => {
      const { connectionId, connectionToken } = (await negotiate()).json();
      const hub = await rawHub(server.url(`/hub?id=${connectionToken}`), protocol);
      try {
        assert.equal(hub.handshake.reply, "{}\u001e");
        assert.equal(hub.handshake.opcode, frameType);
        hub.send({ type: MessageType.Invocation, invocationId: "1", target: "ConnectionId", arguments: [], headers: {} });
        assert.equal((await hub.receive()).result, connectionId);
        hub.send({ type: MessageType.Invocation, invocationId: "2", target: "SendToCaller", arguments: ["x"], headers: {} });
        const push = await hub.receive();
        assert.equal(push.type, MessageType.Invocation);
        assert.equal(push.target, "Receive");
        assert.deepEqual(push.arguments, ["caller", "x"]);
        assert.equal(push.invocationId, undefined);
        assert.ok(hub.frames.every((f) => f.opcode === frameType), `frame types ${JSON.stringify(hub.frames)}`);
      } finally {
        hub.close();
      }
    });

    it("the official client completes a v0 negotiate (negotiateVersion dropped from the URL)", async () => {
      const httpClient = new RewritingHttpClient((url) => url.replace(/[?&]negotiateVersion=1/, ""));
      const client = await connect(server.url("/hub"), { protocol, httpClient });
      try {
        assert.ok(httpClient.urls.some((u) => u.includes("/negotiate") && !u.includes("negotiateVersion")));
        assert.match(client.connectionId, ID);
        assert.equal(await client.invoke("ConnectionId"), client.connectionId);
      } finally {
        await client.stop();
      }
    });

    it("the official client's start() rejects with the negotiate error text", async () => {
      const httpClient = new RewritingHttpClient((url) => url.replace("negotiateVersion=1", "negotiateVersion=abc"));
      await assert.rejects(connect(server.url("/hub"), { protocol, httpClient }), (error) => {
        assert.equal(error.message, "The client requested a non-integer protocol version.");
        return true;
      });
    });

    it("skipNegotiation: WebSockets without negotiate works, connectionId stays null", async () => {
      const client = await connect(server.url("/hub"), {
        protocol,
        skipNegotiation: true,
        transport: HttpTransportType.WebSockets,
      });
      try {
        assert.equal(client.connectionId, null);
        assert.equal(await client.invoke("Echo", "skipped"), "skipped");
        assert.match(await client.invoke("ConnectionId"), ID);
      } finally {
        await client.stop();
      }
    });

    it("bearer token 'reject': start() rejects with Status code '401'", async () => {
      await assert.rejects(
        connect(server.url("/hub"), { protocol, accessTokenFactory: () => "reject" }),
        (error) => {
          assert.match(error.message, /Status code '401'/);
          return true;
        },
      );
    });

    it("bearer token 'reject' with skipNegotiation: the upgrade is refused and start() rejects", async () => {
      await assert.rejects(
        connect(server.url("/hub"), {
          protocol,
          skipNegotiation: true,
          transport: HttpTransportType.WebSockets,
          accessTokenFactory: () => "reject",
        }),
      );
    });

    it("the official client connects through a differently-cased hub path", async () => {
      const client = await connect(server.url("/HUB"), { protocol });
      try {
        assert.equal(await client.invoke("Echo", "case"), "case");
      } finally {
        await client.stop();
      }
    });

    it("withStatefulReconnect(): the server doesn't offer it, and the client still works", async () => {
      const httpClient = new RewritingHttpClient((url) => url);
      const client = new HubConnectionBuilder()
        .withUrl(server.url("/hub"), { transport: HttpTransportType.WebSockets, httpClient })
        .withHubProtocol(protocol === "messagepack" ? new MessagePackHubProtocol() : new JsonHubProtocol())
        .withStatefulReconnect()
        .configureLogging(LogLevel.None)
        .build();
      try {
        await client.start();
        assert.ok(httpClient.urls.some((u) => u.includes("useStatefulReconnect=true")));
        assert.equal(await client.invoke("Echo", "stateful"), "stateful");
      } finally {
        await stopAll(client);
      }
    });
  });
}
