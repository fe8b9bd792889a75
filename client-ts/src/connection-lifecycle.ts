import type { AuthenticationRefreshFeature, AuthenticationRefreshOptions } from "./authentication-refresh.js";
import { AbortError, ConnectionClosedError, HandshakeError, TimeoutError } from "./errors.js";
import { createHandshakeReader, handshakeRequest } from "./handshake.js";
import { type ConnectionOptions, openConnection, type Reopen } from "./http-connection.js";
import { type Logger, LogLevel } from "./logger.js";
import { isTracked, MessageBuffer } from "./message-buffer.js";
import { type HubMessage, type HubProtocol, MessageType as T } from "./protocol.js";
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

/** Delays of the attempts to reopen a dropped stateful connection. */
const RESUME_DELAYS = [0, 200, 1000, 2000];

const ignore = () => {};

const delay = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

/**
 * The life of a hub connection under the hub API: negotiate and handshake, keep-alive pings and the
 * server timeout, stateful resume, automatic reconnect, stop; its state and events. It carries
 * HubMessages both ways.
 */
export class ConnectionLifecycle {
  state: HubConnectionState = HubConnectionState.Disconnected;
  connectionId: string | null = null;
  /** The transport negotiated last (HubConnection shows it while Connected). */
  transportName: TransportName | null = null;
  readonly closeHandlers: ((error?: Error) => void)[] = [];
  readonly reconnectingHandlers: ((error?: Error) => void)[] = [];
  readonly reconnectedHandlers: ((connectionId?: string) => void)[] = [];
  /** The live connection's authentication refresh (none with skipNegotiation, or once it closed). */
  authentication?: AuthenticationRefreshFeature;
  /** The transport in use; during a stateful resume, the one being reopened. */
  private active?: Transport;
  private parse?: (chunk: Data) => HubMessage[];
  private pingTimer?: ReturnType<typeof setTimeout>;
  private timeoutTimer?: ReturnType<typeof setTimeout>;
  private closeError?: Error;
  private allowReconnect = true;
  private lifetime = new AbortController();
  private transportClosed?: Promise<void>;
  private startPromise?: Promise<void>;
  private longPolling = false;
  /** Replaced on each new connection (uploads stop when it changes). */
  private generation = {};
  /** Stateful reconnect, when the server agreed to it. */
  private buffer?: MessageBuffer;
  private reopen?: Reopen;

  constructor(
    private readonly url: string,
    private readonly connectionOptions: ConnectionOptions,
    readonly options: HubConnectionOptions,
    private readonly hub: HubMessageHandler,
  ) {}

  log(level: number, message: string) {
    this.options.logger?.log(level, message);
  }

  /** Whether the connection current now is still up (for uploads: false once it dropped or was replaced). */
  liveness(): () => boolean {
    const generation = this.generation;
    return () => this.generation === generation && !!this.active;
  }

  async start(): Promise<void> {
    if (this.state !== HubConnectionState.Disconnected) {
      throw new Error("Cannot start a HubConnection that is not in the 'Disconnected' state.");
    }
    this.state = HubConnectionState.Connecting;
    this.lifetime = new AbortController();
    this.startPromise = this.connect();
    try {
      await this.startPromise;
    } catch (error) {
      this.state = HubConnectionState.Disconnected;
      this.connectionId = null;
      throw error;
    }
    if (this.state !== HubConnectionState.Connecting) {
      // stop() was called while starting.
      const transport = this.active;
      this.active = undefined;
      await transport?.stop();
      this.state = HubConnectionState.Disconnected;
      this.connectionId = null;
      throw new AbortError("The connection was stopped during negotiation.");
    }
    this.state = HubConnectionState.Connected;
  }

