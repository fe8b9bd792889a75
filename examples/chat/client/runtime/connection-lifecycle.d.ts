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
    private readonly url;
    private readonly connectionOptions;
    readonly options: HubConnectionOptions;
    private readonly hub;
    state: HubConnectionState;
    connectionId: string | null;
    /** The transport negotiated last (HubConnection shows it while Connected). */
    transportName: TransportName | null;
    readonly closeHandlers: ((error?: Error) => void)[];
    readonly reconnectingHandlers: ((error?: Error) => void)[];
    readonly reconnectedHandlers: ((connectionId?: string) => void)[];
    /** The live connection's authentication refresh (none with skipNegotiation, or once it closed). */
    authentication?: AuthenticationRefreshFeature;
    /** The transport in use; during a stateful resume, the one being reopened. */
    private active?;
    private parse?;
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
    /** Stateful reconnect, when the server agreed to it. */
    private buffer?;
    private reopen?;
    constructor(url: string, connectionOptions: ConnectionOptions, options: HubConnectionOptions, hub: HubMessageHandler);
    log(level: number, message: string): void;
    /** Whether the connection current now is still up (for uploads: false once it dropped or was replaced). */
    liveness(): () => boolean;
    start(): Promise<void>;
    /** Negotiate, transport, handshake. On success the connection is live. */
    private connect;
    private receive;
    /** The transport closed: resume a stateful session after an unexpected drop, else close. */
    private dropped;
    /** Reopens the same connection (no negotiate, no handshake), sends Sequence and replays. */
    private resume;
    private resetTimeout;
    /** Sends a hub message; with stateful reconnect, tracked ones wait while the buffer is full. */
    send(message: HubMessage): Promise<void>;
    private onTransportClose;
    private finish;
    /** `error`: why the connection closed; none when the server closed it cleanly (as the official client, onreconnecting then gets `undefined`). */
    private reconnect;
    stop(): Promise<void>;
}
