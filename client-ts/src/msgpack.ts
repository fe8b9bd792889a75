import { decode, encode } from "@msgpack/msgpack";
import type { HubMessage, HubProtocol } from "./protocol.js";

/** The MessagePack hub protocol (`messagepack`, version 1, Binary), a separate entry point. */
export class MessagePackHubProtocol implements HubProtocol {
  readonly name = "messagepack";
  readonly version = 1;
  readonly transferFormat = "Binary";

  /**
   * Frames are a varint length + the body. Linear in the input: bytes of an unfinished frame wait
   * in a buffer that grows geometrically (each chunk is copied in once), a waiting frame's header
   * (at most 5 bytes) is re-read per chunk, and complete frames are decoded once.
   */
  createParser() {
    let buffer = new Uint8Array(0);
    let buffered = 0; // buffer[0, buffered) is the start of the next frame
    return (chunk: string | Uint8Array): HubMessage[] => {
      if (typeof chunk === "string") throw new Error("MessagePack needs binary data.");
      let data = chunk;
      let end = chunk.length;
      if (buffered) {
        if (buffered + end > buffer.length) {
          const grown = new Uint8Array(Math.max(2 * buffer.length, buffered + end));
          grown.set(buffer.subarray(0, buffered));
          buffer = grown;
        }
        buffer.set(chunk, buffered);
        data = buffer;
        end = buffered += chunk.length;
      }
      const messages: HubMessage[] = [];
      let offset = 0;
      for (;;) {
        // varint length: little-endian base-128, at most 5 bytes
        let length = 0;
        let i = 0;
        let byte = 0x80;
        while (byte & 0x80 && offset + i < end) {
          byte = data[offset + i];
          length += (byte & 0x7f) * 2 ** (7 * i);
          if (++i > 5 || length > 0x7fffffff) throw new Error("Messages bigger than 2GB are not supported.");
        }
        const start = offset + i;
        if (byte & 0x80 || start + length > end) break;
        // Decoded binaries are views of their input: the reused buffer is decoded from a copy.
        const body = data === buffer ? data.slice(start, start + length) : data.subarray(start, start + length);
        const message = toMessage(decode(body) as any[]);
        if (message) messages.push(message);
        offset = start + length;
      }
      // Keep the unfinished frame (moved to the buffer's start: each byte at most once per frame).
      if (data === buffer) {
        if (offset) buffer.copyWithin(0, offset, end);
      } else if (offset < end) {
        if (buffer.length < end - offset) buffer = new Uint8Array(end - offset);
        buffer.set(data.subarray(offset, end));
      }
      buffered = end - offset;
      if (!buffered && buffer.length > 65536) buffer = new Uint8Array(0); // don't hold on to a big one
      return messages;
    };
  }

  write(m: HubMessage): Uint8Array {
    const h = m.headers ?? {};
    let array: unknown[];
    switch (m.type) {
      case 1:
      case 4:
        array = [m.type, h, m.invocationId ?? null, m.target, m.arguments, m.streamIds ?? []];
        break;
      case 2:
        array = [2, h, m.invocationId, m.item];
        break;
      case 3:
        array =
          m.error != null
            ? [3, h, m.invocationId, 1, m.error]
            : "result" in m
              ? [3, h, m.invocationId, 3, m.result]
              : [3, h, m.invocationId, 2];
        break;
      case 5:
        array = [5, h, m.invocationId];
        break;
      case 7:
        array = [7, m.error ?? null];
        break;
      case 8:
      case 9:
        array = [m.type, m.sequenceId];
        break;
      default:
        array = [m.type];
    }
    const body = encode(array);
    const prefix: number[] = [];
    let n = body.length;
    do {
      prefix.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
      n >>>= 7;
    } while (n);
    const out = new Uint8Array(prefix.length + body.length);
    out.set(prefix);
    out.set(body, prefix.length);
    return out;
  }
}

function toMessage(a: any[]): HubMessage | undefined {
  const headers = a[1] && Object.keys(a[1]).length ? { headers: a[1] } : {};
  switch (a[0]) {
    case 1:
    case 4:
      return {
        type: a[0],
        ...headers,
        invocationId: a[2] || undefined,
        target: a[3],
        arguments: a[4],
        ...(a[5]?.length ? { streamIds: a[5] } : {}),
      };
    case 2:
      return { type: 2, ...headers, invocationId: a[2], item: a[3] };
    case 3:
      return {
        type: 3,
        ...headers,
        invocationId: a[2],
        ...(a[3] === 1 ? { error: a[4] } : a[3] === 3 ? { result: a[4] } : {}),
      };
    case 5:
      return { type: 5, ...headers, invocationId: a[2] };
    case 6:
      return { type: 6 };
    case 7:
      return { type: 7, error: a[1] ?? undefined, allowReconnect: !!a[2] };
    case 8:
    case 9:
      return { type: a[0], sequenceId: a[1] };
  }
  return undefined;
}
