import type { HubMessage, HubProtocol } from "./protocol.js";
/** The MessagePack hub protocol (`messagepack`, version 1, Binary), a separate entry point. */
export declare class MessagePackHubProtocol implements HubProtocol {
    readonly name = "messagepack";
    readonly version = 1;
    readonly transferFormat = "Binary";
    createParser(): (chunk: string | Uint8Array) => HubMessage[];
    write(m: HubMessage): Uint8Array;
}