  /** Negotiate, transport, handshake. On success the connection is live. */
  private async connect(): Promise<void> {
    const protocol = this.options.protocol;
    const bufferSize = this.options.statefulReconnectBufferSize;
    const { transport, name, connectionId, reopen, authentication } = await openConnection(
      this.url,
      this.connectionOptions,
      protocol.transferFormat,
      bufferSize !== undefined,
    );
    this.active = transport;
    this.transportName = name;
    this.generation = {};
    this.reopen = reopen;
    this.authentication = authentication;
    this.buffer = reopen
      ? new MessageBuffer(
          bufferSize!,
          (sequenceId) => this.send({ type: T.Ack, sequenceId }).catch(ignore),
          (error) => {
            this.closeError = error;
            this.active?.stop();
          },
        )
      : undefined;
    this.longPolling = name === "LongPolling";
    this.closeError = undefined;
    this.allowReconnect = true;
    let handshake!: { resolve(): void; reject(e: Error): void };
    const handshakeDone = new Promise<void>((resolve, reject) => (handshake = { resolve, reject }));
    const readHandshake = createHandshakeReader();
    const parser = protocol.createParser();
    this.parse = undefined;
    transport.onreceive = (data) => {
      this.resetTimeout();
      if (!this.parse) {
        // The handshake reply is JSON + ␞ whatever the protocol; what follows it is hub messages.
        let rest: Data | undefined;
        try {
          rest = readHandshake(data);
        } catch (error) {
          return handshake.reject(error as Error);
        }
        if (rest === undefined) return;
        this.parse = parser;
        handshake.resolve();
        if (!rest.length) return;
        data = rest;
      }
      this.receive(data);
    };
    this.transportClosed = new Promise((resolve) => {
      transport.onclose = (error) => {
        handshake.reject(error ?? new HandshakeError("The connection closed during the handshake."));
        resolve();
        if (this.active === transport && this.parse === parser) this.dropped(error);
      };
    });
    try {
      const timer = setTimeout(
        () => handshake.reject(new TimeoutError("Server timeout elapsed without receiving a handshake response.")),
        this.options.serverTimeoutInMilliseconds,
      );
      await Promise.all([
        // Stateful reconnect needs handshake version 2.
        transport.send(handshakeRequest(protocol.name, this.buffer ? 2 : protocol.version)),
        handshakeDone.finally(() => clearTimeout(timer)),
      ]);
    } catch (error) {
      this.active = this.authentication = undefined;
      clearTimeout(this.timeoutTimer);
      await transport.stop();
      throw error;
    }
    this.connectionId = connectionId ?? null;
    this.resetTimeout();
    if (!this.longPolling) this.send({ type: T.Ping }).catch(ignore);
  }

  private receive(data: Data) {
    let messages: HubMessage[];
    try {
      messages = this.parse!(data);
    } catch (error) {
      this.closeError = error as Error;
      this.active?.stop();
      return;
    }
    for (const message of messages) {
      if (this.buffer && !this.buffer.accept(message)) continue;
      this.log(LogLevel.Trace, `receive ${JSON.stringify(message)}`);
      if (message.type !== T.Close) this.hub.message(message);
      else {
        this.closeError = message.error
          ? new ConnectionClosedError(`Server returned an error on close: ${message.error}`)
          : undefined;
        this.allowReconnect = !!message.allowReconnect;
        this.active?.stop();
      }
    }
  }

  /** The transport closed: resume a stateful session after an unexpected drop, else close. */
  private dropped(error?: Error) {
    const buffer = this.buffer;
    if (buffer && error && !this.closeError && this.state === HubConnectionState.Connected) {
      this.resume(buffer, error);
    } else {
      this.onTransportClose(error);
    }
  }

  /** Reopens the same connection (no negotiate, no handshake), sends Sequence and replays. */
  private async resume(buffer: MessageBuffer, error: Error) {
    const reopen = this.reopen!;
    buffer.pause();
    clearTimeout(this.pingTimer);
    clearTimeout(this.timeoutTimer);
    this.log(LogLevel.Information, `Connection lost (${error.message}); resuming it.`);
    for (const wait of RESUME_DELAYS) {
      await delay(wait, this.lifetime.signal);
      if (this.state !== HubConnectionState.Connected) break;
      let transport!: Transport;
      const parse = this.options.protocol.createParser();
      try {
        await reopen((t) => {
          this.active = transport = t;
          this.parse = parse;
          t.onreceive = (data) => {
            if (!buffer.resuming) this.resetTimeout();
            this.receive(data);
          };
          this.transportClosed = new Promise((resolve) => {
            t.onclose = (e) => {
              resolve();
              if (this.active === t) this.dropped(e);
            };
          });
        });
      } catch (e) {
        this.log(LogLevel.Debug, `Resume attempt failed: ${e}`);
        continue;
      }
      if (this.state !== HubConnectionState.Connected) {
        await transport.stop();
        break;
      }
      try {
        const { sequenceId, messages } = buffer.replay();
        await transport.send(this.options.protocol.write({ type: T.Sequence, sequenceId }));
        for (const data of messages) await transport.send(data);
      } catch {
        return; // it closed again: its onclose resumes once more
      }
      buffer.resuming = false;
      this.resetTimeout();
      this.send({ type: T.Ping }).catch(ignore);
      this.log(LogLevel.Information, "Connection resumed.");
      return;
    }
    if (this.buffer !== buffer || this.state === HubConnectionState.Disconnected) return;
    this.onTransportClose(error);
  }

