// The protocol-neutral "description" of a hub message used by the golden vectors
// (hub-core/tests/vectors/README.md). `describe` accepts both a message about to be written and one
// the official parser returned, and normalises the ways they differ (absent vs undefined vs null).
import { MessageType } from "@microsoft/signalr";
import { msgpackEncoder } from "./wire.mjs";

export function toBase64(bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

export function fromBase64(text) {
  return new Uint8Array(Buffer.from(text, "base64"));
}

/**
 * How one value travels inside a message: the JSON text for json, the base64 of the MessagePack
 * bytes for messagepack (same encoder settings as MessagePackHubProtocol).
 */
export function rawEncoding(value, protocol) {
  if (protocol === "json") {
    const text = JSON.stringify(value);
    if (text === undefined) throw new Error(`${String(value)} has no JSON encoding`);
    return text;
  }
  return toBase64(msgpackEncoder.encode(value));
}

function headersOf(message) {
  const headers = message.headers ?? {};
  for (const [key, value] of Object.entries(headers)) {
    if (typeof value !== "string") throw new Error(`header ${key} is not a string`);
  }
  return { ...headers };
}

// Both parsers leave a missing id out (msgpack: nil or "" id ⇒ no key); the description says null.
function invocationIdOf(message) {
  const id = message.invocationId ?? null;
  if (id !== null && typeof id !== "string") throw new Error(`invocationId ${JSON.stringify(id)} is not a string`);
  return id;
}

/** The README description of one message; keys appear in the README's order. */
export function describe(message, protocol) {
  const raw = (value) => rawEncoding(value, protocol);
  const { type } = message;
  switch (type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      return {
        type,
        headers: headersOf(message),
        invocationId: invocationIdOf(message),
        target: message.target,
        arguments: message.arguments.map(raw),
        streamIds: [...(message.streamIds ?? [])],
      };
    case MessageType.StreamItem:
      return { type, headers: headersOf(message), invocationId: invocationIdOf(message), item: raw(message.item) };
    case MessageType.Completion: {
      // The msgpack parser sets `result: undefined` (and `error: undefined`) for a kind-2 (void)
      // completion, the JSON parser leaves the key out; `result: null` is a real result in both.
      const description = { type, headers: headersOf(message), invocationId: invocationIdOf(message) };
      if (message.result !== undefined) description.result = raw(message.result);
      if (message.error != null) description.error = message.error;
      return description;
    }
    case MessageType.CancelInvocation:
      return { type, headers: headersOf(message), invocationId: invocationIdOf(message) };
    case MessageType.Ping:
      return { type };
    case MessageType.Close: {
      // The msgpack parser reports a nil error as `error: null` and a missing third element as
      // `allowReconnect: undefined`.
      const description = { type };
      if (message.error != null) description.error = message.error;
      description.allowReconnect = message.allowReconnect ?? false;
      return description;
    }
    case MessageType.Ack:
    case MessageType.Sequence:
      return { type, sequenceId: message.sequenceId };
    default:
      throw new Error(`unknown message type ${type}`);
  }
}
