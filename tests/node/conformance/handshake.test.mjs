// The handshake (spec §3) and WebSocket input as a byte stream (§2.1), over hand-made
// WebSockets, plus handshake errors seen by the official client. Protocol violations after the
// handshake get Close with error + allowReconnect (§8).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { HttpTransportType, HubConnectionBuilder, JsonHubProtocol, LogLevel, MessageType, NullLogger } from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { decode, encode as msgpackEncode } from "@msgpack/msgpack";
import { FrameReader, PROTOCOLS, encodeFrame, rawHub, rawUpgrade, startServer } from "./server.mjs";

const RS = "\u001e";

let server;
let slowHandshakeServer;
before(async () => {
  [server, slowHandshakeServer] = await Promise.all([startServer(), startServer({ HANDSHAKE_TIMEOUT_MS: "300" })]);
});
after(async () => {
  await Promise.all([server?.stop(), slowHandshakeServer?.stop()]);
});

/** A raw upgraded socket (skipNegotiation-style, no id) with a frame reader. */
async function open(target = server, path = "/hub") {
  const upgrade = await rawUpgrade(target.url(path));
  assert.equal(upgrade.status, 101);
  const reader = new FrameReader(upgrade.socket, upgrade.head);
  return { socket: upgrade.socket, reader, write: (payload, opcode = 1) => upgrade.socket.write(encodeFrame(payload, opcode)) };
}

function protocolFor(name) {
  return name === "messagepack" ? new MessagePackHubProtocol() : new JsonHubProtocol();
}

/** Bytes of one hub message in `protocol`. */
function encode(protocol, message) {
  const data = protocolFor(protocol).writeMessage({ headers: {}, ...message });
  return typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data);
}

function parse(protocol, payload) {
  return protocolFor(protocol).parseMessages(
    protocol === "messagepack" ? new Uint8Array(payload).buffer : payload.toString("utf8"),
    NullLogger.instance,
  );
}

/** Reads frames until `count` hub messages (pings skipped) arrived. */
async function readMessages(reader, protocol, count) {
  const messages = [];
  while (messages.length < count) {
    const frame = await reader.next();
    if (frame.opcode === 8) throw new Error("closed");
    messages.push(...parse(protocol, frame.payload).filter((m) => m.type !== MessageType.Ping));
  }
  return messages;
}

/** Reads frames until the WebSocket close frame; returns the data frames' text before it. */
async function readUntilClose(reader) {
  const texts = [];
  for (;;) {
    const frame = await reader.next();
    if (frame.opcode === 8) return { texts, code: frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : undefined };
    texts.push({ opcode: frame.opcode, text: frame.payload.toString("utf8") });
  }
}

const invoke = (id, target, ...args) => ({ type: MessageType.Invocation, invocationId: id, target, arguments: args });

describe("handshake errors", () => {
  const cases = [
    ['{"protocol":"xml","version":1}', "The protocol 'xml' is not supported."],
    ['{"protocol":"json","version":3}', "The server does not support version 3 of the 'json' protocol."],
    ['{"protocol":"messagepack","version":3}', "The server does not support version 3 of the 'messagepack' protocol."],
    ['{"protocol":"json"', "An unexpected error occurred during connection handshake."],
    ['{"version":1}', "An unexpected error occurred during connection handshake."],
    ['{"protocol":"json"}', "An unexpected error occurred during connection handshake."],
  ];
  for (const [request, error] of cases) {
    it(`${request} → ${JSON.stringify(error)} as a text frame, then close`, async () => {
      const { reader, write, socket } = await open();
      try {
        write(request + RS);
        const { texts } = await readUntilClose(reader);
        assert.deepEqual(texts, [{ opcode: 1, text: JSON.stringify({ error }) + RS }]);
      } finally {
        socket.destroy();
      }
    });
  }

  it("a handshake over the maximum message size → 'Handshake was canceled.'", async () => {
    const { reader, write, socket } = await open();
    try {
      write(`{"protocol":"json","version":1,"pad":"${"x".repeat(40_000)}"}${RS}`);
      const { texts } = await readUntilClose(reader);
      assert.deepEqual(texts, [{ opcode: 1, text: `{"error":"Handshake was canceled."}${RS}` }]);
    } finally {
      socket.destroy();
    }
  });

  it("no handshake within HANDSHAKE_TIMEOUT_MS → 'Handshake was canceled.'", async () => {
    const { reader, socket } = await open(slowHandshakeServer);
    try {
      const { texts } = await readUntilClose(reader);
      assert.deepEqual(texts, [{ opcode: 1, text: `{"error":"Handshake was canceled."}${RS}` }]);
    } finally {
      socket.destroy();
    }
  });

  it("the official client with an unknown protocol name: start() rejects with the handshake error", async () => {
    const json = new JsonHubProtocol();
    const foo = Object.assign(Object.create(json), { name: "foo" });
    const client = new HubConnectionBuilder()
      .withUrl(server.url("/hub"), { transport: HttpTransportType.WebSockets })
      .withHubProtocol(foo)
      .configureLogging(LogLevel.None)
      .build();
    await assert.rejects(client.start(), (error) => {
      assert.equal(error.message, "Server returned handshake error: The protocol 'foo' is not supported.");
      return true;
    });
  });
});

