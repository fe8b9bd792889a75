import type { TransferFormat } from "./protocol.js";

/** Transport flags, as in `@microsoft/signalr` (combine with `|`). */
export const HttpTransportType = {
  None: 0,
  WebSockets: 1,
  ServerSentEvents: 2,
  LongPolling: 4,
} as const;

/** A transport's name, as negotiate lists it. */
export type TransportName = "WebSockets" | "ServerSentEvents" | "LongPolling";

/** What goes over a transport: text (JSON) or bytes (MessagePack). */
export type Data = string | Uint8Array;

/** What transports need from the connection options. */
export interface TransportContext {
  /** A `fetch` implementation (default: the global one). */
  fetch?: typeof fetch;
  WebSocket?: any;
  headers: () => Promise<Record<string, string>>;
  token: () => Promise<string | undefined>;
  /** The timeout of negotiate, POST and DELETE requests (ms; 0 = none; default 100 s). */
  timeout?: number;
  /** Refreshes the connection's authentication (negotiated connections): long polling's answer to a 409. */
  refresh?: () => Promise<unknown>;
}

/** One physical connection to the server; `onclose` fires once, with an error unless it was stopped. */
export interface Transport {
  connect(url: string, format: TransferFormat): Promise<void>;
  send(data: Data): Promise<void>;
  stop(): Promise<void>;
  onreceive?: (data: Data) => void;
  onclose?: (error?: Error) => void;
}
