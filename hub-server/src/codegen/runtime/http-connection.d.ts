import { type AuthenticationRefreshFeature } from "./authentication-refresh.js";
import type { TransferFormat } from "./protocol.js";
import { type Transport, type TransportName } from "./transport.js";
/** Options of `withUrl`. */
export interface ConnectionOptions {
    /** Allowed transports: a `HttpTransportType` bitmask (default: all three). */
    transport?: number;
    /** Connect a WebSocket straight to the URL without negotiating (WebSockets only). */
    skipNegotiation?: boolean;
    /** Called before each negotiate and transport connect; the token goes out as a bearer. */
    accessTokenFactory?: () => string | undefined | Promise<string | undefined>;
    /** Extra HTTP headers (the WebSocket upgrade gets them only where the implementation allows). */
    headers?: Record<string, string>;
    /** A `fetch` implementation (default: the global one). */
    fetch?: typeof fetch;
    /** A WebSocket constructor (default: the global one; in Node 20, pass `ws`). */
    WebSocket?: unknown;
    /** Timeout of negotiate, POST and DELETE requests in ms (default 100 000; 0 = none). Long polls have their own 100 s. */
    timeout?: number;
}
/** Reopens a dropped WebSocket of the same connection (stateful reconnect); `setup` wires it before it opens. */
export type Reopen = (setup: (transport: Transport) => void) => Promise<Transport>;
/** A connected transport, with what negotiate said about it. */
export interface OpenConnection {
    transport: Transport;
    name: TransportName;
    connectionId?: string;
    /** Set when the server agreed to stateful reconnect. */
    reopen?: Reopen;
    /** Authentication refresh (`POST {hub}/refresh`): set when the connection was negotiated. */
    auth?: AuthenticationRefreshFeature;
}
/** Negotiates (following redirects) and connects the first transport that works. */
export declare function openConnection(baseUrl: string, options: ConnectionOptions, format: TransferFormat, stateful?: boolean): Promise<OpenConnection>;
