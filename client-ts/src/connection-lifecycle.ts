import type { AuthenticationRefreshFeature, AuthenticationRefreshOptions } from "./authentication-refresh.js";
import { AbortError, ConnectionClosedError, HandshakeError, ignore, TimeoutError, whenAborted } from "./errors.js";
import { createHandshakeReader, handshakeRequest } from "./handshake.js";
import { type ConnectionOptions, openConnection, type Reopen } from "./http-connection.js";
import { Level, type Logger } from "./logger.js";
import { isTracked, MessageBuffer } from "./message-buffer.js";
import { type HubMessage, type HubProtocol, T } from "./protocol.js";
import type { RetryPolicy } from "./retry-policy.js";
import type { Data, Transport, TransportName } from "./transport.js";

export const HubConnectionState = {
  Disconnected: "Disconnected",
  Connecting: "Connecting",
  Connected: "Connected",
  Disconnecting: "Disconnecting",
  Reconnecting: "Reconnecting",
} as const;
export type HubConnectionState = (typeof HubConnectionState)[keyof typeof HubConnectionState];
/**
 * The states for this package's own code: a const enum, so that bundlers put the numbers in place;
 * in HubConnectionState's order (`stateName` turns one into its HubConnectionState).
 */
export const enum S {
  Disconnected,
  Connecting,
  Connected,
  Disconnecting,
  Reconnecting,
}

/** The HubConnectionState of a state. */
export const stateName = (state: S) => Object.values(HubConnectionState)[state];

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

/** Delays of the attempts to reopen a dropped stateful connection. */
const RESUME_DELAYS = [0, 200, 1000, 2000];

const delay = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    whenAborted(signal, () => (clearTimeout(timer), resolve()));
  });

/**
 * The life of a hub connection under the hub API: negotiate and handshake, keep-alive pings and the
 * server timeout, stateful resume, automatic reconnect, stop; its state and events. It carries
 * HubMessages both ways.
 */
export class ConnectionLifecycle {
  state = S.Disconnected;
  connectionId: string | null = null;
  /** The name of the transport negotiated last (HubConnection shows it while Connected). */
  declare transport: TransportName;
  /** The callbacks of HubConnection's `onclose`, `onreconnecting` and `onreconnected`. */
  readonly onclose: ((error?: Error) => void)[] = [];
  readonly onreconnecting: ((error?: Error) => void)[] = [];
  readonly onreconnected: ((connectionId?: string) => void)[] = [];
  /** The last connection's authentication refresh (none with skipNegotiation); HubConnection uses it while Connected. */
  declare auth?: AuthenticationRefreshFeature;
  declare readonly options: HubConnectionOptions;
  /** The contract hash the server's handshake reply named (to clients that presented one). */
  declare serverContract?: string;
  #url: string;
  #connectionOptions: ConnectionOptions;
  #hub: HubMessageHandler;
  /** The transport in use; during a stateful resume, the one being reopened. */
  #active?: Transport;
  #parse?: (chunk: Data) => HubMessage[];
  #pingTimer?: ReturnType<typeof setTimeout>;
  #timeoutTimer?: ReturnType<typeof setTimeout>;
  #closeError?: Error;
  #transportClosed?: Promise<void>;
  #startPromise?: Promise<void>;
  /** Stateful reconnect, when the server agreed to it. */
  #buffer?: MessageBuffer;
  #reopen?: Reopen;
  // Set by start() or #connect() before any use:
  /** Aborted when the connection closes for good (ends the waits between attempts). */
  #lifetime!: AbortController;
  #allowReconnect!: boolean;
  #longPolling!: boolean;
  /** Replaced on each new connection (uploads stop when it changes). */
  #generation!: object;

  constructor(url: string, connectionOptions: ConnectionOptions, options: HubConnectionOptions, hub: HubMessageHandler) {
    this.#url = url;
    this.#connectionOptions = connectionOptions;
    this.options = options;
    this.#hub = hub;
  }

  log(level: number, message: string) {
    this.options.logger?.log(level, message);
  }

  /** Whether the connection current now is still up (for uploads: false once it dropped or was replaced). */
  liveness(): () => boolean {
    const generation = this.#generation;
    return () => this.#generation === generation && !!this.#active;
  }

  async start(): Promise<void> {
    if (this.state !== S.Disconnected) {
      throw new Error("Cannot start a HubConnection that is not in the 'Disconnected' state.");
    }
    this.state = S.Connecting;
    this.#lifetime = new AbortController();
    try {
      await (this.#startPromise = this.#connect());
      if (this.state !== S.Connecting) {
        // stop() was called while starting.
        const transport = this.#active;
        this.#active = undefined;
        await transport?.stop();
        throw new AbortError("The connection was stopped during negotiation.");
      }
      // Closed right after the handshake (e.g. the server's Close came with its reply): start() reports it.
      if (!this.#active) throw this.#closeError ?? new ConnectionClosedError("The connection closed during the handshake.");
    } catch (error) {
      this.state = S.Disconnected;
      this.connectionId = null;
      throw error;
    }
    this.state = S.Connected;
  }

  /** Closes the transport; `error` (none: a clean close) is why the connection ends. */
  #fail(error?: Error) {
    this.#closeError = error;
    this.#active?.stop();
  }

  #ping() {
    this.send({ type: T.Ping }).catch(ignore);
  }

