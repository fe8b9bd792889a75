import { type AuthenticationRefreshOptions, validateAuthenticationRefreshOptions } from "./authentication-refresh.js";
import type { HubConnectionOptions } from "./connection-lifecycle.js";
import { HubConnection } from "./hub-connection.js";
import type { ConnectionOptions } from "./http-connection.js";
import type { Logger } from "./logger.js";
import { type HubProtocol, JsonHubProtocol } from "./protocol.js";
import { DEFAULT_RETRY_DELAYS, retryDelays, type RetryPolicy } from "./retry-policy.js";

/** Configures and builds a HubConnection. */
export class HubConnectionBuilder {
  #url?: string;
  #connectionOptions!: ConnectionOptions; // set with the URL
  #options: HubConnectionOptions = {
    protocol: new JsonHubProtocol(),
    keepAliveIntervalInMilliseconds: 15_000,
    serverTimeoutInMilliseconds: 30_000,
  };

  /** The hub URL, plus transports, skipNegotiation, token factory, headers, fetch/WebSocket. */
  withUrl(url: string, options: ConnectionOptions | number = {}): this {
    this.#url = url;
    this.#connectionOptions = typeof options === "number" ? { transport: options } : options;
    return this;
  }
  withHubProtocol(protocol: HubProtocol): this {
    this.#options.protocol = protocol;
    return this;
  }
  /** Reconnect after a lost connection: delays (default [0, 2000, 10000, 30000]) or a policy. */
  withAutomaticReconnect(retry: number[] | RetryPolicy = DEFAULT_RETRY_DELAYS): this {
    this.#options.reconnectPolicy = Array.isArray(retry) ? retryDelays(retry) : retry;
    return this;
  }
  /**
   * Stateful reconnect (WebSockets, when the server agrees): a dropped socket is reopened for the
   * same connection and unacknowledged messages are replayed, without reconnect events.
   * `bufferSize`: bytes of unacknowledged messages before sends wait (default 100 000).
   */
  withStatefulReconnect(options: { bufferSize?: number } = {}): this {
    this.#options.statefulReconnectBufferSize = options.bufferSize ?? 100_000;
    return this;
  }
  /**
   * Authentication refresh (ASP.NET Core 11): when negotiate reports the credentials' lifetime,
   * refresh them `refreshBeforeExpirationInMilliseconds` (default 300 000) before they expire, or
   * at half of a shorter lifetime, then again from each refresh's lifetime. `enableAutoRefresh:
   * false` leaves it to `refreshAuthentication()`. Repeated calls merge their options.
   */
  withAuthenticationRefresh(options: AuthenticationRefreshOptions = {}): this {
    this.#options.authenticationRefresh = { ...this.#options.authenticationRefresh, ...options };
    return this;
  }
  withKeepAliveInterval(milliseconds: number): this {
    this.#options.keepAliveIntervalInMilliseconds = milliseconds;
    return this;
  }
  withServerTimeout(milliseconds: number): this {
    this.#options.serverTimeoutInMilliseconds = milliseconds;
    return this;
  }
  configureLogging(logger: Logger | ((level: number, message: string) => void)): this {
    this.#options.logger = typeof logger === "function" ? { log: logger } : logger;
    return this;
  }
  /**
   * Presents a generated client's contract hash in the handshake (generated packages call it):
   * the server compares it with its hub's and may refuse a client built from other traits; its
   * own is then `connection.serverContract`.
   */
  withContract(contract: string): this {
    this.#options.contract = contract;
    return this;
  }
  /**
   * Headers for every invocation, asked for as each call goes out: e.g. the current trace
   * context (`traceparent`, `tracestate`) from an OpenTelemetry propagator, which the server
   * makes the parent of the invocation's span. Other SignalR clients send none.
   */
  withInvocationHeaders(provider: () => Record<string, string> | undefined): this {
    this.#options.invocationHeaders = provider;
    return this;
  }
  build(): HubConnection {
    if (!this.#url) throw new Error("The 'HubConnectionBuilder.withUrl' method must be called before building the connection.");
    validateAuthenticationRefreshOptions(this.#options.authenticationRefresh);
    return new HubConnection(this.#url, this.#connectionOptions, { ...this.#options });
  }
}