  private resetTimeout() {
    if (this.longPolling) return;
    clearTimeout(this.timeoutTimer);
    this.timeoutTimer = setTimeout(() => {
      this.closeError = new TimeoutError("Server timeout elapsed without receiving a message from the server.");
      this.active?.stop();
    }, this.options.serverTimeoutInMilliseconds);
  }

  /** Sends a hub message; with stateful reconnect, tracked ones wait while the buffer is full. */
  async send(message: HubMessage): Promise<void> {
    const transport = this.active;
    if (!transport) throw new ConnectionClosedError("Cannot send data if the connection is not in the 'Connected' State.");
    if (!this.longPolling) {
      clearTimeout(this.pingTimer);
      this.pingTimer = setTimeout(
        () => this.send({ type: T.Ping }).catch(ignore),
        this.options.keepAliveIntervalInMilliseconds,
      );
    }
    this.log(LogLevel.Trace, `send ${JSON.stringify(message)}`);
    const data = this.options.protocol.write(message);
    const buffer = this.buffer;
    if (!buffer || !isTracked(message)) {
      if (buffer?.resuming) return; // Ping/Ack/Close on a dropped socket
      return transport.send(data);
    }
    // Tracked: numbered, kept until acked, replayed after a resume; waits while the buffer is full.
    const room = buffer.track(data);
    if (!buffer.resuming) await transport.send(data).catch(ignore); // a lost send is replayed
    await room;
  }

  private onTransportClose(error?: Error) {
    clearTimeout(this.pingTimer);
    clearTimeout(this.timeoutTimer);
    this.active = this.authentication = undefined;
    error = this.closeError ?? error;
    const closed = error ?? new ConnectionClosedError("Invocation canceled due to the underlying connection being closed.");
    this.buffer?.dispose(closed);
    this.buffer = undefined;
    this.hub.closed(closed);
    if (this.state === HubConnectionState.Connecting) return; // start() reports it
    const policy = this.options.reconnectPolicy;
    if (this.state === HubConnectionState.Connected && policy && this.allowReconnect) {
      this.reconnect(policy, error);
    } else {
      this.finish(error);
    }
  }

  private finish(error?: Error) {
    this.state = HubConnectionState.Disconnected;
    this.connectionId = null;
    this.lifetime.abort();
    for (const handler of this.closeHandlers) handler(error);
  }

  /** `error`: why the connection closed; none when the server closed it cleanly (as the official client, onreconnecting then gets `undefined`). */
  private async reconnect(policy: RetryPolicy, error?: Error) {
    this.state = HubConnectionState.Reconnecting;
    this.connectionId = null;
    const started = Date.now();
    let reason = error ?? new ConnectionClosedError("The connection closed.");
    for (const handler of this.reconnectingHandlers) handler(error);
    for (let count = 0; ; count++) {
      const wait = policy.nextRetryDelayInMilliseconds({
        previousRetryCount: count,
        elapsedMilliseconds: Date.now() - started,
        retryReason: reason,
      });
      if (wait === null) return this.finish(reason);
      await delay(wait, this.lifetime.signal);
      if (this.state !== HubConnectionState.Reconnecting) return;
      try {
        await this.connect();
      } catch (error) {
        reason = error as Error;
        if (this.state !== HubConnectionState.Reconnecting) return;
        continue;
      }
      if (this.state !== HubConnectionState.Reconnecting) {
        await this.active?.stop();
        return;
      }
      if (!this.active) continue;
      this.state = HubConnectionState.Connected;
      for (const handler of this.reconnectedHandlers) handler(this.connectionId ?? undefined);
      return;
    }
  }

  async stop(): Promise<void> {
    const state = this.state;
    if (state === HubConnectionState.Disconnected || state === HubConnectionState.Disconnecting) return;
    if (state === HubConnectionState.Connecting) {
      this.state = HubConnectionState.Disconnecting;
      return void (await this.startPromise?.catch(ignore));
    }
    if (state === HubConnectionState.Reconnecting && !this.active) {
      return this.finish(new ConnectionClosedError("The connection was stopped during reconnect."));
    }
    this.state = HubConnectionState.Disconnecting;
    this.allowReconnect = false;
    const transport = this.active;
    if (!transport) return this.finish();
    if (this.buffer?.resuming) return this.onTransportClose(); // the socket is gone already
    await this.send({ type: T.Close }).catch(ignore);
    await transport.stop();
    await this.transportClosed;
  }
}
