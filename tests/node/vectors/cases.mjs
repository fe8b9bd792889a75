// The hub-message cases behind official.json.
//
// Each case: { name, protocols, messages, frames? }. `messages` are hub messages exactly as the JS
// library handles them. Bytes come from the official writer, except where a case gives
// `frames[protocol]`: raw payloads for bytes the official writer cannot produce (its MessagePack
// Close is always `[7, nil]`, while ASP.NET writes `[7, error|nil, allowReconnect]`). Either way
// the generator checks that the official parser reads the bytes back as `messages`.
//
// JSON.stringify keeps key order, so the JSON bytes follow each object's key order: most cases put
// `type` first (as ASP.NET does), the `client-order` ones build objects the way the JS client does
// (`type` last).
import { MessageType } from "@microsoft/signalr";

const BOTH = ["json", "messagepack"];
const MSGPACK = ["messagepack"];
const JSON_ONLY = ["json"];

const hub = (name, messages, protocols = BOTH, frames) => ({ name, protocols, messages, ...(frames && { frames }) });

const invoke = (args, extra = {}) => ({ type: MessageType.Invocation, invocationId: "1", target: "Echo", arguments: args, ...extra });

// About twenty members, PascalCase like a .NET type, mixing every JSON value kind.
const bigObject = {
  Id: 42, Name: "Widget", Price: 19.99, InStock: true, Discontinued: false, Notes: null,
  Tags: ["a", "b", "c"], Dimensions: { Width: 1.5, Height: 2, Depth: 0.25, Unit: "cm" },
  Count: 0, Negative: -7, Big: 2 ** 40, Ratio: 0.1, Empty: "", EmptyList: [], EmptyObject: {},
  Unicode: "Grüße 🌍", Nested: { Level: 1, Inner: { Level: 2, Inner: { Level: 3, Leaf: [null, true] } } },
  Created: "2024-01-02T03:04:05.678Z", Code: "X-1", Sequence: [1, 2, 3, 4, 5],
};

const integers = [
  0, 1, -1, 127, 128, 255, 256, 65535, 65536, -32, -33, -128, -129, -32768, -32769,
  2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, -(2 ** 31), -(2 ** 31) - 1, 2 ** 40, -(2 ** 40),
  Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER,
];

// Integers past 2^53 are not "safe": the msgpack encoder writes them as float64, JSON as e.g. 18446744073709552000.
const unsafeIntegers = [2 ** 53, 2 ** 64, -(2 ** 63)];

const floats = [0.5, -1.5, 0.1, 3.141592653589793, 1e-7, 1e21, 1.7976931348623157e308, 5e-324, -0];

// Dates: whole seconds in 1970..2106 → timestamp 32; milliseconds, or seconds up to 2^34 → 64;
// before 1970 or from 2514 on → 96.
const timestamp32 = [new Date(0), new Date(Date.UTC(2024, 0, 2, 3, 4, 5))];
const timestamp64 = [new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)), new Date(Date.UTC(2200, 0, 1))];
const timestamp96 = [new Date(Date.UTC(1969, 6, 20, 20, 17, 40)), new Date(-1), new Date(Date.UTC(2600, 0, 1, 0, 0, 0, 1))];

const bytes = (n) => Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);

