import { HttpTransport } from "./http-transport.js";
import type { TransferFormat } from "./protocol.js";
/** Long polling: GET polls (the first returns at once), POST sends, DELETE on stop. */
export declare class LongPollingTransport extends HttpTransport {
    #private;
    connect(url: string, format: TransferFormat): Promise<void>;
    stop(): Promise<void>;
}
