import { HubClientError } from "./errors.js";
import { request, withPath } from "./http-client.js";
import { Level } from "./logger.js";
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
export function tokenLifetime(value: unknown): number | undefined {
  if (Number.isFinite(value) && (value as number) > 0) return Math.min(value as number, 9_007_199_254_740);
}

/** Throws the official client's error for an invalid `refreshBeforeExpirationInMilliseconds`. */
export function validateAuthenticationRefreshOptions(options?: AuthenticationRefreshOptions): void {
  const lead = options?.refreshBeforeExpirationInMilliseconds;
  if (lead !== undefined && !(Number.isFinite(lead) && lead >= 0)) {
    throw new HubClientError(
      "Authentication refreshBeforeExpirationInMilliseconds must be a finite number greater than or equal to 0.",
    );
  }
}

/** A response body parsed as JSON if it is an object, else undefined. */
async function jsonObject(response: Response): Promise<Record<string, unknown> | undefined> {
  try {
    const body = await response.json();
    if (body && typeof body === "object") return body;
  } catch {
    // not JSON
  }
}

/**
 * The `refresh()` of one negotiated connection: `POST {hub}/refresh` with the connection token,
 * authenticated with the application's token (`cx` carries it); a server-provided `accessToken`
 * is handed to `useToken` for the connection's later requests.
 */
export function createRefresh(
  cx: TransportContext,
  baseUrl: string,
  connectionToken: string,
  useToken: (token: string) => void,
): () => Promise<number | undefined> {
  const url = withPath(baseUrl, "refresh");
  return async () => {
    // The header names the connection to refresh.
    const response = await request(cx, "POST", url, "", undefined, { "X-SignalR-Connection-Token": connectionToken });
    if (response.status !== 200) {
      throw new HubClientError(`Unexpected status code returned from authentication refresh '${response.status}'`);
    }
    const body = await jsonObject(response);
    if (!body) throw new HubClientError("Invalid authentication refresh response received: expected JSON content.");
    if (typeof body.accessToken === "string" && body.accessToken) useToken(body.accessToken);
    return tokenLifetime(body.tokenLifetimeSeconds);
  };
}

/** Whether a long poll's answer is 409 `{"error":"authentication_refresh_required"}`. */
export const isRefreshRequired = async (response: Response): Promise<boolean> =>
  response.status === 409 && (await jsonObject(response))?.error === "authentication_refresh_required";

type Handlers<X> = ((context: X) => void)[];

/** A HubConnection's side of authentication refresh (see `createAuthenticationRefresher`). */
export interface AuthenticationRefresher<C> {
  /** The `onAuthenticationRefreshed` callbacks. */
  readonly onAuthenticationRefreshed: Handlers<{ connection: C; newTokenLifetimeInSeconds?: number; refreshedAt: Date }>;
  /** The `onAuthenticationRefreshFailed` callbacks. */
  readonly onAuthenticationRefreshFailed: Handlers<{ connection: C; error: Error }>;
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
export function createAuthenticationRefresher<C>(
  connection: C,
  options: AuthenticationRefreshOptions | undefined,
  current: () => AuthenticationRefreshFeature | null | undefined,
  log: (level: number, message: string) => void,
): AuthenticationRefresher<C> {
  // Automatic refresh: off without withAuthenticationRefresh, and with `enableAutoRefresh: false`.
  const auto = options?.enableAutoRefresh !== false ? options : undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const clear = () => clearTimeout(timer);

  /**
   * Refreshes credentials that last `lifetimeSeconds` more `refreshBeforeExpirationInMilliseconds`
   * (default 5 minutes) before they expire, or at half of a short lifetime.
   */
  const schedule = (lifetimeSeconds?: number) => {
    if (!auto || !lifetimeSeconds) return; // a lifetime is positive when known
    const lead = auto.refreshBeforeExpirationInMilliseconds ?? 300_000;
    const lifetime = lifetimeSeconds * 1000;
    // At most setTimeout's largest delay.
    const delay = Math.min(lifetime <= lead * 2 ? lifetime / 2 : lifetime - lead, 2_147_483_647);
    clear();
    timer = setTimeout(async () => {
      if (!current()) return log(Level.Debug, "Skipping authentication refresh because the connection is not active.");
      try {
        log(Level.Debug, "Refreshing authentication.");
        log(Level.Debug, `Authentication refresh completed. New token lifetime: ${await refresher.refresh()}.`);
      } catch (error) {
        log(Level.Error, `Authentication refresh failed: ${(error as Error).message}`);
      }
    }, delay);
  };

  /** Runs the callbacks of one event; one that throws is logged and stops the rest. */
  const notify = (name: "onAuthenticationRefreshed" | "onAuthenticationRefreshFailed", context: any) => {
    try {
      for (const handler of refresher[name]) handler.call(connection, context);
    } catch (error) {
      log(Level.Error, `An ${name} callback threw error '${error}'.`);
    }
  };

  const refresher: AuthenticationRefresher<C> = {
    onAuthenticationRefreshed: [],
    onAuthenticationRefreshFailed: [],
    connected: () => schedule(current()?.lifetime),
    clear,
    async refresh() {
      const feature = current();
      if (feature === null) throw new HubClientError("Cannot refresh authentication when the connection is not active.");
      if (!feature) throw new HubClientError("Authentication refresh is only supported with HTTP-based connections.");
      let lifetime: number | undefined;
      try {
        lifetime = await feature.refresh();
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        notify("onAuthenticationRefreshFailed", { connection, error });
        throw error;
      }
      if (current() === feature) schedule(lifetime);
      notify("onAuthenticationRefreshed", { connection, newTokenLifetimeInSeconds: lifetime, refreshedAt: new Date() });
      return lifetime;
    },
  };
  return refresher;
}
