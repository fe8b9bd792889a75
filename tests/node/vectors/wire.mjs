// Thin wrappers around the official @microsoft/signalr classes: write and read hub messages as
// bytes, and the handshake. Everything that touches the wire goes through the official code; the
// only exception is `readMessages` filling in what the *client* parsers never read (see there).
import { JsonHubProtocol, MessageType, NullLogger } from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
// Not exported from the package index; the versions are pinned, so the deep imports are stable.
import { HandshakeProtocol } from "@microsoft/signalr/dist/cjs/HandshakeProtocol.js";
import { TextMessageFormat } from "@microsoft/signalr/dist/cjs/TextMessageFormat.js";
import { BinaryMessageFormat } from "@microsoft/signalr-protocol-msgpack/dist/cjs/BinaryMessageFormat.js";
import { Decoder, Encoder } from "@msgpack/msgpack";

export const PROTOCOLS = ["json", "messagepack"];

const hubProtocols = { json: new JsonHubProtocol(), messagepack: new MessagePackHubProtocol() };

// `new MessagePackHubProtocol()` (no options) builds `new Encoder(undefined, …)` and
// `new Decoder(undefined, …)`, i.e. the library defaults; these are the same.
export const msgpackEncoder = new Encoder();
const msgpackDecoder = new Decoder();

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Copies a Uint8Array into a fresh ArrayBuffer (the msgpack parser rejects Buffers and views). */
export function toArrayBuffer(bytes) {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

export function concatBytes(chunks) {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

/** One framed message written by the official protocol class. */
export function writeMessage(protocol, message) {
  const written = hubProtocols[protocol].writeMessage(message);
  return protocol === "json" ? utf8.encode(written) : new Uint8Array(written);
}

/**
 * Frames one raw payload the way the protocol does, for bytes the official writer cannot produce:
 * for json a string (the JSON text, a record separator is appended), for messagepack an array
 * (encoded with the protocol's encoder settings and given the official varint length prefix).
 */
export function writeRawFrame(protocol, payload) {
  return protocol === "json"
    ? utf8.encode(TextMessageFormat.write(payload))
    : new Uint8Array(BinaryMessageFormat.write(msgpackEncoder.encode(payload)));
}

/** The official parser, run on the complete input. */
function parseOfficial(protocol, bytes) {
  const input = protocol === "json" ? strictUtf8.decode(bytes) : toArrayBuffer(bytes);
  return hubProtocols[protocol].parseMessages(input, NullLogger.instance);
}

/** Each frame decoded to plain data (a JSON object / a msgpack array), split by the official framing code. */
function decodeFrames(protocol, bytes) {
  if (protocol === "json") {
    return TextMessageFormat.parse(strictUtf8.decode(bytes)).map((text) => JSON.parse(text));
  }
  return BinaryMessageFormat.parse(toArrayBuffer(bytes)).map((frame) => msgpackDecoder.decode(frame));
}

/**
 * Parses `bytes` into JS hub messages.
 *
 * The official parsers are the JS *client's*: they silently drop StreamInvocation (4) and
 * CancelInvocation (5), which only ever travel client→server, and the MessagePack one also
 * ignores element 6 (streamIds) of an Invocation, always returning `streamIds: []`. The JSON one
 * keeps whatever JSON.parse produced. To still verify those client→server messages (the official
 * *writer* produces them), this reads them from the decoded frame, mirroring the layout the official
 * writer uses; every other message is exactly what the official parser returned for the whole input.
 */
export function readMessages(protocol, bytes) {
  const official = parseOfficial(protocol, bytes);
  const messages = [];
  let next = 0;
  for (const frame of decodeFrames(protocol, bytes)) {
    const type = protocol === "json" ? frame.type : frame[0];
    if (type === MessageType.StreamInvocation || type === MessageType.CancelInvocation) {
      messages.push(protocol === "json" ? readJsonServerBound(frame) : readMsgpackServerBound(frame));
      continue;
    }
    const message = official[next++];
    if (!message || message.type !== type) {
      throw new Error(`official parser returned ${JSON.stringify(message?.type)} for a frame of type ${type}`);
    }
    if (protocol === "messagepack" && type === MessageType.Invocation && frame.length >= 6) {
      message.streamIds = frame[5];
    }
    messages.push(message);
  }
  if (next !== official.length) throw new Error(`official parser returned ${official.length - next} extra message(s)`);
  return messages;
}

function assertId(value, what) {
  if (typeof value !== "string" || value === "") throw new Error(`Invalid invocationId for ${what}.`);
}

// The JSON parser would return the parsed object itself; check what it checks for Invocation.
function readJsonServerBound(message) {
  assertId(message.invocationId, `message type ${message.type}`);
  if (message.type === MessageType.StreamInvocation && (typeof message.target !== "string" || message.target === "")) {
    throw new Error("Invalid target for StreamInvocation message.");
  }
  return message;
}

// [4, headers, id, target, [args], [streamIds]?] and [5, headers, id]
function readMsgpackServerBound(frame) {
  const [type, headers, invocationId] = frame;
  if (frame.length < (type === MessageType.StreamInvocation ? 5 : 3)) throw new Error(`Invalid payload for message type ${type}.`);
  if (typeof headers !== "object" || headers === null) throw new Error("Invalid headers.");
  assertId(invocationId, `message type ${type}`);
  if (type === MessageType.CancelInvocation) return { type, headers, invocationId };
  return { type, headers, invocationId, target: frame[3], arguments: frame[4], streamIds: frame.length >= 6 ? frame[5] : [] };
}

const handshake = new HandshakeProtocol();

export function writeHandshakeRequest(protocol, version) {
  return utf8.encode(handshake.writeHandshakeRequest({ protocol, version }));
}

/** The request as a server reads it: one JSON record. */
export function readHandshakeRequest(bytes) {
  const records = TextMessageFormat.parse(strictUtf8.decode(bytes));
  if (records.length !== 1) throw new Error(`expected one handshake record, got ${records.length}`);
  return JSON.parse(records[0]);
}

/**
 * The official parseHandshakeResponse, fed both ways the client feeds it (a string on text
 * transports, an ArrayBuffer on binary ones). Returns the error text or null; throws if the two
 * disagree or anything follows the response.
 */
export function readHandshakeResponse(bytes) {
  const results = [strictUtf8.decode(bytes), toArrayBuffer(bytes)].map((input) => {
    const [remaining, response] = handshake.parseHandshakeResponse(input);
    if (remaining !== null) throw new Error("unexpected data after the handshake response");
    return response.error ?? null;
  });
  if (results[0] !== results[1]) throw new Error(`text and binary handshake parsing disagree: ${results}`);
  return results[0];
}