export const cases = [
  // 1 Invocation
  hub("invocation", [invoke(["hi"])]),
  hub("invocation-client-order", [{ target: "Echo", arguments: ["hi"], invocationId: "0", type: MessageType.Invocation }]),
  hub("invocation-non-blocking", [{ type: MessageType.Invocation, target: "ReceiveMessage", arguments: ["user", "hello"] }]),
  hub("invocation-no-arguments", [invoke([])]),
  hub("invocation-headers", [invoke(["hi"], { headers: { "x-trace": "abc123", Authorization: "Bearer t0k3n" } })]),
  hub("invocation-empty-headers", [invoke(["hi"], { headers: {} })]),
  hub("invocation-unicode-headers", [invoke([1], { headers: { "x-lang": "日本語", "x-emoji": "🎉👍🏽", "ключ": "значение" } })]),
  hub("invocation-stream-ids", [{ target: "Sum", arguments: [], invocationId: "0", streamIds: ["1"], type: MessageType.Invocation }]),
  hub("invocation-stream-ids-with-arguments", [invoke([5, "x"], { target: "Upload", streamIds: ["2", "3"] })]),
  hub("invocation-empty-stream-ids", [invoke(["a"], { streamIds: [] })]),
  hub("invocation-non-blocking-stream-ids", [{ type: MessageType.Invocation, target: "Upload", arguments: [], streamIds: ["0"] }]),
  hub("invocation-everything", [invoke(["a", 1], { headers: { h: "v" }, invocationId: "17", target: "Do_Thing2", streamIds: ["18"] })]),

  // Argument shapes (all as Echo invocations)
  hub("args-empty-string", [invoke([""])]),
  hub("args-unicode", [invoke(["héllo wörld", "日本語テキスト", "🎉👍🏽👨‍👩‍👧", "Ω≈ç√∫", "𝄞"])]),
  hub("args-json-escapes", [invoke(["quote \" backslash \\ slash / end", "\"\\\"", "{\"json\":[1]}"])]),
  hub("args-control-chars", [invoke(["line\nfeed", "\r\t\b\f", "\u0000\u0001\u001f\u007f", "\u001e record separator"])]),
  hub("args-line-separators", [invoke(["\u2028", "a\u2029b", "\u0085\u00a0\ufeff"])]),
  hub("args-long-string", [invoke(["x".repeat(300), "é".repeat(40)])]),
  hub("args-integers", [invoke(integers)]),
  hub("args-unsafe-integers", [invoke(unsafeIntegers)]),
  hub("args-floats", [invoke(floats)]),
  hub("args-non-finite", [invoke([Infinity, -Infinity, NaN])], MSGPACK),
  hub("args-booleans-null", [invoke([true, false, null])]),
  hub("args-nested-object", [invoke([bigObject])]),
  hub("args-arrays", [invoke([[], [1, 2, 3], [[1], [2, [3]]], ["a", 1, null, true, {}], Array.from({ length: 20 }, (_, i) => i)])]),
  hub("args-empty-containers", [invoke([{}, [], "", 0])]),
  hub("args-iso-date-string", [invoke(["2024-01-02T03:04:05.678Z", "1969-07-20T20:17:40Z"])]),
  hub("args-many", [invoke(Array.from({ length: 20 }, (_, i) => (i % 2 ? `s${i}` : i)))]),
  hub("args-binary", [invoke([new Uint8Array(0), new Uint8Array([0, 1, 2, 255]), bytes(300)])], MSGPACK),
  hub("args-timestamp32", [invoke(timestamp32)], MSGPACK),
  hub("args-timestamp64", [invoke(timestamp64)], MSGPACK),
  hub("args-timestamp96", [invoke(timestamp96)], MSGPACK),
  hub("args-binary-and-dates-nested", [invoke([{ Data: bytes(4), When: timestamp64[0], List: [new Date(0), new Uint8Array(0)] }])], MSGPACK),
  // A frame over 16 KiB: three-byte varint length prefix.
  hub("args-huge-string", [invoke(["y".repeat(17000)])], MSGPACK),

  // 2 StreamItem
  hub("stream-item", [{ type: MessageType.StreamItem, invocationId: "1", item: 42 }]),
  hub("stream-item-client-order", [{ invocationId: "1", item: 5, type: MessageType.StreamItem }]),
  hub("stream-item-null", [{ type: MessageType.StreamItem, invocationId: "1", item: null }]),
  hub("stream-item-object", [{ type: MessageType.StreamItem, invocationId: "7", item: bigObject }]),
  hub("stream-item-headers", [{ type: MessageType.StreamItem, headers: { k: "v", "ü": "ß" }, invocationId: "1", item: "x" }]),
  hub("stream-item-binary", [{ type: MessageType.StreamItem, invocationId: "1", item: bytes(16) }], MSGPACK),

  // 3 Completion
  hub("completion-result", [{ type: MessageType.Completion, invocationId: "0", result: 42 }]),
  hub("completion-result-null", [{ type: MessageType.Completion, invocationId: "0", result: null }]),
  hub("completion-no-result", [{ type: MessageType.Completion, invocationId: "1" }]),
  hub("completion-no-result-client-order", [{ invocationId: "1", type: MessageType.Completion }]),
  hub("completion-result-false", [{ type: MessageType.Completion, invocationId: "0", result: false }]),
  hub("completion-result-zero", [{ type: MessageType.Completion, invocationId: "0", result: 0 }]),
  hub("completion-result-empty-string", [{ type: MessageType.Completion, invocationId: "0", result: "" }]),
  hub("completion-result-object", [{ type: MessageType.Completion, invocationId: "0", result: bigObject }]),
  hub("completion-error", [{ type: MessageType.Completion, invocationId: "0", error: "Error: bad" }]),
  hub("completion-error-client-order", [{ error: "boom", invocationId: "1", type: MessageType.Completion }]),
  hub("completion-error-unicode", [{ type: MessageType.Completion, invocationId: "0", error: "Échec: \"quoted\" 💥\n" }]),
  hub("completion-headers", [{ type: MessageType.Completion, headers: { a: "1", b: "2" }, invocationId: "0", result: "ok" }]),
  hub("completion-result-binary", [{ type: MessageType.Completion, invocationId: "0", result: bytes(3) }], MSGPACK),
  hub("completion-result-date", [{ type: MessageType.Completion, invocationId: "0", result: timestamp96[0] }], MSGPACK),

  // 4 StreamInvocation
  hub("stream-invocation", [{ type: MessageType.StreamInvocation, invocationId: "0", target: "Counter", arguments: [10, 500] }]),
  hub("stream-invocation-stream-ids", [{ type: MessageType.StreamInvocation, invocationId: "0", target: "Echo", arguments: [], streamIds: ["1"] }]),
  hub("stream-invocation-headers", [{ type: MessageType.StreamInvocation, headers: { x: "y" }, invocationId: "3", target: "Counter", arguments: [1] }]),

  // 5 CancelInvocation
  hub("cancel-invocation", [{ type: MessageType.CancelInvocation, invocationId: "0" }]),
  hub("cancel-invocation-headers", [{ type: MessageType.CancelInvocation, headers: { reason: "user" }, invocationId: "12" }]),

  // 6 Ping
  hub("ping", [{ type: MessageType.Ping }]),

  // 7 Close
  hub("close", [{ type: MessageType.Close }]),
  hub("close-allow-reconnect", [{ type: MessageType.Close, allowReconnect: true }], BOTH, { messagepack: [[MessageType.Close, null, true]] }),
  hub("close-error", [{ type: MessageType.Close, error: "Connection closed with an error." }], BOTH,
    { messagepack: [[MessageType.Close, "Connection closed with an error.", false]] }),
  hub("close-error-allow-reconnect", [{ type: MessageType.Close, error: "Connection closed with an error.", allowReconnect: true }], BOTH,
    { messagepack: [[MessageType.Close, "Connection closed with an error.", true]] }),
  hub("close-aspnet-no-error", [{ type: MessageType.Close, allowReconnect: false }], MSGPACK, { messagepack: [[MessageType.Close, null, false]] }),
  hub("close-explicit-allow-reconnect-false", [{ type: MessageType.Close, allowReconnect: false }], JSON_ONLY),

  // 8 Ack, 9 Sequence
  hub("ack", [{ type: MessageType.Ack, sequenceId: 1 }]),
  hub("ack-uint16", [{ type: MessageType.Ack, sequenceId: 300 }]),
  hub("ack-large", [{ type: MessageType.Ack, sequenceId: 2 ** 40 }]),
  hub("sequence", [{ type: MessageType.Sequence, sequenceId: 1 }]),
  hub("sequence-large", [{ type: MessageType.Sequence, sequenceId: 2 ** 40 }]),

  // Several messages back to back
  hub("multi-invocation-ping-completion", [
    invoke(["hi"], { invocationId: "0" }),
    { type: MessageType.Ping },
    { type: MessageType.Completion, invocationId: "0", result: "hi" },
  ]),
  hub("multi-upload-stream", [
    { target: "Sum", arguments: [], invocationId: "0", streamIds: ["1"], type: MessageType.Invocation },
    { invocationId: "1", item: 5, type: MessageType.StreamItem },
    { invocationId: "1", item: 6, type: MessageType.StreamItem },
    { invocationId: "1", type: MessageType.Completion },
  ]),
  hub("multi-server-stream", [
    { type: MessageType.StreamItem, invocationId: "1", item: 0 },
    { type: MessageType.StreamItem, invocationId: "1", item: 1 },
    { type: MessageType.StreamItem, invocationId: "1", item: 2 },
    { type: MessageType.Completion, invocationId: "1" },
  ]),
  hub("multi-stream-cancel", [
    { type: MessageType.StreamInvocation, invocationId: "0", target: "Counter", arguments: [10, 500] },
    { type: MessageType.CancelInvocation, invocationId: "0" },
    { type: MessageType.Ping },
  ]),
  hub("multi-stateful", [
    { type: MessageType.Sequence, sequenceId: 1 },
    { type: MessageType.Ack, sequenceId: 5 },
    { type: MessageType.Invocation, target: "ReceiveMessage", arguments: ["a"] },
  ]),
  hub("multi-completion-close", [
    { type: MessageType.Completion, invocationId: "2", error: "Invocation canceled by the server." },
    { type: MessageType.Close, error: "Server shutting down.", allowReconnect: true },
  ], BOTH, { messagepack: [
    [MessageType.Completion, {}, "2", 1, "Invocation canceled by the server."],
    [MessageType.Close, "Server shutting down.", true],
  ] }),
];

export const handshakeRequests = [
  { name: "json-v1", protocol: "json", version: 1 },
  { name: "messagepack-v1", protocol: "messagepack", version: 1 },
  { name: "json-v2-stateful", protocol: "json", version: 2 },
  { name: "messagepack-v2-stateful", protocol: "messagepack", version: 2 },
];

// The official parser decides the expected `error`. ASCII only: the client decodes a binary-mode
// handshake reply as Latin-1.
export const handshakeResponses = [
  { name: "success", text: "{}" },
  { name: "error-unknown-protocol", text: JSON.stringify({ error: "The protocol 'xml' is not supported." }) },
  { name: "error-version", text: JSON.stringify({ error: "The server does not support version 3 of the 'json' protocol." }) },
  { name: "error-transfer-format", text: JSON.stringify({ error: "Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format." }) },
  { name: "error-canceled", text: JSON.stringify({ error: "Handshake was canceled." }) },
  { name: "error-unexpected", text: JSON.stringify({ error: "An unexpected error occurred during connection handshake." }) },
];