for (const protocol of PROTOCOLS) {
  const frameType = protocol === "messagepack" ? 2 : 1;

  describe(`handshake and framing (${protocol})`, () => {
    for (const version of [0, 1, 2]) {
      it(`handshake version ${version} is accepted with exactly {}␞`, async () => {
        const { reader, write, socket } = await open();
        try {
          write(JSON.stringify({ protocol, version }) + RS);
          const reply = await reader.next();
          assert.equal(reply.payload.toString("latin1"), `{}${RS}`);
          assert.equal(reply.opcode, frameType);
        } finally {
          socket.destroy();
        }
      });
    }

    it("a handshake split across two frames works", async () => {
      const { reader, write, socket } = await open();
      try {
        const handshake = JSON.stringify({ protocol, version: 1 }) + RS;
        write(handshake.slice(0, 7));
        write(handshake.slice(7));
        assert.equal((await reader.next()).payload.toString("latin1"), `{}${RS}`);
        write(encode(protocol, invoke("1", "Echo", "split")), frameType);
        const [completion] = await readMessages(reader, protocol, 1);
        assert.equal(completion.result, "split");
      } finally {
        socket.destroy();
      }
    });

    it("a handshake followed by an invocation in the same frame works", async () => {
      const { reader, write, socket } = await open();
      try {
        const bytes = Buffer.concat([
          Buffer.from(JSON.stringify({ protocol, version: 1 }) + RS),
          encode(protocol, invoke("1", "Echo", "same frame")),
        ]);
        write(bytes, frameType);
        const first = await reader.next();
        // The reply may share its frame with the Completion.
        const text = first.payload.toString("latin1");
        assert.ok(text.startsWith(`{}${RS}`), `handshake reply: ${JSON.stringify(text)}`);
        const rest = first.payload.subarray(3);
        const messages = rest.length ? parse(protocol, rest) : await readMessages(reader, protocol, 1);
        assert.equal(messages[0].type, MessageType.Completion);
        assert.equal(messages[0].result, "same frame");
      } finally {
        socket.destroy();
      }
    });

    it("several messages in one frame are processed in order", async () => {
      const hub = await rawHub(server.url("/hub"), protocol);
      try {
        const bytes = Buffer.concat([
          encode(protocol, invoke("1", "Echo", "one")),
          encode(protocol, invoke("2", "Add", 1, 2)),
          encode(protocol, invoke("3", "Echo", "three")),
        ]);
        hub.socket.write(encodeFrame(bytes, frameType));
        const results = [];
        while (results.length < 3) {
          const message = await hub.receive();
          if (message.type === MessageType.Completion) results.push([message.invocationId, message.result]);
        }
        assert.deepEqual(results, [["1", "one"], ["2", 3], ["3", "three"]]);
      } finally {
        hub.close();
      }
    });

    it("a message split across frames is reassembled", async () => {
      const hub = await rawHub(server.url("/hub"), protocol);
      try {
        const bytes = encode(protocol, invoke("9", "Echo", "dribbled é😀"));
        // msgpack: byte by byte; json: character by character (a text frame must be valid UTF-8).
        const pieces =
          protocol === "messagepack" ? [...bytes].map((b) => Buffer.from([b])) : [...bytes.toString("utf8")].map((c) => Buffer.from(c));
        for (const piece of pieces) hub.socket.write(encodeFrame(piece, frameType));
        let message;
        do message = await hub.receive();
        while (message.type !== MessageType.Completion);
        assert.equal(message.invocationId, "9");
        assert.equal(message.result, "dribbled é😀");
      } finally {
        hub.close();
      }
    });

    // (Only for json: msgpack can't go in a text frame, WebSocket text frames must be valid UTF-8.)
    if (protocol === "json") it("incoming frame types are ignored: JSON in a binary frame works", async () => {
      const hub = await rawHub(server.url("/hub"), protocol);
      try {
        hub.socket.write(encodeFrame(encode(protocol, invoke("1", "Echo", "other type")), 2));
        let message;
        do message = await hub.receive();
        while (message.type !== MessageType.Completion);
        assert.equal(message.result, "other type");
      } finally {
        hub.close();
      }
    });

    it("every server frame holds whole messages of the protocol's frame type", async () => {
      const hub = await rawHub(server.url("/hub"), protocol);
      try {
        const big = "b".repeat(10_000);
        const bytes = Buffer.concat(
          Array.from({ length: 6 }, (_, i) => encode(protocol, invoke(String(i), i % 2 ? "Echo" : "SendToCaller", big))),
        );
        hub.socket.write(encodeFrame(bytes, frameType));
        let completions = 0;
        let pushes = 0;
        while (completions < 6) {
          const message = await hub.receive();
          if (message.type === MessageType.Completion) completions += 1;
          if (message.type === MessageType.Invocation) pushes += 1;
        }
        assert.equal(pushes, 3);
        for (const frame of hub.frames) {
          assert.equal(frame.opcode, frameType);
          // Each frame parses on its own, so it ends on a record boundary.
          assert.ok(parse(protocol, frame.payload).length >= 1);
        }
      } finally {
        hub.close();
      }
    });

    it("invalid input after the handshake: Close with error and allowReconnect, then the socket closes", async () => {
      const { reader, write, socket } = await open();
      try {
        write(JSON.stringify({ protocol, version: 1 }) + RS);
        assert.equal((await reader.next()).payload.toString("latin1"), `{}${RS}`);
        // json: not JSON; messagepack: a frame holding a msgpack string instead of an array.
        const garbage = protocol === "messagepack" ? Buffer.from([0x02, 0xa1, 0x78]) : Buffer.from(`{"type":1,${RS}`);
        write(garbage, frameType);
        const messages = [];
        let closeCode;
        for (;;) {
          const frame = await reader.next();
          if (frame.opcode === 8) {
            closeCode = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : undefined;
            break;
          }
          messages.push(...parse(protocol, frame.payload));
        }
        const close = messages.find((m) => m.type === MessageType.Close);
        assert.ok(close, `no Close among ${JSON.stringify(messages)}`);
        assert.equal(close.error, "Connection closed with an error.");
        assert.equal(close.allowReconnect, true);
        assert.ok(closeCode === undefined || closeCode === 1000 || closeCode === 1011, `close code ${closeCode}`);
      } finally {
        socket.destroy();
      }
    });

    it("tolerant input: unknown types, unknown ids, extra fields and headers are ignored", async () => {
      const hub = await rawHub(server.url("/hub"), protocol);
      try {
        let bytes;
        if (protocol === "json") {
          bytes = Buffer.from(
            [
              '{"type":99,"whatever":true}',
              '{"type":5,"invocationId":"nope"}',
              '{"type":3,"invocationId":"x","result":1}',
              '{"arguments":["h"],"extra":1,"headers":{"a":"b"},"target":"Echo","invocationId":"1","type":1}',
              '{"type":1,"target":"Void","arguments":[],"invocationId":"2"}',
            ].join(RS) + RS,
          );
        } else {
          const frame = (value) => {
            const body = Buffer.from(msgpackEncode(value));
            return Buffer.concat([Buffer.from([body.length]), body]);
          };
          bytes = Buffer.concat([
            frame([99, "whatever"]),
            frame([5, {}, "nope"]),
            frame([3, {}, "x", 3, 1]),
            frame([1, { a: "b" }, "1", "Echo", ["h"], [], "extra element"]),
            // Non-blocking: "" and nil ids get no reply, even on failure.
            frame([1, {}, "", "Throw", []]),
            frame([1, {}, null, "Nope", []]),
            frame([1, {}, "2", "Void", []]),
          ]);
        }
        hub.socket.write(encodeFrame(bytes, frameType));
        const messages = [];
        while (messages.length < 2) {
          const message = await hub.receive();
          if (message.type !== MessageType.Ping) messages.push(message);
        }
        assert.deepEqual(
          messages.map((m) => [m.type, m.invocationId, m.result]),
          [
            [MessageType.Completion, "1", "h"],
            [MessageType.Completion, "2", null],
          ],
        );
      } finally {
        hub.close();
      }
    });

    if (protocol === "messagepack") {
      it("server Invocations have 6 elements with an empty stream-id array", async () => {
        const hub = await rawHub(server.url("/hub"), protocol);
        try {
          hub.send({ type: MessageType.Invocation, invocationId: "1", target: "SendToCaller", arguments: ["six"], headers: {} });
          let message;
          do message = await hub.receive();
          while (message.type !== MessageType.Invocation);
          const frame = hub.frames.find((f) => parse(protocol, f.payload).some((m) => m.type === MessageType.Invocation));
          // One-byte varint length prefix (the message is short).
          const array = decode(frame.payload.subarray(1, 1 + frame.payload[0]));
          assert.deepEqual(array, [1, {}, null, "Receive", ["caller", "six"], []]);
        } finally {
          hub.close();
        }
      });

      it("the void result is kind 3 with nil, and a Close is [7, nil|str, bool]", async () => {
        const hub = await rawHub(server.url("/hub"), protocol);
        try {
          hub.send({ type: MessageType.Invocation, invocationId: "0", target: "Void", arguments: [], headers: {} });
          let message;
          do message = await hub.receive();
          while (message.type !== MessageType.Completion);
          const completion = hub.frames.at(-1).payload;
          assert.deepEqual([...completion], [0x07, 0x95, 0x03, 0x80, 0xa1, 0x30, 0x03, 0xc0]);
          hub.send({ type: MessageType.Invocation, invocationId: "1", target: "Abort", arguments: [], headers: {} });
          const frames = [];
          for (;;) {
            const frame = await hub.reader.next();
            if (frame.opcode === 8) break;
            frames.push(frame.payload);
          }
          const all = Buffer.concat(frames);
          // Abort → Close without error and without reconnect: [7, nil, false] = 04 93 07 c0 c2.
          const closeBytes = Buffer.from([0x04, 0x93, 0x07, 0xc0, 0xc2]);
          assert.ok(all.includes(closeBytes), `Close not found in ${all.toString("hex")}`);
        } finally {
          hub.close();
        }
      });
    } else {
      it("server output: push without invocationId, void result null, Close {\"type\":7}", async () => {
        const hub = await rawHub(server.url("/hub"), protocol);
        try {
          hub.send(invoke("1", "SendToCaller", "raw"));
          hub.send(invoke("2", "Void"));
          hub.send(invoke("3", "Abort"));
          const texts = [];
          for (;;) {
            const frame = await hub.reader.next();
            if (frame.opcode === 8) break;
            texts.push(frame.payload.toString("utf8"));
          }
          // Exact text, in ASP.NET's field order (§4 "Server output").
          const records = texts.join("").split(RS).filter((t) => t && t !== '{"type":6}');
          assert.deepEqual(records, [
            '{"type":1,"target":"Receive","arguments":["caller","raw"]}',
            '{"type":3,"invocationId":"1","result":null}',
            '{"type":3,"invocationId":"2","result":null}',
            // Abort's own Completion may or may not be written before the Close.
            ...(records.length === 5 ? ['{"type":3,"invocationId":"3","result":null}'] : []),
            '{"type":7}',
          ]);
          assert.ok(texts.every((t) => t.endsWith(RS)), "every frame ends on a record boundary");
        } finally {
          hub.close();
        }
      });
    }
  });
}
