/**
 * The hub message types for this package's own code: a const enum, so that bundlers put the
 * numbers in place (MessageType, the exported table, has the same ones).
 */
export declare const enum T {
    Invocation = 1,
    StreamItem = 2,
    Completion = 3,
    StreamInvocation = 4,
    CancelInvocation = 5,
    Ping = 6,
    Close = 7,
    Ack = 8,
    Sequence = 9
}
/** Hub message types (§4 of the wire spec). */
export declare const MessageType: {
    readonly Invocation: 1;
    readonly StreamItem: 2;
    readonly Completion: 3;
    readonly StreamInvocation: 4;
    readonly CancelInvocation: 5;
    readonly Ping: 6;
    readonly Close: 7;
    readonly Ack: 8;
    readonly Sequence: 9;
};
/** A hub message; which fields are set depends on `type`. */
export interface HubMessage {
    type: number;
    invocationId?: string;
    target?: string;
    arguments?: unknown[];
    streamIds?: string[];
    item?: unknown;
    result?: unknown;
    error?: string;
    allowReconnect?: boolean;
    headers?: Record<string, string>;
    sequenceId?: number;
}
export type TransferFormat = "Text" | "Binary";
/** A hub protocol: its handshake name and version, and how it frames messages. */
export interface HubProtocol {
    readonly name: string;
    readonly version: number;
    readonly transferFormat: TransferFormat;
    /** A parser for one connection: feed it chunks in any split, it returns the whole messages. */
    createParser(): (chunk: string | Uint8Array) => HubMessage[];
    /** One framed message. */
    write(message: HubMessage): string | Uint8Array;
}
export declare const RS = "\u001E";
/**
 * Splits `␞`-terminated text records out of chunks that may be split anywhere, even inside
 * a multi-byte UTF-8 character (binary chunks are decoded as a stream). Linear in the input: each
 * chunk is decoded and scanned once; the pieces of an unfinished record are joined when its `␞` comes.
 */
export declare function createTextFramer(): (chunk: string | Uint8Array) => string[];
/**
 * Splits records ended by `separator` out of chunks split anywhere (see createTextFramer); the SSE
 * transport splits lines with it.
 */
export declare function createSplitter(separator: string | RegExp): (chunk: string | Uint8Array) => string[];
/** The JSON hub protocol (`json`, version 1, Text). */
export declare class JsonHubProtocol implements HubProtocol {
    readonly name = "json";
    readonly version = 1;
    readonly transferFormat = "Text";
    createParser(): (chunk: string | Uint8Array) => HubMessage[];
    write(message: HubMessage): string;
}
