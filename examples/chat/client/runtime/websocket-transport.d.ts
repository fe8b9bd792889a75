import type { Data, Transport, TransportContext } from "./transport.js";
/**
 * WebSockets: the global `WebSocket` or an injected one (e.g. the `ws` package in Node). The access
 * token always goes as `?access_token=`; headers go only to non-browser implementations.
 */
export declare class WebSocketTransport implements Transport {
    #private;
    onreceive?: (data: Data) => void;
    onclose?: (error?: Error) => void;
    constructor(cx: TransportContext);
    connect(url: string): Promise<void>;
    send(data: Data): Promise<void>;
    stop(): Promise<void>;
}
