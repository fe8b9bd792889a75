import { HandshakeError } from "./errors.js";
import { RS } from "./protocol.js";
import type { Data } from "./transport.js";

/**
 * The handshake request: the protocol's name and version (and a generated client's contract
 * hash, a field other servers ignore), JSON + ␞ whatever the protocol.
 */
export const handshakeRequest = (protocol: string, version: number, contract?: string) =>
  JSON.stringify({ protocol, version, contract }) + RS;

/**
 * Reads the handshake response (JSON + ␞) off the start of the server's stream, in chunks split
 * anywhere (each chunk is scanned once): `undefined` until it is complete, then what followed it
 * (hub messages, possibly empty); `accepted` gets the server's contract hash, if it sent one.
 * Throws HandshakeError for an error reply or a malformed one.
 */
export function createHandshakeReader(accepted: (contract?: string) => void): (data: Data) => Data | undefined {
  const decoder = new TextDecoder();
  let text = "";
  return (data) => {
    const end = typeof data === "string" ? data.indexOf(RS) : data.indexOf(0x1e);
    const head = end < 0 ? data : data.slice(0, end);
    text += typeof head === "string" ? head : decoder.decode(head, { stream: true });
    if (end < 0) return undefined;
    let reply: { error?: string; type?: number; contract?: string };
    try {
      reply = JSON.parse(text);
      if (reply.type) throw new Error("Expected a handshake response from the server.");
    } catch (error) {
      throw new HandshakeError((error as Error).message);
    }
    if (reply.error) throw new HandshakeError(`Server returned handshake error: ${reply.error}`);
    accepted(reply.contract);
    return data.slice(end + 1);
  };
}
