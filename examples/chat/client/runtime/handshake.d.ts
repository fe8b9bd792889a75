import type { Data } from "./transport.js";
/**
 * The handshake request: the protocol's name and version (and a generated client's contract
 * hash, a field other servers ignore), JSON + ␞ whatever the protocol.
 */
export declare const handshakeRequest: (protocol: string, version: number, contract?: string) => string;
/**
 * Reads the handshake response (JSON + ␞) off the start of the server's stream, in chunks split
 * anywhere (each chunk is scanned once): `undefined` until it is complete, then what followed it
 * (hub messages, possibly empty); `accepted` gets the server's contract hash, if it sent one.
 * Throws HandshakeError for an error reply or a malformed one.
 */
export declare function createHandshakeReader(accepted: (contract?: string) => void): (data: Data) => Data | undefined;
