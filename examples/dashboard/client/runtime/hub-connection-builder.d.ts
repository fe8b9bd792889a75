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
    build(): HubConnection;
}
