import type { Data } from "./transport.js";
/** The handshake request: the protocol's name and version, JSON + ␞ whatever the protocol. */
export declare const handshakeRequest: (protocol: string, version: number) => string;
/**
 * Reads the handshake response (JSON + ␞) off the start of the server's stream, in chunks split
 * anywhere (each chunk is scanned once): `undefined` until it is complete, then what followed it
 * (hub messages, possibly empty). Throws HandshakeError for an error reply or a malformed one.
 */
export declare function createHandshakeReader(): (data: Data) => Data | undefined;
