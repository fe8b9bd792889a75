import { type Logger } from "./logger.js";
import type { TransportContext } from "./transport.js";
/** Options of `withAuthenticationRefresh` (`IAuthenticationRefreshOptions` in `@microsoft/signalr` 11). */
export interface AuthenticationRefreshOptions {
    /** Refresh before the expiry negotiate (then each refresh) reports. Default true. */
    enableAutoRefresh?: boolean;
    /** How long before that expiry to refresh, in ms (default 300 000; a lifetime of at most twice this is refreshed at half of it). */
    refreshBeforeExpirationInMilliseconds?: number;
}
/**
 * What a negotiated connection offers for refreshing its authentication (absent with
 * skipNegotiation): negotiate's `tokenLifetimeSeconds`, and `POST {hub}/refresh`.
 */
export interface AuthenticationRefreshFeature {
    /** The credentials' lifetime in seconds negotiate reported, if any. */
    readonly initialTokenLifetimeInSeconds?: number;
    /** Sends the refresh; resolves with the new lifetime in seconds, if the server gave one. */
    refresh(): Promise<number | undefined>;
}
/** The header that names the connection to refresh. */
export declare const CONNECTION_TOKEN_HEADER = "X-SignalR-Connection-Token";
/** A server-reported lifetime in seconds: a positive finite number (capped), else undefined. */
export declare function tokenLifetime(value: unknown): number | undefined;
/** Throws the official client's error for an invalid `refreshBeforeExpirationInMilliseconds`. */
export declare function validateAuthenticationRefreshOptions(options?: AuthenticationRefreshOptions): void;
/** When to refresh credentials that last `lifetimeSeconds` more: `lead` ms before, or at half of a short lifetime. */
export declare function refreshDelay(lifetimeSeconds: number, lead?: number): number;
/** The refresh URL: the hub URL with `/refresh` appended to its path, its query kept. */
export declare function refreshUrl(baseUrl: string): string;
/**
 * The `refresh()` of one negotiated connection: `POST {hub}/refresh` with the connection token,
 * authenticated with the application's token (`cx` carries it); a server-provided `accessToken`
 * is handed to `useToken` for the connection's later requests.
 */
export declare function createRefresh(cx: TransportContext, baseUrl: string, connectionToken: string, useToken: (token: string) => void): () => Promise<number | undefined>;
/** Whether a long poll's answer is 409 `{"error":"authentication_refresh_required"}`. */
export declare function isRefreshRequired(response: Response): Promise<boolean>;
/**
 * A HubConnection's side of authentication refresh: `refreshAuthentication()`, its events, and the
 * timer that refreshes before the reported expiry (when `withAuthenticationRefresh` enabled it).
 */
export declare class AuthenticationRefresher<C> {
    private readonly connection;
    private readonly options;
    private readonly current;
    private readonly logger?;
    /** The `onAuthenticationRefreshed` callbacks. */
    readonly refreshedHandlers: ((context: {
        connection: C;
        newTokenLifetimeInSeconds?: number;
        refreshedAt: Date;
    }) => void)[];
    /** The `onAuthenticationRefreshFailed` callbacks. */
    readonly failedHandlers: ((context: {
        connection: C;
        error: Error;
    }) => void)[];
    private timer?;
    /**
     * `current()` gives the live connection's feature: null when not Connected, undefined when the
     * connection was not negotiated.
     */
    constructor(connection: C, options: AuthenticationRefreshOptions | undefined, current: () => AuthenticationRefreshFeature | null | undefined, logger?: Logger | undefined);
    private get auto();
    /** A connection started or reconnected: schedule the refresh negotiate's lifetime calls for. */
    connected(): void;
    /** Cancels the scheduled refresh (stop, close, reconnect). */
    clear(): void;
    private schedule;
    /** `HubConnection.refreshAuthentication()`. */
    refresh(): Promise<number | undefined>;
    private notify;
    private log;
}
