import { TransportError } from "./errors.js";
import { withQuery } from "./http-client.js";
import type { Data, Transport, TransportContext } from "./transport.js";

/**
 * Whether to call `new WebSocket(url, undefined, { headers })`: never in a page or a web worker
 * (browsers take no headers, and Chromium sends `Sec-WebSocket-Protocol: undefined` and fails the
 * handshake), but with an injected implementation such as `ws`, or in Node.
 */
function takesHeaders(injected: boolean) {
  const g = globalThis as any;
  const browser = (g.window && g.document) || g.importScripts;
  return !browser && (injected || !!g.process?.versions?.node);
}

/**
 * WebSockets: the global `WebSocket` or an injected one (e.g. the `ws` package in Node). The access
 * token always goes as `?access_token=`; headers go only to non-browser implementations.
 */
export class WebSocketTransport implements Transport {
  declare onreceive?: (data: Data) => void;
  declare onclose?: (error?: Error) => void;
  #socket?: WebSocket;
  #cx: TransportContext;

  constructor(cx: TransportContext) {
    this.#cx = cx;
  }

  async connect(url: string) {
    const cx = this.#cx;
    const Socket = cx.WebSocket ?? globalThis.WebSocket;
    if (!Socket) throw new TransportError("No WebSocket implementation: pass one in the options.");
    const token = await cx.token();
    const address = (token ? withQuery(url, "access_token=" + encodeURIComponent(token)) : url).replace(/^http/, "ws");
    const socket: WebSocket = takesHeaders(!!cx.WebSocket)
      ? new Socket(address, undefined, { headers: await cx.headers() })
      : new Socket(address);
    socket.binaryType = "arraybuffer";
    this.#socket = socket;
    await new Promise<void>((resolve, reject) => {
      let open = false;
      socket.onopen = () => {
        open = true;
        resolve();
      };
      // Once open, the promise is settled: a later error changes nothing here (onclose reports it).
      socket.onerror = () => reject(new TransportError("WebSocket failed to connect."));
      socket.onmessage = (event) =>
        this.onreceive?.(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
      socket.onclose = (event) => {
        if (!open) return reject(new TransportError(`WebSocket failed to connect (${event.code}).`));
        this.#socket = undefined;
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
    if (!this.#socket || this.#socket.readyState !== 1) throw new TransportError("WebSocket is not open.");
    this.#socket.send(data as string);
  }

  async stop() {
    this.#socket?.close(1000);
  }
}