  #clearTimers() {
    clearTimeout(this.#pingTimer);
    clearTimeout(this.#timeoutTimer);
  }

  /** Makes `transport` the active one: its data goes to `receive`, and `closed` runs when it closes. */
  #attach(transport: Transport, receive: (data: Data) => void, closed: (error?: Error) => void) {
    this.#active = transport;
    transport.onreceive = receive;
    this.#transportClosed = new Promise((resolve) => {
      transport.onclose = (error) => {
        resolve();
        closed(error);
      };
    });
  }

  /** Negotiate, transport, handshake. On success the connection is live. */
  async #connect(): Promise<void> {
    const { protocol, statefulReconnectBufferSize: bufferSize } = this.options;
    const { transport, name, connectionId, reopen, auth } = await openConnection(
      this.#url,
      this.#connectionOptions,
      protocol.transferFormat,
      bufferSize !== undefined,
    );
    this.transport = name;
    this.#generation = {};
    this.#reopen = reopen;
    this.auth = auth;
    this.#buffer = reopen
      ? new MessageBuffer(
          bufferSize!,
          (sequenceId) => this.send({ type: T.Ack, sequenceId }).catch(ignore),
          (error) => this.#fail(error),
        )
      : undefined;
    this.#longPolling = name === "LongPolling";
    this.#closeError = undefined;
    this.#allowReconnect = true;
    let handshakeDone!: () => void;
    let handshakeFailed!: (error: Error) => void;
    const handshake = new Promise<void>((resolve, reject) => ((handshakeDone = resolve), (handshakeFailed = reject)));
    const readHandshake = createHandshakeReader((contract) => (this.serverContract = contract));
    const parser = protocol.createParser();
    this.#parse = undefined;
    this.#attach(
      transport,
      (data) => {
        this.#resetTimeout();
        if (!this.#parse) {
          // The handshake reply is JSON + ␞ whatever the protocol; what follows it is hub messages.
          let rest: Data | undefined;
          try {
            rest = readHandshake(data);
          } catch (error) {
            return handshakeFailed(error as Error);
          }
          if (rest === undefined) return;
          this.#parse = parser;
          handshakeDone();
          data = rest; // possibly empty: no messages
        }
        this.#receive(data);
      },
      (error) => {
        handshakeFailed(this.#closeError ?? error ?? new HandshakeError("The connection closed during the handshake."));
        if (this.#active === transport && this.#parse === parser) this.#dropped(error);
      },
    );
    try {
      this.#resetTimeout();
      // Stateful reconnect needs handshake version 2.
      await Promise.all([transport.send(handshakeRequest(protocol.name, this.#buffer ? 2 : protocol.version, this.options.contract)), handshake]);
    } catch (error) {
      this.#active = undefined;
      this.#clearTimers();
      await transport.stop();
      throw error;
    }
    this.connectionId = connectionId ?? null;
    this.#resetTimeout();
    if (!this.#longPolling) this.#ping();
  }

  #receive(data: Data) {
    let messages: HubMessage[];
    try {
      messages = this.#parse!(data);
    } catch (error) {
      return this.#fail(error as Error);
    }
    for (const message of messages) {
      if (this.#buffer && !this.#buffer.accept(message)) continue;
      this.log(Level.Trace, `receive ${JSON.stringify(message)}`);
      if (message.type !== T.Close) this.#hub.message(message);
      else {
        this.#allowReconnect = !!message.allowReconnect;
        this.#fail(message.error ? new ConnectionClosedError(`Server returned an error on close: ${message.error}`) : undefined);
      }
    }
  }

  /** The transport closed: resume a stateful session after an unexpected drop, else close. */
  #dropped(error?: Error) {
    const buffer = this.#buffer;
    if (buffer && error && !this.#closeError && this.state === S.Connected) this.#resume(buffer, error);
    else this.#closed(error);
  }

  /** Reopens the same connection (no negotiate, no handshake), sends Sequence and replays. */
  async #resume(buffer: MessageBuffer, error: Error) {
    const protocol = this.options.protocol;
    buffer.pause();
    this.#clearTimers();
    this.log(Level.Information, `Connection lost (${error.message}); resuming it.`);
    for (const wait of RESUME_DELAYS) {
      await delay(wait, this.#lifetime.signal);
      if (this.state !== S.Connected) break;
      let transport!: Transport;
      try {
        await this.#reopen!((t) => {
          this.#parse = protocol.createParser();
          this.#attach(
            (transport = t),
            (data) => {
              if (!buffer.resuming) this.#resetTimeout();
              this.#receive(data);
            },
            (e) => this.#active === t && this.#dropped(e),
          );
        });
      } catch (e) {
        this.log(Level.Debug, `Resume attempt failed: ${e}`);
        continue;
      }
      if (this.state !== S.Connected) {
        await transport.stop();
        break;
      }
      try {
        const [sequenceId, messages] = buffer.replay();
        await transport.send(protocol.write({ type: T.Sequence, sequenceId }));
        for (const data of messages) await transport.send(data);
      } catch {
        return; // it closed again: its onclose resumes once more
      }
      buffer.resuming = false;
      this.#resetTimeout();
      this.#ping();
      this.log(Level.Information, "Connection resumed.");
      return;
    }
    if (this.#buffer !== buffer || this.state === S.Disconnected) return;
    this.#closed(error);
  }

  /**
   * Restarts the server timeout. It covers the handshake on every transport (a silent server
   * fails start() with it, as in the official client); long polling has none after that.
   */
  #resetTimeout() {
    clearTimeout(this.#timeoutTimer);
    if (this.#longPolling && this.#parse) return;
    this.#timeoutTimer = setTimeout(
      () => this.#fail(new TimeoutError("Server timeout elapsed without receiving a message from the server.")),
      this.options.serverTimeoutInMilliseconds,
    );
  }

  /** Sends a hub message; with stateful reconnect, tracked ones wait while the buffer is full. */
  async send(message: HubMessage): Promise<void> {
    const transport = this.#active;
    if (!transport) throw new ConnectionClosedError("Cannot send data if the connection is not in the 'Connected' State.");
    if (!this.#longPolling) {
      clearTimeout(this.#pingTimer);
      this.#pingTimer = setTimeout(() => this.#ping(), this.options.keepAliveIntervalInMilliseconds);
    }
    this.log(Level.Trace, `send ${JSON.stringify(message)}`);
    const data = this.options.protocol.write(message);
    const buffer = this.#buffer;
    if (!buffer || !isTracked(message)) {
      if (buffer?.resuming) return; // Ping/Ack/Close on a dropped socket
      return transport.send(data);
    }
    // Tracked: numbered, kept until acked, replayed after a resume; waits while the buffer is full.
    const room = buffer.track(data);
    if (!buffer.resuming) await transport.send(data).catch(ignore); // a lost send is replayed
    await room;
  }

  /** The connection is gone (no resume): pending calls fail, then it reconnects or closes. */
  #closed(error?: Error) {
    this.#clearTimers();
    this.#active = undefined;
    error = this.#closeError ?? error;
    const closed = error ?? new ConnectionClosedError("Invocation canceled due to the underlying connection being closed.");
    this.#buffer?.dispose(closed);
    this.#buffer = undefined;
    this.#hub.closed(closed);
    if (this.state === S.Connecting) return; // start() reports it
    const policy = this.options.reconnectPolicy;
    if (this.state === S.Connected && policy && this.#allowReconnect) this.#reconnect(policy, error);
    else this.#finish(error);
  }

  #finish(error?: Error) {
    this.state = S.Disconnected;
    this.connectionId = null;
    this.#lifetime.abort();
    for (const handler of this.onclose) handler(error);
  }

  /** `error`: why the connection closed; none when the server closed it cleanly (as the official client, onreconnecting then gets `undefined`). */
  async #reconnect(policy: RetryPolicy, error?: Error) {
    this.state = S.Reconnecting;
    this.connectionId = null;
    const started = Date.now();
    let reason = error ?? new ConnectionClosedError("The connection closed.");
    for (const handler of this.onreconnecting) handler(error);
    for (let count = 0; ; count++) {
      const wait = policy.nextRetryDelayInMilliseconds({
        previousRetryCount: count,
        elapsedMilliseconds: Date.now() - started,
        retryReason: reason,
      });
      if (wait === null) return this.#finish(reason);
      await delay(wait, this.#lifetime.signal);
      if (this.state !== S.Reconnecting) return;
      try {
        await this.#connect();
      } catch (error) {
        reason = error as Error;
        if (this.state !== S.Reconnecting) return;
        continue;
      }
      if (this.state !== S.Reconnecting) {
        await this.#active?.stop();
        return;
      }
      if (!this.#active) continue;
      this.state = S.Connected;
      for (const handler of this.onreconnected) handler(this.connectionId ?? undefined);
      return;
    }
  }

  async stop(): Promise<void> {
    const state = this.state;
    if (state === S.Disconnected || state === S.Disconnecting) return;
    if (state === S.Connecting) {
      this.state = S.Disconnecting;
      return void (await this.#startPromise?.catch(ignore));
    }
    if (state === S.Reconnecting && !this.#active) {
      return this.#finish(new ConnectionClosedError("The connection was stopped during reconnect."));
    }
    this.state = S.Disconnecting;
    this.#allowReconnect = false;
    const transport = this.#active;
    if (!transport) return this.#finish();
    if (this.#buffer?.resuming) return this.#closed(); // the socket is gone already
    await this.send({ type: T.Close }).catch(ignore);
    await transport.stop();
    await this.#transportClosed;
  }
}
