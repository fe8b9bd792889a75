import type { TransferFormat } from "./protocol.js";
/** Transport flags, as in `@microsoft/signalr` (combine with `|`). */
export declare const HttpTransportType: {
    readonly None: 0;
    readonly WebSockets: 1;
    readonly ServerSentEvents: 2;
    readonly LongPolling: 4;
};
export type Data = string | Uint8Array;
/** What transports need from the connection options. */
export interface TransportContext {
    fetch: typeof fetch;
    WebSocket?: any;
    headers: () => Promise<Record<string, string>>;
    token: () => Promise<string | undefined>;
    /** The timeout of negotiate, POST and DELETE requests (ms; 0 = none). */
    timeout: number;
}
export interface Transport {
    connect(url: string, format: TransferFormat): Promise<void>;
    send(data: Data): Promise<void>;
    stop(): Promise<void>;
    onreceive?: (data: Data) => void;
    onclose?: (error?: Error) => void;
}
/**
 * An HTTP request with the SignalR headers; rejects on network errors only, and with
 * TimeoutError when no response came within `timeout` ms (default: the context's; 0 = none).
 */
export declare function request(cx: TransportContext, method: string, url: string, body?: Data, signal?: AbortSignal, extra?: Record<string, string>, timeout?: number): Promise<Response>;
/** Shared by SSE and long polling: sends go out as ordered POSTs. */
declare abstract class HttpTransport implements Transport {
    protected cx: TransportContext;
    onreceive?: (data: Data) => void;
    onclose?: (error?: Error) => void;
    protected url: string;
    protected format: TransferFormat;
    protected abort: AbortController;
    private queue;
    protected closed: boolean;
    constructor(cx: TransportContext);
    abstract connect(url: string, format: TransferFormat): Promise<void>;
    send(data: Data): Promise<void>;
    protected close(error?: Error): void;
    stop(): Promise<void>;
}
/** Server-Sent Events read with `fetch` (works in browsers and Node ≥ 18), sends as POSTs. */
export declare class ServerSentEventsTransport extends HttpTransport {
    connect(url: string, format: TransferFormat): Promise<void>;
    private read;
}
/** Long polling: GET polls (the first returns at once), POST sends, DELETE on stop. */
export declare class LongPollingTransport extends HttpTransport {
    connect(url: string, format: TransferFormat): Promise<void>;
    private poll;
    private loop;
    stop(): Promise<void>;
}
/** WebSockets: the global `WebSocket` or an injected one (e.g. the `ws` package in Node). */
export declare class WebSocketTransport implements Transport {
    private cx;
    onreceive?: (data: Data) => void;
    onclose?: (error?: Error) => void;
    private socket?;
    constructor(cx: TransportContext);
    connect(url: string): Promise<void>;
    send(data: Data): Promise<void>;
    stop(): Promise<void>;
}
export {};
