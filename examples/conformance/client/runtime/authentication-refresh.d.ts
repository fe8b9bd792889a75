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
    readonly lifetime?: number;
    /** Sends the refresh; resolves with the new lifetime in seconds, if the server gave one. */
    refresh(): Promise<number | undefined>;
}
/** A server-reported lifetime in seconds: a positive finite number (capped at MAX_SAFE_INTEGER ms), else undefined. */
export declare function tokenLifetime(value: unknown): number | undefined;
/** Throws the official client's error for an invalid `refreshBeforeExpirationInMilliseconds`. */
export declare function validateAuthenticationRefreshOptions(options?: AuthenticationRefreshOptions): void;
/**
 * The `refresh()` of one negotiated connection: `POST {hub}/refresh` with the connection token,
 * authenticated with the application's token (`cx` carries it); a server-provided `accessToken`
 * is handed to `useToken` for the connection's later requests.
 */
export declare function createRefresh(cx: TransportContext, baseUrl: string, connectionToken: string, useToken: (token: string) => void): () => Promise<number | undefined>;
/** Whether a long poll's answer is 409 `{"error":"authentication_refresh_required"}`. */
export declare const isRefreshRequired: (response: Response) => Promise<boolean>;
type Handlers<X> = ((context: X) => void)[];
/** A HubConnection's side of authentication refresh (see `createAuthenticationRefresher`). */
export interface AuthenticationRefresher<C> {
    /** The `onAuthenticationRefreshed` callbacks. */
    readonly onAuthenticationRefreshed: Handlers<{
        connection: C;
        newTokenLifetimeInSeconds?: number;
        refreshedAt: Date;
    }>;
    /** The `onAuthenticationRefreshFailed` callbacks. */
    readonly onAuthenticationRefreshFailed: Handlers<{
        connection: C;
        error: Error;
    }>;
    /** A connection started or reconnected: schedule the refresh negotiate's lifetime calls for. */
    connected(): void;
    /** Cancels the scheduled refresh (stop, close, reconnect). */
    clear(): void;
    /** `HubConnection.refreshAuthentication()`. */
    refresh(): Promise<number | undefined>;
}
/**
 * `refreshAuthentication()`, its events, and the timer that refreshes before the reported expiry
 * (when `withAuthenticationRefresh` enabled it) for `connection`. `current()` gives the live
 * connection's feature: null when not Connected, undefined when the connection was not negotiated.
 */
export declare function createAuthenticationRefresher<C>(connection: C, options: AuthenticationRefreshOptions | undefined, current: () => AuthenticationRefreshFeature | null | undefined, log: (level: number, message: string) => void): AuthenticationRefresher<C>;
export {};
