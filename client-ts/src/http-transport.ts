import { ignore } from "./errors.js";
import { httpFailure, request } from "./http-client.js";
import type { TransferFormat } from "./protocol.js";
import type { Data, Transport, TransportContext } from "./transport.js";

/** The base of the HTTP transports (SSE and long polling): sends go out as ordered POSTs. */
export abstract class HttpTransport implements Transport {
  declare onreceive?: (data: Data) => void;
  declare onclose?: (error?: Error) => void;
  protected declare cx: TransportContext;
  /** Set by connect(). */
  protected declare url: string;
  protected abort = new AbortController();
  #queue: Promise<void> = Promise.resolve();
  protected declare closed?: boolean;

  constructor(cx: TransportContext) {
    this.cx = cx;
  }

  abstract connect(url: string, format: TransferFormat): Promise<void>;

  send(data: Data): Promise<void> {
    const sent = this.#queue.then(async () => {
      const type = typeof data === "string" ? "text/plain;charset=UTF-8" : "application/octet-stream";
      const response = await request(this.cx, "POST", this.url, data, undefined, { "Content-Type": type });
      if (!response.ok) throw httpFailure(response, "Send");
    });
    this.#queue = sent.catch(ignore);
    return sent;
  }

  /** Closes the transport once; `error` is dropped when stop() began it (the abort is signalled). */
  protected close(error?: Error) {
    if (this.closed) return;
    this.closed = true;
    const stopped = this.abort.signal.aborted;
    this.abort.abort();
    this.onclose?.(stopped ? undefined : error);
  }

  async stop() {
    this.close();
  }
}
