import type { HubMessage, HubProtocol } from "./protocol.js";
/** The MessagePack hub protocol (`messagepack`, version 1, Binary), a separate entry point. */
export declare class MessagePackHubProtocol implements HubProtocol {
    readonly name = "messagepack";
    readonly version = 1;
    readonly transferFormat = "Binary";
    /**
     * Frames are a varint length + the body. Linear in the input: bytes of an unfinished frame wait
     * in a buffer that grows geometrically (each chunk is copied in once), a waiting frame's header
     * (at most 5 bytes) is re-read per chunk, and complete frames are decoded once.
     */
    createParser(): (chunk: string | Uint8Array) => HubMessage[];
    write(m: HubMessage): Uint8Array;
}
