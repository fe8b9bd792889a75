import { type ConnectionOptions } from "./connection.js";
import { type HubProtocol } from "./protocol.js";
export declare const HubConnectionState: {
    readonly Disconnected: "Disconnected";
    readonly Connecting: "Connecting";
    readonly Connected: "Connected";
    readonly Disconnecting: "Disconnecting";
    readonly Reconnecting: "Reconnecting";
};
export type HubConnectionState = (typeof HubConnectionState)[keyof typeof HubConnectionState];
export interface RetryContext {
    previousRetryCount: number;
    elapsedMilliseconds: number;
    retryReason: Error;
}
/** Decides the delay before each reconnect attempt; `null` gives up. */
export interface RetryPolicy {
    nextRetryDelayInMilliseconds(context: RetryContext): number | null;
}
/** Log levels, as in `@microsoft/signalr`. */
export declare const LogLevel: {
    readonly Trace: 0;
    readonly Debug: 1;
    readonly Information: 2;
    readonly Warning: 3;
    readonly Error: 4;
    readonly Critical: 5;
    readonly None: 6;
};
export interface Logger {
    log(level: number, message: string): void;
}
export interface HubConnectionOptions {
    protocol: HubProtocol;
    reconnectPolicy?: RetryPolicy;
    keepAliveIntervalInMilliseconds: number;
    serverTimeoutInMilliseconds: number;
    logger?: Logger;
    /** Set by `withStatefulReconnect`: the send buffer in bytes. */
    statefulReconnectBufferSize?: number;
}
export type Handler = (...args: any[]) => unknown;
/** A subscriber of a server-to-client stream. */
export interface StreamSubscriber<T> {
    next(value: T): void;
    error?(error: Error): void;
    complete?(): void;
}
/** A server-to-client stream: iterate it with `for await`, or `subscribe` to it (one consumer). */
export interface HubStream<T> extends AsyncIterable<T> {
    subscribe(subscriber: StreamSubscriber<T>): {
        dispose(): void;
    };
}
/** A connection to a hub. Build one with `HubConnectionBuilder`. */
export declare class HubConnection {
    private readonly url;
    private readonly connectionOptions;
    private readonly options;
    private _state;
    private _connectionId;
    private transport?;
    private parse?;
    private readonly handlers;
    private readonly pending;
    private nextId;
    private closeHandlers;
    private reconnectingHandlers;
    private reconnectedHandlers;
    private pingTimer?;
    private timeoutTimer?;
    private closeError?;
    private allowReconnect;
    private lifetime;
    private transportClosed?;
    private startPromise?;
    private longPolling;
    /** Replaced on each new connection (uploads stop when it changes). */
    private generation;
    private session?;
    /** @internal Use HubConnectionBuilder. */
    constructor(url: string, connectionOptions: ConnectionOptions, options: HubConnectionOptions);
    get state(): HubConnectionState;
    /** The id from negotiate (null before start, with skipNegotiation, and after stop). */
    get connectionId(): string | null;
    get protocol(): HubProtocol;
    private log;
    /** Starts the connection; rejects with NegotiateError, HandshakeError or a transport error. */
    start(): Promise<void>;
    /** Negotiate, transport, handshake. On success the connection is live. */
    private connect;
    private receive;
    /** Stateful reconnect: handles Ack/Sequence and drops what must not be processed. */
    private accept;
    /** The transport closed: resume a stateful session after an unexpected drop, else close. */
    private dropped;
    /** Reopens the same connection (no negotiate, no handshake), sends Sequence and replays. */
    private resume;
    private resetTimeout;
    private sendMessage;
    private dispatch;
    private invokeHandlers;
    private onTransportClose;
    private finish;
    private reconnect;
    /** Stops the connection: sends Close, closes the transport and waits for it. */
    stop(): Promise<void>;
    /** Registers a handler for a client method (names match case-insensitively). */
    on(methodName: string, handler: Handler): void;
    /** Removes one handler, or every handler of the method. */
    off(methodName: string, handler?: Handler): void;
    onclose(callback: (error?: Error) => void): void;
    onreconnecting(callback: (error?: Error) => void): void;
    onreconnected(callback: (connectionId?: string) => void): void;
    /** Builds an invocation; async-iterable arguments become upload streams. */
    private prepare;
    private upload;
    /** Calls a hub method without waiting for it (a trailing AbortSignal is ignored). */
    send(methodName: string, ...args: unknown[]): Promise<void>;
    /**
     * Calls a hub method and resolves with its result; rejects with HubError for a server error.
     * A trailing AbortSignal argument cancels it: CancelInvocation goes out, the call rejects with AbortError.
     */
    invoke<R = any>(methodName: string, ...args: unknown[]): Promise<R>;
    /**
     * Calls a streaming hub method. The invocation goes out at once; items are buffered until
     * consumed. Breaking out of the loop, `dispose()` or a trailing AbortSignal cancels it.
     */
    stream<I = any>(methodName: string, ...args: unknown[]): HubStream<I>;
}
/** The default automatic-reconnect delays. */
export declare const DEFAULT_RETRY_DELAYS: number[];
/** Configures and builds a HubConnection. */
export declare class HubConnectionBuilder {
    private url?;
    private connectionOptions;
    private options;
    /** The hub URL, plus transports, skipNegotiation, token factory, headers, fetch/WebSocket. */
    withUrl(url: string, options?: ConnectionOptions | number): this;
    withHubProtocol(protocol: HubProtocol): this;
    /** Reconnect after a lost connection: delays (default [0, 2000, 10000, 30000]) or a policy. */
    withAutomaticReconnect(retry?: number[] | RetryPolicy): this;
    /**
     * Stateful reconnect (WebSockets, when the server agrees): a dropped socket is reopened for the
     * same connection and unacknowledged messages are replayed, without reconnect events.
     * `bufferSize`: bytes of unacknowledged messages before sends wait (default 100 000).
     */
    withStatefulReconnect(options?: {
        bufferSize?: number;
    }): this;
    withKeepAliveInterval(milliseconds: number): this;
    withServerTimeout(milliseconds: number): this;
    configureLogging(logger: Logger | ((level: number, message: string) => void)): this;
    build(): HubConnection;
}
