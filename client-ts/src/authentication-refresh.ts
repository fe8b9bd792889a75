import { HubClientError } from "./errors.js";
import { request } from "./http-client.js";
import { type Logger, LogLevel } from "./logger.js";
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
export const CONNECTION_TOKEN_HEADER = "X-SignalR-Connection-Token";
const DEFAULT_REFRESH_BEFORE_EXPIRATION = 5 * 60 * 1000;
/** setTimeout's largest delay. */
const MAX_REFRESH_INTERVAL = 2_147_483_647;
const MAX_TOKEN_LIFETIME_IN_SECONDS = Math.floor(Number.MAX_SAFE_INTEGER / 1000);

/** A server-reported lifetime in seconds: a positive finite number (capped), else undefined. */
export function tokenLifetime(value: unknown): number | undefined {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) return undefined;
  return Math.min(value, MAX_TOKEN_LIFETIME_IN_SECONDS);
}

/** Throws the official client's error for an invalid `refreshBeforeExpirationInMilliseconds`. */
export function validateAuthenticationRefreshOptions(options?: AuthenticationRefreshOptions): void {
  const lead = options?.refreshBeforeExpirationInMilliseconds;
  if (lead !== undefined && (typeof lead !== "number" || !Number.isFinite(lead) || lead < 0)) {
    throw new HubClientError(
      "Authentication refreshBeforeExpirationInMilliseconds must be a finite number greater than or equal to 0.",
    );
  }
}

/** When to refresh credentials that last `lifetimeSeconds` more: `lead` ms before, or at half of a short lifetime. */
export function refreshDelay(lifetimeSeconds: number, lead = DEFAULT_REFRESH_BEFORE_EXPIRATION): number {
  const lifetime = lifetimeSeconds * 1000;
  return Math.min(lifetime <= lead * 2 ? lifetime / 2 : lifetime - lead, MAX_REFRESH_INTERVAL);
}

/** The refresh URL: the hub URL with `/refresh` appended to its path, its query kept. */
export function refreshUrl(baseUrl: string): string {
  const at = baseUrl.search(/[?#]/);
  const [path, rest] = at < 0 ? [baseUrl, ""] : [baseUrl.slice(0, at), baseUrl.slice(at)];
  return path + (path.endsWith("/") ? "refresh" : "/refresh") + rest;
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
  const url = refreshUrl(baseUrl);
  return async () => {
    const response = await request(cx, "POST", url, "", undefined, { [CONNECTION_TOKEN_HEADER]: connectionToken });
    if (response.status !== 200) {
      throw new HubClientError(`Unexpected status code returned from authentication refresh '${response.status}'`);
    }
    let body: { tokenLifetimeSeconds?: unknown; accessToken?: unknown };
    try {
      body = JSON.parse(await response.text());
    } catch {
      body = null!;
    }
    if (body === null || typeof body !== "object") {
      throw new HubClientError("Invalid authentication refresh response received: expected JSON content.");
    }
    if (typeof body.accessToken === "string" && body.accessToken) useToken(body.accessToken);
    return tokenLifetime(body.tokenLifetimeSeconds);
  };
}

/** Whether a long poll's answer is 409 `{"error":"authentication_refresh_required"}`. */
export async function isRefreshRequired(response: Response): Promise<boolean> {
  if (response.status !== 409) return false;
  try {
    const payload = JSON.parse(await response.text());
    return payload !== null && typeof payload === "object" && payload.error === "authentication_refresh_required";
  } catch {
    return false;
  }
}

/**
 * A HubConnection's side of authentication refresh: `refreshAuthentication()`, its events, and the
 * timer that refreshes before the reported expiry (when `withAuthenticationRefresh` enabled it).
 */
export class AuthenticationRefresher<C> {
  /** The `onAuthenticationRefreshed` callbacks. */
  readonly refreshedHandlers: ((context: { connection: C; newTokenLifetimeInSeconds?: number; refreshedAt: Date }) => void)[] = [];
  /** The `onAuthenticationRefreshFailed` callbacks. */
  readonly failedHandlers: ((context: { connection: C; error: Error }) => void)[] = [];
  private timer?: ReturnType<typeof setTimeout>;

  /**
   * `current()` gives the live connection's feature: null when not Connected, undefined when the
   * connection was not negotiated.
   */
  constructor(
    private readonly connection: C,
    private readonly options: AuthenticationRefreshOptions | undefined,
    private readonly current: () => AuthenticationRefreshFeature | null | undefined,
    private readonly logger?: Logger,
  ) {}

  private get auto() {
    return !!this.options && this.options.enableAutoRefresh !== false;
  }

  /** A connection started or reconnected: schedule the refresh negotiate's lifetime calls for. */
  connected(): void {
    const lifetime = this.current()?.initialTokenLifetimeInSeconds;
    if (this.auto && lifetime !== undefined) this.schedule(lifetime);
  }

  /** Cancels the scheduled refresh (stop, close, reconnect). */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(lifetimeSeconds: number) {
    this.clear();
    this.timer = setTimeout(async () => {
      this.timer = undefined;
      if (!this.current()) {
        return this.log(LogLevel.Debug, "Skipping authentication refresh because the connection is not active.");
      }
      try {
        this.log(LogLevel.Debug, "Refreshing authentication.");
        const lifetime = await this.refresh();
        this.log(LogLevel.Debug, `Authentication refresh completed. New token lifetime: ${lifetime}.`);
      } catch (error) {
        this.log(LogLevel.Error, `Authentication refresh failed: ${error instanceof Error ? error.message : error}`);
      }
    }, refreshDelay(lifetimeSeconds, this.options?.refreshBeforeExpirationInMilliseconds));
  }

  /** `HubConnection.refreshAuthentication()`. */
  async refresh(): Promise<number | undefined> {
    const feature = this.current();
    if (feature === null) throw new HubClientError("Cannot refresh authentication when the connection is not active.");
    if (!feature) throw new HubClientError("Authentication refresh is only supported with HTTP-based connections.");
    let lifetime: number | undefined;
    try {
      lifetime = await feature.refresh();
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      this.notify(this.failedHandlers, { connection: this.connection, error }, "onAuthenticationRefreshFailed");
      throw e;
    }
    if (this.current() === feature && this.auto && lifetime !== undefined) this.schedule(lifetime);
    const context = { connection: this.connection, newTokenLifetimeInSeconds: lifetime, refreshedAt: new Date() };
    this.notify(this.refreshedHandlers, context, "onAuthenticationRefreshed");
    return lifetime;
  }

  private notify<X>(handlers: ((context: X) => void)[], context: X, name: string) {
    try {
      for (const handler of handlers) handler.call(this.connection, context);
    } catch (error) {
      this.log(LogLevel.Error, `An ${name} callback threw error '${error}'.`);
    }
  }

  private log(level: number, message: string) {
    this.logger?.log(level, message);
  }
}
