import { type HubConnectionOptions, type HubConnectionState } from "./connection-lifecycle.js";
import type { ConnectionOptions } from "./http-connection.js";
import { type HubProtocol } from "./protocol.js";
import { type HubStream } from "./stream.js";
import type { TransportName } from "./transport.js";
export type Handler = (...args: any[]) => unknown;
/** What `onAuthenticationRefreshed` callbacks get. */
export interface AuthenticationRefreshedContext {
    /** The connection whose authentication was refreshed. */
    connection: HubConnection;
    /** The new lifetime of the credentials in seconds, if the server reported one. */
    newTokenLifetimeInSeconds?: number;
    /** When the refresh completed. */
    refreshedAt: Date;
}
/** What `onAuthenticationRefreshFailed` callbacks get. */
export interface AuthenticationRefreshFailedContext {
    /** The connection whose refresh failed (it goes on with its old credentials). */
    connection: HubConnection;
    /** Why the refresh failed. */
    error: Error;
}
/**
 * A connection to a hub: calls (`invoke`, `send`, `stream`, uploads), client methods (`on`), state and
 * events. Build one with `HubConnectionBuilder`; the connection itself lives in ConnectionLifecycle.
 */
export declare class HubConnection {
    #private;
    /** @internal Use HubConnectionBuilder. */
    constructor(url: string, connectionOptions: ConnectionOptions, options: HubConnectionOptions);
    get state(): HubConnectionState;
    /** The id from negotiate (null before start, with skipNegotiation, and after stop). */
    get connectionId(): string | null;
    /** The transport in use (the one connected after any fallback or reconnect); null unless Connected. */
    get transport(): TransportName | null;
    get protocol(): HubProtocol;
    /**
     * The server hub's contract hash, when this client presented one (`withContract`; generated
     * clients do) and the server has one: compare it with the generated package's to see whether
     * the client matches the server it reached.
     */
    get serverContract(): string | undefined;
    /** Starts the connection; rejects with NegotiateError, HandshakeError or a transport error. */
    start(): Promise<void>;
    /** Stops the connection: sends Close, closes the transport and waits for it. */
    stop(): Promise<void>;
    /**
     * Refreshes the connection's authentication (`POST {hub}/refresh` with the token factory's
     * credentials) and resolves with their new lifetime in seconds, if the server reported one.
     * Rejects when not Connected, with skipNegotiation, and when the server refuses (the connection
     * keeps its credentials). With automatic refresh on, the next refresh is scheduled from the new lifetime.
     */
    refreshAuthentication(): Promise<number | undefined>;
    /** Registers a callback run after each successful authentication refresh. */
    onAuthenticationRefreshed(callback: (context: AuthenticationRefreshedContext) => void): void;
    /** Registers a callback run when an authentication refresh fails. */
    onAuthenticationRefreshFailed(callback: (context: AuthenticationRefreshFailedContext) => void): void;
    onclose(callback: (error?: Error) => void): void;
    onreconnecting(callback: (error?: Error) => void): void;
    onreconnected(callback: (connectionId?: string) => void): void;
    /** Registers a handler for a client method (names match case-insensitively). */
    on(methodName: string, handler: Handler): void;
    /** Removes one handler, or every handler of the method. */
    off(methodName: string, handler?: Handler): void;
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
