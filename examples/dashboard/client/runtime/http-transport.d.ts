import type { TransferFormat } from "./protocol.js";
import type { Data, Transport, TransportContext } from "./transport.js";
/** The base of the HTTP transports (SSE and long polling): sends go out as ordered POSTs. */
export declare abstract class HttpTransport implements Transport {
    #private;
    onreceive?: (data: Data) => void;
    onclose?: (error?: Error) => void;
    protected cx: TransportContext;
    /** Set by connect(). */
    protected url: string;
    protected abort: AbortController;
    protected closed?: boolean;
    constructor(cx: TransportContext);
    abstract connect(url: string, format: TransferFormat): Promise<void>;
    send(data: Data): Promise<void>;
    /** Closes the transport once; `error` is dropped when stop() began it (the abort is signalled). */
    protected close(error?: Error): void;
    stop(): Promise<void>;
}
