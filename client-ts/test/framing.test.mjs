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

// Linear framing: a big message cut into 1-byte chunks, and many small messages in small chunks.
// Besides the results, the work is counted (bytes copied, characters scanned): it must stay
// proportional to the input, where an accumulate-and-rescan framer does ~n²/2.

/** Runs `body`, counting the bytes Uint8Array `set`, `slice` and `copyWithin` move. */
function countCopiedBytes(body) {
  const own = Uint8Array.prototype;
  const typed = Object.getPrototypeOf(own);
  let bytes = 0;
  own.set = function (source, offset) {
    bytes += source.length;
    return typed.set.call(this, source, offset);
  };
  own.slice = function (...args) {
    const copy = typed.slice.apply(this, args);
    bytes += copy.length;
    return copy;
  };
  own.copyWithin = function (target, start, end = this.length) {
    bytes += Math.max(0, Math.min(end, this.length) - start);
    return typed.copyWithin.call(this, target, start, end);
  };
  try {
    body();
  } finally {
    delete own.set;
    delete own.slice;
    delete own.copyWithin;
  }
  return bytes;
}

/** Runs `body`, counting the characters String `split` and `indexOf` scan. */
function countScannedChars(body) {
  const { split, indexOf } = String.prototype;
  let chars = 0;
  String.prototype.split = function (...args) {
    chars += this.length;
    return split.apply(this, args);
  };
  String.prototype.indexOf = function (...args) {
    chars += this.length;
    return indexOf.apply(this, args);
  };
  try {
    body();
  } finally {
    String.prototype.split = split;
    String.prototype.indexOf = indexOf;
  }
  return chars;
}

const concat = (arrays) => {
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  arrays.reduce((offset, a) => (out.set(a, offset), offset + a.length), 0);
  return out;
};

test("msgpack: a 300 kB message in 1-byte chunks; decoded binaries stay intact; linear copying", () => {
  const protocol = new MessagePackHubProtocol();
  const bytesItem = Uint8Array.from({ length: 50_000 }, (_, i) => (i * 7) & 0xff);
  const sent = [
    { type: 2, invocationId: "1", item: "é☃😀".repeat(25_000) }, // 225 000 bytes of UTF-8
    { type: 2, invocationId: "2", item: bytesItem },
    { type: 2, invocationId: "3", item: bytesItem.map((b) => 255 - b) },
    { type: 3, invocationId: "4", result: 1 },
  ];
  const wire = concat(sent.map((m) => protocol.write(m)));
  const parts = chunk(wire, [1]);
  let got;
  const copied = countCopiedBytes(() => (got = feedAll(protocol.createParser(), parts)));
  assert.deepEqual(got, sent); // the first binary was not overwritten by the bytes after it
  assert.ok(copied <= 5 * wire.length, `${copied} bytes copied for ${wire.length} bytes of input`);
});

test("msgpack: 100 000 small messages in 7-byte chunks; linear copying", () => {
  const protocol = new MessagePackHubProtocol();
  const sent = Array.from({ length: 100_000 }, (_, i) => ({ type: 2, invocationId: String(i % 1000), item: i }));
  const wire = concat(sent.map((m) => protocol.write(m)));
  const parts = chunk(wire, [7]);
  let got;
  const copied = countCopiedBytes(() => (got = feedAll(protocol.createParser(), parts)));
  assert.equal(got.length, sent.length);
  assert.deepEqual(got, sent);
  assert.ok(copied <= 5 * wire.length, `${copied} bytes copied for ${wire.length} bytes of input`);
});

test("json: a 300 kB message in 1-byte chunks (bytes and strings); linear scanning", () => {
  const protocol = new JsonHubProtocol();
  const sent = [
    { type: 1, target: "Receive", arguments: ["é☃😀".repeat(25_000), "x".repeat(75_000)] },
    { type: 6 },
  ];
  const text = sent.map((m) => protocol.write(m)).join("");
  const bytes = new TextEncoder().encode(text);
  for (const parts of [chunk(bytes, [1]), [...text]]) {
    let got;
    const scanned = countScannedChars(() => (got = feedAll(protocol.createParser(), parts)));
    assert.deepEqual(got, sent);
    assert.ok(scanned <= 2 * text.length, `${scanned} characters scanned for ${text.length}`);
  }
});

test("json: 100 000 small messages in 5-byte chunks", () => {
  const protocol = new JsonHubProtocol();
  const sent = Array.from({ length: 100_000 }, (_, i) => ({ type: 2, invocationId: String(i % 1000), item: i }));
  const bytes = new TextEncoder().encode(sent.map((m) => protocol.write(m)).join(""));
  let got;
  const scanned = countScannedChars(() => (got = feedAll(protocol.createParser(), chunk(bytes, [5]))));
  assert.deepEqual(got, sent);
  assert.ok(scanned <= 2 * bytes.length, `${scanned} characters scanned for ${bytes.length}`);
});

test("server-sent events: handshake and a 120 kB message in 1-byte chunks, CRLF lines", async () => {
  const big = "é☃😀".repeat(10_000) + "x".repeat(30_000);
  const sse = (record) => `data: ${record}\r\n\r\n`;
  const stream = new TextEncoder().encode(
    sse("{}\x1e") + ": comment\r\n\r\n" + sse(JSON.stringify({ type: 1, target: "Receive", arguments: [big, 1] }) + "\x1e") +
      sse('{"type":6}\x1e'),
  );
  const fakeFetch = async (url, init) => {
    if (String(url).includes("/negotiate")) {
      const transports = [{ transport: "ServerSentEvents", transferFormats: ["Text"] }];
      return new Response(JSON.stringify({ negotiateVersion: 1, connectionId: "c", connectionToken: "t", availableTransports: transports }));
    }
    if (init.method !== "GET") return new Response(null, { status: 200 });
    let at = 0;
    const body = new ReadableStream({
      start(controller) {
        init.signal?.addEventListener("abort", () => controller.error(new DOMException("aborted", "AbortError")));
      },
      pull(controller) {
        if (at < stream.length) controller.enqueue(stream.slice(at, ++at));
      },
    });
    return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
  };
  const { HubConnectionBuilder, HttpTransportType } = await import("../dist/index.js");
  const hub = new HubConnectionBuilder().withUrl("http://sse.test/hub", { fetch: fakeFetch, transport: HttpTransportType.ServerSentEvents }).build();
  const received = new Promise((resolve) => hub.on("receive", (...args) => resolve(args)));
  await hub.start();
  try {
    assert.equal(hub.transport, "ServerSentEvents");
    assert.deepEqual(await received, [big, 1]);
  } finally {
    await hub.stop();
  }
});
