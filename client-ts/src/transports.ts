import { TimeoutError, TransportError } from "./errors.js";
import type { TransferFormat } from "./protocol.js";

/** Transport flags, as in `@microsoft/signalr` (combine with `|`). */
export const HttpTransportType = {
  None: 0,
  WebSockets: 1,
  ServerSentEvents: 2,
  LongPolling: 4,
} as const;

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

const withQuery = (url: string, query: string) => url + (url.includes("?") ? "&" : "?") + query;

async function tokenUrl(url: string, cx: TransportContext) {
  const token = await cx.token();
  return token ? withQuery(url, "access_token=" + encodeURIComponent(token)) : url;
}

/**
 * An HTTP request with the SignalR headers; rejects on network errors only, and with
 * TimeoutError when no response came within `timeout` ms (default: the context's; 0 = none).
 */
export async function request(
  cx: TransportContext,
  method: string,
  url: string,
  body?: Data,
  signal?: AbortSignal,
  extra?: Record<string, string>,
  timeout = cx.timeout,
): Promise<Response> {
  const controller = timeout ? new AbortController() : undefined;
  let timedOut = false;
  const timer = timeout && setTimeout(() => ((timedOut = true), controller!.abort()), timeout);
  const forward = () => controller?.abort();
  if (signal?.aborted) forward();
  signal?.addEventListener("abort", forward);
  try {
    return await cx.fetch(url, {
      method,
      body: body as BodyInit | undefined,
      headers: { "X-Requested-With": "XMLHttpRequest", ...(await cx.headers()), ...extra },
      credentials: "include",
      signal: controller?.signal ?? signal,
    });
  } catch (error) {
    throw timedOut ? new TimeoutError("A timeout occurred.") : error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", forward);
  }
}

function httpFailure(response: Response, what: string) {
  return new TransportError(`${what} failed: ${response.status} ${response.statusText}`);
}

/** Shared by SSE and long polling: sends go out as ordered POSTs. */
abstract class HttpTransport implements Transport {
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

/** Server-Sent Events read with `fetch` (works in browsers and Node ≥ 18), sends as POSTs. */
export class ServerSentEventsTransport extends HttpTransport {
  async connect(url: string, format: TransferFormat) {
    if (format !== "Text") throw new TransportError("Server-Sent Events support only the Text format.");
    this.url = url;
    const response = await request(this.cx, "GET", url, undefined, this.abort.signal, {
      Accept: "text/event-stream",
    }, 0);
    if (!response.ok || !response.body) throw httpFailure(response, "Server-Sent Events");
    this.read(response.body.getReader());
  }

  private async read(reader: ReadableStreamDefaultReader<Uint8Array>) {
    const decoder = new TextDecoder();
    let buffer = "";
    let data: string[] = [];
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        // A "\r" at the very end may be the first half of "\r\n": it waits for the next chunk.
        const lines = buffer.split(/\r\n|\r(?!$)|\n/);
        buffer = lines.pop()!;
        for (const line of lines) {
          if (line === "") {
            if (data.length) this.onreceive?.(data.join("\n"));
            data = [];
          } else if (line.startsWith("data:")) {
            data.push(line.slice(line[5] === " " ? 6 : 5));
          }
        }
      }
      this.close();
    } catch (error) {
      this.close(this.abort.signal.aborted ? undefined : (error as Error));
    }
  }
}

/** Long polling: GET polls (the first returns at once), POST sends, DELETE on stop. */
export class LongPollingTransport extends HttpTransport {
  async connect(url: string, format: TransferFormat) {
    this.url = url;
    this.format = format;
    const first = await this.poll();
    if (first.status !== 200) throw httpFailure(first, "Long polling");
    this.loop();
  }

  private poll() {
    const extra: Record<string, string> = this.format === "Binary" ? { Accept: "application/octet-stream" } : {};
    // Polls have their own 100 s timeout (the server answers within 90 s); one that times out is retried.
    return request(this.cx, "GET", withQuery(this.url, "_=" + Date.now()), undefined, this.abort.signal, extra, 100_000);
  }

  private async loop() {
    try {
      while (!this.closed) {
        const response = await this.poll().catch((error) => {
          if (error instanceof TimeoutError) return;
          throw error;
        });
        if (!response) continue;
        if (response.status === 204) return this.close();
        if (response.status !== 200) return this.close(httpFailure(response, "Long polling"));
        const body =
          this.format === "Binary" ? new Uint8Array(await response.arrayBuffer()) : await response.text();
        if (body.length) this.onreceive?.(body);
      }
    } catch (error) {
      this.close(this.abort.signal.aborted ? undefined : (error as Error));
    }
  }

  async stop() {
    if (this.closed) return;
    this.abort.abort();
    try {
      await request(this.cx, "DELETE", this.url);
    } catch {
      // The server may be gone already; JS ignores DELETE errors too.
    }
    this.close();
  }
}

/** WebSockets: the global `WebSocket` or an injected one (e.g. the `ws` package in Node). */
export class WebSocketTransport implements Transport {
  onreceive?: (data: Data) => void;
  onclose?: (error?: Error) => void;
  private socket?: WebSocket;

  constructor(private cx: TransportContext) {}

  async connect(url: string) {
    const Socket = this.cx.WebSocket ?? globalThis.WebSocket;
    if (!Socket) throw new TransportError("No WebSocket implementation: pass one in the options.");
    const address = (await tokenUrl(url, this.cx)).replace(/^http/, "ws");
    // The third argument reaches Node implementations such as `ws`; browsers ignore it.
    const socket: WebSocket = new Socket(address, undefined, { headers: await this.cx.headers() });
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      let open = false;
      socket.onopen = () => {
        open = true;
        resolve();
      };
      socket.onerror = () => {
        if (!open) reject(new TransportError("WebSocket failed to connect."));
      };
      socket.onmessage = (event) =>
        this.onreceive?.(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
      socket.onclose = (event) => {
        if (!open) return reject(new TransportError(`WebSocket failed to connect (${event.code}).`));
        this.socket = undefined;
        this.onclose?.(
          event.wasClean !== false && event.code === 1000
            ? undefined
            : new TransportError(
                `WebSocket closed with status code: ${event.code} (${event.reason || "no reason given"}).`,
              ),
        );
      };
    });
  }

  async send(data: Data) {
    if (!this.socket || this.socket.readyState !== 1) throw new TransportError("WebSocket is not open.");
    this.socket.send(data as string);
  }

  async stop() {
    this.socket?.close(1000);
  }
}
