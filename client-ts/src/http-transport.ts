import { httpFailure, request } from "./http-client.js";
import type { TransferFormat } from "./protocol.js";
import type { Data, Transport, TransportContext } from "./transport.js";

/** The base of the HTTP transports (SSE and long polling): sends go out as ordered POSTs. */
export abstract class HttpTransport implements Transport {
  onreceive?: (data: Data) => void;
  onclose?: (error?: Error) => void;
  protected url = "";
  protected format: TransferFormat = "Text";
  protected abort = new AbortController();
  private queue: Promise<void> = Promise.resolve();
  protected closed = false;

  constructor(protected cx: TransportContext) {}

  abstract connect(url: string, format: TransferFormat): Promise<void>;

  send(data: Data): Promise<void> {
    const sent = this.queue.then(async () => {
      const type = typeof data === "string" ? "text/plain;charset=UTF-8" : "application/octet-stream";
      const response = await request(this.cx, "POST", this.url, data, undefined, { "Content-Type": type });
      if (!response.ok) throw httpFailure(response, "Send");
    });
    this.queue = sent.catch(() => {});
    return sent;
  }

  protected close(error?: Error) {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.onclose?.(error);
  }

  async stop() {
    this.close();
  }
}
