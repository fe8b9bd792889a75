import type { TransferFormat } from "./protocol.js";
import type { Data, Transport, TransportContext } from "./transport.js";
/** The base of the HTTP transports (SSE and long polling): sends go out as ordered POSTs. */
export declare abstract class HttpTransport implements Transport {
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
