import { HttpTransport } from "./http-transport.js";
import { type TransferFormat } from "./protocol.js";
/** Server-Sent Events read with `fetch` (works in browsers and Node ≥ 18), sends as POSTs. */
export declare class ServerSentEventsTransport extends HttpTransport {
    #private;
    connect(url: string, format: TransferFormat): Promise<void>;
}
