import type { AuthenticationRefreshFeature, AuthenticationRefreshOptions } from "./authentication-refresh.js";
import { type ConnectionOptions } from "./http-connection.js";
import { type Logger } from "./logger.js";
import { type HubMessage, type HubProtocol } from "./protocol.js";
import type { RetryPolicy } from "./retry-policy.js";
import type { TransportName } from "./transport.js";
export declare const HubConnectionState: {
    readonly Disconnected: "Disconnected";
    readonly Connecting: "Connecting";
    readonly Connected: "Connected";
    readonly Disconnecting: "Disconnecting";
    readonly Reconnecting: "Reconnecting";
};
export type HubConnectionState = (typeof HubConnectionState)[keyof typeof HubConnectionState];
/**
 * The states for this package's own code: a const enum, so that bundlers put the numbers in place;
 * in HubConnectionState's order (`stateName` turns one into its HubConnectionState).
 */
export declare const enum S {
    Disconnected = 0,
    Connecting = 1,
    Connected = 2,
    Disconnecting = 3,
    Reconnecting = 4
}
/** The HubConnectionState of a state. */
export declare const stateName: (state: S) => "Connected" | "Connecting" | "Disconnected" | "Disconnecting" | "Reconnecting";
export interface HubConnectionOptions {
    protocol: HubProtocol;
    reconnectPolicy?: RetryPolicy;
    keepAliveIntervalInMilliseconds: number;
    serverTimeoutInMilliseconds: number;
    logger?: Logger;
    /** Set by `withStatefulReconnect`: the send buffer in bytes. */
    statefulReconnectBufferSize?: number;
    /** Set by `withAuthenticationRefresh`. */
    authenticationRefresh?: AuthenticationRefreshOptions;
    /** Set by `withContract`: the generated client's contract hash, presented in the handshake. */
    contract?: string;
    /** Set by `withInvocationHeaders`: headers for each invocation (e.g. `traceparent`). */
    invocationHeaders?: () => Record<string, string> | undefined;
}
/** What the hub layer above gets: invocations, stream items and completions; the end of each connection. */
export interface HubMessageHandler {
    message(message: HubMessage): void;
    /** The transport closed for good (before reconnecting or closing): pending calls fail with `error`. */
    closed(error: Error): void;
}
/**
 * The life of a hub connection under the hub API: negotiate and handshake, keep-alive pings and the
 * server timeout, stateful resume, automatic reconnect, stop; its state and events. It carries
 * HubMessages both ways.
 */
export declare class ConnectionLifecycle {
    #private;
    state: S;
    connectionId: string | null;
    /** The name of the transport negotiated last (HubConnection shows it while Connected). */
    transport: TransportName;
    /** The callbacks of HubConnection's `onclose`, `onreconnecting` and `onreconnected`. */
    readonly onclose: ((error?: Error) => void)[];
    readonly onreconnecting: ((error?: Error) => void)[];
    readonly onreconnected: ((connectionId?: string) => void)[];
    /** The last connection's authentication refresh (none with skipNegotiation); HubConnection uses it while Connected. */
    auth?: AuthenticationRefreshFeature;
    readonly options: HubConnectionOptions;
    /** The contract hash the server's handshake reply named (to clients that presented one). */
    serverContract?: string;
    constructor(url: string, connectionOptions: ConnectionOptions, options: HubConnectionOptions, hub: HubMessageHandler);
    log(level: number, message: string): void;
    /** Whether the connection current now is still up (for uploads: false once it dropped or was replaced). */
    liveness(): () => boolean;
    start(): Promise<void>;
    /** Sends a hub message; with stateful reconnect, tracked ones wait while the buffer is full. */
    send(message: HubMessage): Promise<void>;
    stop(): Promise<void>;
}
