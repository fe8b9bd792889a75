// Unit tests: JSON ␞ framing and MessagePack varint framing over arbitrary chunking.
import test from "node:test";
import assert from "node:assert/strict";
import { JsonHubProtocol, createTextFramer } from "../dist/index.js";
import { MessagePackHubProtocol } from "../dist/msgpack.js";

const messages = [
  { type: 1, target: "Receive", arguments: ["a", "héllo ☃ 😀"] },
  { type: 3, invocationId: "0", result: null },
  { type: 2, invocationId: "1", item: { nested: [1, 2, 3] } },
  { type: 6 },
  { type: 7, error: "Connection closed with an error.", allowReconnect: true },
];

/** Every way of cutting `bytes` into chunks of sizes from `sizes` (cycled). */
function chunk(bytes, sizes) {
  const parts = [];
  for (let i = 0, k = 0; i < bytes.length; k++) {
    const n = sizes[k % sizes.length];
    parts.push(bytes.slice(i, i + n));
    i += n;
  }
  return parts;
}

function feedAll(parse, parts) {
  return parts.flatMap((part) => parse(part));
}

test("json: one chunk holding several messages", () => {
  const protocol = new JsonHubProtocol();
  const wire = messages.map((m) => protocol.write(m)).join("");
  assert.deepEqual(protocol.createParser()(wire), messages);
});

test("json: every split of the byte stream, including inside multi-byte characters", () => {
  const protocol = new JsonHubProtocol();
  const bytes = new TextEncoder().encode(messages.map((m) => protocol.write(m)).join(""));
  for (let size = 1; size <= 17; size++) {
    assert.deepEqual(feedAll(protocol.createParser(), chunk(bytes, [size])), messages, `size ${size}`);
  }
  for (let seed = 0; seed < 50; seed++) {
    const sizes = Array.from({ length: 7 }, (_, i) => 1 + ((seed * 31 + i * 17) % 23));
    assert.deepEqual(feedAll(protocol.createParser(), chunk(bytes, sizes)), messages);
  }
});

test("json: string chunks split anywhere", () => {
  const protocol = new JsonHubProtocol();
  const text = messages.map((m) => protocol.write(m)).join("");
  for (let size = 1; size <= 9; size++) {
    const parts = [];
    for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
    assert.deepEqual(feedAll(protocol.createParser(), parts), messages);
  }
});

test("json: writes type-tagged records ending in ␞; a partial record waits", () => {
  const protocol = new JsonHubProtocol();
  assert.equal(protocol.write({ type: 6 }), '{"type":6}\x1e');
  const parse = protocol.createParser();
  assert.deepEqual(parse('{"type":'), []);
  assert.deepEqual(parse('6}\x1e{"ty'), [{ type: 6 }]);
  assert.deepEqual(parse('pe":6}\x1e'), [{ type: 6 }]);
  assert.throws(() => protocol.createParser()("[1]\x1e"));
});

test("text framer keeps the remainder", () => {
  const framer = createTextFramer();
  assert.deepEqual(framer("a\x1eb"), ["a"]);
  assert.deepEqual(framer("c\x1e\x1e"), ["bc", ""]);
});

test("msgpack: known bytes (ping, void completion, close)", () => {
  const protocol = new MessagePackHubProtocol();
  assert.deepEqual([...protocol.write({ type: 6 })], [0x02, 0x91, 0x06]);
  const parse = protocol.createParser();
  assert.deepEqual(parse(Uint8Array.from([0x07, 0x95, 0x03, 0x80, 0xa1, 0x30, 0x03, 0xc0])), [
    { type: 3, invocationId: "0", result: null },
  ]);
  assert.deepEqual(parse(Uint8Array.from([0x06, 0x94, 0x03, 0x80, 0xa1, 0x31, 0x02])), [{ type: 3, invocationId: "1" }]);
  assert.deepEqual(parse(Uint8Array.from([0x04, 0x93, 0x07, 0xc0, 0xc3])), [
    { type: 7, error: undefined, allowReconnect: true },
  ]);
});

test("msgpack: every split of several frames, including a multi-byte varint", () => {
  const protocol = new MessagePackHubProtocol();
  const big = { type: 2, invocationId: "9", item: "x".repeat(300) }; // 2-byte varint
  const sent = [
    { type: 2, invocationId: "1", item: 5 },
    big,
    { type: 3, invocationId: "2", error: "boom" },
    { type: 3, invocationId: "3", result: [1, "a"] },
    { type: 3, invocationId: "4" },
  ];
  const frames = sent.map((m) => protocol.write(m));
  assert.equal(frames[1][0] & 0x80, 0x80);
  const bytes = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  frames.reduce((offset, f) => (bytes.set(f, offset), offset + f.length), 0);
  for (const size of [1, 2, 3, 5, 8, 13, 64, 1000]) {
    assert.deepEqual(feedAll(protocol.createParser(), chunk(bytes, [size])), sent, `size ${size}`);
  }
});
