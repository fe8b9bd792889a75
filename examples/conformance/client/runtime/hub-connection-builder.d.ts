import { type AuthenticationRefreshOptions } from "./authentication-refresh.js";
import { HubConnection } from "./hub-connection.js";
import type { ConnectionOptions } from "./http-connection.js";
import type { Logger } from "./logger.js";
import { type HubProtocol } from "./protocol.js";
import { type RetryPolicy } from "./retry-policy.js";
/** Configures and builds a HubConnection. */
export declare class HubConnectionBuilder {
    #private;
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
    /**
     * Authentication refresh (ASP.NET Core 11): when negotiate reports the credentials' lifetime,
     * refresh them `refreshBeforeExpirationInMilliseconds` (default 300 000) before they expire, or
     * at half of a shorter lifetime, then again from each refresh's lifetime. `enableAutoRefresh:
     * false` leaves it to `refreshAuthentication()`. Repeated calls merge their options.
     */
    withAuthenticationRefresh(options?: AuthenticationRefreshOptions): this;
    withKeepAliveInterval(milliseconds: number): this;
    withServerTimeout(milliseconds: number): this;
    configureLogging(logger: Logger | ((level: number, message: string) => void)): this;
    /**
     * Presents a generated client's contract hash in the handshake (generated packages call it):
     * the server compares it with its hub's and may refuse a client built from other traits; its
     * own is then `connection.serverContract`.
     */
    withContract(contract: string): this;
    /**
     * Headers for every invocation, asked for as each call goes out: e.g. the current trace
     * context (`traceparent`, `tracestate`) from an OpenTelemetry propagator, which the server
     * makes the parent of the invocation's span. Other SignalR clients send none.
     */
    withInvocationHeaders(provider: () => Record<string, string> | undefined): this;
    build(): HubConnection;
}
