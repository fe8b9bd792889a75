import { openConnection, type ConnectionOptions } from "./connection.js";
import { AbortError, ConnectionClosedError, HandshakeError, HubError, TimeoutError } from "./errors.js";
import { type HubMessage, type HubProtocol, JsonHubProtocol, MessageType as T, RS } from "./protocol.js";
import type { Data, Transport } from "./transports.js";

export const HubConnectionState = {
  Disconnected: "Disconnected",
  Connecting: "Connecting",
  Connected: "Connected",
  Disconnecting: "Disconnecting",
  Reconnecting: "Reconnecting",
} as const;
export type HubConnectionState = (typeof HubConnectionState)[keyof typeof HubConnectionState];

export interface RetryContext {
  previousRetryCount: number;
  elapsedMilliseconds: number;
  retryReason: Error;
}
/** Decides the delay before each reconnect attempt; `null` gives up. */
export interface RetryPolicy {
  nextRetryDelayInMilliseconds(context: RetryContext): number | null;
}

/** Log levels, as in `@microsoft/signalr`. */
export const LogLevel = { Trace: 0, Debug: 1, Information: 2, Warning: 3, Error: 4, Critical: 5, None: 6 } as const;
export interface Logger {
  log(level: number, message: string): void;
}

export interface HubConnectionOptions {
  protocol: HubProtocol;
  reconnectPolicy?: RetryPolicy;
  keepAliveIntervalInMilliseconds: number;
  serverTimeoutInMilliseconds: number;
  logger?: Logger;
  /** Set by `withStatefulReconnect`: the send buffer in bytes. */
  statefulReconnectBufferSize?: number;
}

/** Stateful reconnect bookkeeping of one logical connection. */
interface Session {
  /** Sent tracked messages not acked yet, oldest first. */
  buffer: { id: number; data: Data; size: number; release(): void; fail(error: Error): void }[];
  bytes: number;
  /** Tracked messages sent so far (the last id). */
  sent: number;
  /** The id the next incoming tracked message has; the highest one processed. */
  nextIn: number;
  latestIn: number;
  waitSequence: boolean;
  resuming: boolean;
  ackTimer?: ReturnType<typeof setTimeout>;
  reopen: (setup: (transport: Transport) => void) => Promise<Transport>;
}

const RESUME_DELAYS = [0, 200, 1000, 2000];

export type Handler = (...args: any[]) => unknown;

/** A subscriber of a server-to-client stream. */
export interface StreamSubscriber<T> {
  next(value: T): void;
  error?(error: Error): void;
  complete?(): void;
}

/** A server-to-client stream: iterate it with `for await`, or `subscribe` to it (one consumer). */
export interface HubStream<T> extends AsyncIterable<T> {
  subscribe(subscriber: StreamSubscriber<T>): { dispose(): void };
}

interface Pending {
  item?(value: unknown): void;
  done(error?: Error, result?: unknown): void;
}

const isIterable = (value: unknown): value is AsyncIterable<unknown> =>
  value != null && typeof value === "object" && Symbol.asyncIterator in value;

/** Splits a trailing AbortSignal off the argument list. */
function takeSignal(args: unknown[]): [unknown[], AbortSignal | undefined] {
  const last = args[args.length - 1];
  return typeof AbortSignal !== "undefined" && last instanceof AbortSignal
    ? [args.slice(0, -1), last]
    : [args, undefined];
}

const delay = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

/** A connection to a hub. Build one with `HubConnectionBuilder`. */
export class HubConnection {
  private _state: HubConnectionState = HubConnectionState.Disconnected;
  private _connectionId: string | null = null;
  private transport?: Transport;
  private parse?: (chunk: Data) => HubMessage[];
  private readonly handlers = new Map<string, Handler[]>();
  private readonly pending = new Map<string, Pending>();
  private nextId = 0;
  private closeHandlers: ((error?: Error) => void)[] = [];
  private reconnectingHandlers: ((error?: Error) => void)[] = [];
  private reconnectedHandlers: ((connectionId?: string) => void)[] = [];
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
  private session?: Session;

  /** @internal Use HubConnectionBuilder. */
  constructor(
    private readonly url: string,
    private readonly connectionOptions: ConnectionOptions,
    private readonly options: HubConnectionOptions,
  ) {}

  get state(): HubConnectionState {
    return this._state;
  }
  /** The id from negotiate (null before start, with skipNegotiation, and after stop). */
  get connectionId(): string | null {
    return this._connectionId;
  }
  get protocol(): HubProtocol {
    return this.options.protocol;
  }

  private log(level: number, message: string) {
    this.options.logger?.log(level, message);
  }

  /** Starts the connection; rejects with NegotiateError, HandshakeError or a transport error. */
  async start(): Promise<void> {
    if (this._state !== HubConnectionState.Disconnected) {
      throw new Error("Cannot start a HubConnection that is not in the 'Disconnected' state.");
    }
    this._state = HubConnectionState.Connecting;
    this.lifetime = new AbortController();
    this.startPromise = this.connect();
    try {
      await this.startPromise;
    } catch (error) {
      this._state = HubConnectionState.Disconnected;
      this._connectionId = null;
      throw error;
    }
    if (this._state !== HubConnectionState.Connecting) {
      // stop() was called while starting.
      const transport = this.transport;
      this.transport = undefined;
      await transport?.stop();
      this._state = HubConnectionState.Disconnected;
      this._connectionId = null;
      throw new AbortError("The connection was stopped during negotiation.");
    }
    this._state = HubConnectionState.Connected;
  }

  /** Negotiate, transport, handshake. On success the connection is live. */
  private async connect(): Promise<void> {
    const protocol = this.options.protocol;
    const bufferSize = this.options.statefulReconnectBufferSize;
    const { transport, connectionId, kind, reopen } = await openConnection(
      this.url,
      this.connectionOptions,
      protocol.transferFormat,
      bufferSize !== undefined,
    );
    this.transport = transport;
    this.generation = {};
    this.session = reopen
      ? { buffer: [], bytes: 0, sent: 0, nextIn: 1, latestIn: 0, waitSequence: false, resuming: false, reopen }
      : undefined;
    this.longPolling = kind === "LongPolling";
    this.closeError = undefined;
    this.allowReconnect = true;
    let handshake!: { resolve(): void; reject(e: Error): void };
    const handshakeDone = new Promise<void>((resolve, reject) => (handshake = { resolve, reject }));
    let buffer = new Uint8Array(0);
    let text = "";
    const parser = protocol.createParser();
    this.parse = undefined;
    transport.onreceive = (data) => {
      this.resetTimeout();
      if (!this.parse) {
        // The handshake reply is JSON + ␞ whatever the protocol; what follows it is hub messages.
        let rest: Data;
        if (typeof data === "string") {
          text += data;
          const end = text.indexOf(RS);
          if (end < 0) return;
          rest = text.slice(end + 1);
          text = text.slice(0, end);
        } else {
          const joined = new Uint8Array(buffer.length + data.length);
          joined.set(buffer);
          joined.set(data, buffer.length);
          const end = joined.indexOf(0x1e);
          if (end < 0) return void (buffer = joined);
          text = new TextDecoder().decode(joined.subarray(0, end));
          rest = joined.subarray(end + 1);
        }
        let reply: { error?: string; type?: number };
        try {
          reply = JSON.parse(text);
          if (reply.type) throw new Error("Expected a handshake response from the server.");
        } catch (error) {
          return handshake.reject(new HandshakeError((error as Error).message));
        }
        if (reply.error) return handshake.reject(new HandshakeError(`Server returned handshake error: ${reply.error}`));
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
        if (this.transport === transport && this.parse === parser) this.dropped(error);
      };
    });
    try {
      const timer = setTimeout(
        () => handshake.reject(new TimeoutError("Server timeout elapsed without receiving a handshake response.")),
        this.options.serverTimeoutInMilliseconds,
      );
      await Promise.all([
        // Stateful reconnect needs handshake version 2.
        transport.send(JSON.stringify({ protocol: protocol.name, version: this.session ? 2 : protocol.version }) + RS),
        handshakeDone.finally(() => clearTimeout(timer)),
      ]);
    } catch (error) {
      this.transport = undefined;
      clearTimeout(this.timeoutTimer);
      await transport.stop();
      throw error;
    }
    this._connectionId = connectionId ?? null;
    this.resetTimeout();
    if (!this.longPolling) this.sendMessage({ type: T.Ping }).catch(() => {});
  }

  private receive(data: Data) {
    let messages: HubMessage[];
    try {
      messages = this.parse!(data);
    } catch (error) {
      this.closeError = error as Error;
      this.transport?.stop();
      return;
    }
    for (const message of messages) if (this.accept(message)) this.dispatch(message);
  }

  /** Stateful reconnect: handles Ack/Sequence and drops what must not be processed. */
  private accept(message: HubMessage): boolean {
    const session = this.session;
    if (!session) return true;
    const type = message.type;
    if (session.waitSequence) {
      if (type !== T.Sequence) return false;
      session.waitSequence = false;
    }
    if (type === T.Sequence) {
      if (message.sequenceId! > session.nextIn) {
        this.closeError = new ConnectionClosedError("Sequence ID greater than amount of messages we've received.");
        this.transport?.stop();
      } else session.nextIn = message.sequenceId!;
      return false;
    }
    if (type === T.Ack) {
      let i = 0;
      for (const item of session.buffer) {
        if (item.id > message.sequenceId!) break;
        session.bytes -= item.size;
        i++;
      }
      session.buffer.splice(0, i).forEach((item) => item.release());
      // Sends waiting for room go on while the unacked bytes stay under the limit.
      let bytes = 0;
      for (const item of session.buffer) {
        if ((bytes += item.size) >= this.options.statefulReconnectBufferSize!) break;
        item.release();
      }
      return false;
    }
    if (type > T.CancelInvocation) return true;
    const id = session.nextIn++;
    if (id <= session.latestIn) return false; // already processed before the reconnect
    session.latestIn = id;
    session.ackTimer ??= setTimeout(() => {
      session.ackTimer = undefined;
      if (!session.resuming && this.session === session) {
        this.sendMessage({ type: T.Ack, sequenceId: session.latestIn }).catch(() => {});
      }
    }, 1000);
    return true;
  }

  /** The transport closed: resume a stateful session after an unexpected drop, else close. */
  private dropped(error?: Error) {
    const session = this.session;
    if (session && error && !this.closeError && this._state === HubConnectionState.Connected) {
      this.resume(session, error);
    } else {
      this.onTransportClose(error);
    }
  }

  /** Reopens the same connection (no negotiate, no handshake), sends Sequence and replays. */
  private async resume(session: Session, error: Error) {
    session.resuming = session.waitSequence = true;
    clearTimeout(this.pingTimer);
    clearTimeout(this.timeoutTimer);
    this.log(LogLevel.Information, `Connection lost (${error.message}); resuming it.`);
    const write = (m: HubMessage) => this.options.protocol.write(m);
    for (const wait of RESUME_DELAYS) {
      await delay(wait, this.lifetime.signal);
      if (this._state !== HubConnectionState.Connected) break;
      let transport!: Transport;
      const parse = this.options.protocol.createParser();
      try {
        await session.reopen((t) => {
          this.transport = transport = t;
          this.parse = parse;
          t.onreceive = (data) => {
            if (!session.resuming) this.resetTimeout();
            this.receive(data);
          };
          this.transportClosed = new Promise((resolve) => {
            t.onclose = (e) => {
              resolve();
              if (this.transport === t) this.dropped(e);
            };
          });
        });
      } catch (e) {
        this.log(LogLevel.Debug, `Resume attempt failed: ${e}`);
        continue;
      }
      if (this._state !== HubConnectionState.Connected) {
        await transport.stop();
        break;
      }
      try {
        await transport.send(write({ type: T.Sequence, sequenceId: session.buffer[0]?.id ?? session.sent + 1 }));
        for (const item of [...session.buffer]) await transport.send(item.data);
      } catch {
        return; // it closed again: its onclose resumes once more
      }
      session.resuming = false;
      this.resetTimeout();
      this.sendMessage({ type: T.Ping }).catch(() => {});
      this.log(LogLevel.Information, "Connection resumed.");
      return;
    }
    if (this.session !== session || this._state === HubConnectionState.Disconnected) return;
    this.onTransportClose(error);
  }

  private resetTimeout() {
    if (this.longPolling) return;
    clearTimeout(this.timeoutTimer);
    this.timeoutTimer = setTimeout(() => {
      this.closeError = new TimeoutError("Server timeout elapsed without receiving a message from the server.");
      this.transport?.stop();
    }, this.options.serverTimeoutInMilliseconds);
  }

  private async sendMessage(message: HubMessage): Promise<void> {
    if (!this.transport) throw new ConnectionClosedError("Cannot send data if the connection is not in the 'Connected' State.");
    if (!this.longPolling) {
      clearTimeout(this.pingTimer);
      this.pingTimer = setTimeout(
        () => this.sendMessage({ type: T.Ping }).catch(() => {}),
        this.options.keepAliveIntervalInMilliseconds,
      );
    }
    this.log(LogLevel.Trace, `send ${JSON.stringify(message)}`);
    const data = this.options.protocol.write(message);
    const session = this.session;
    if (!session || message.type > T.CancelInvocation) {
      if (session?.resuming) return; // Ping/Ack/Close on a dropped socket
      return this.transport.send(data);
    }
    // Tracked: numbered, kept until acked, replayed after a resume; waits while the buffer is full.
    const size = typeof data === "string" ? data.length : data.byteLength;
    let room: Promise<void> | undefined;
    let item!: Session["buffer"][number];
    room = new Promise<void>((release, fail) => (item = { id: ++session.sent, data, size, release, fail }));
    session.buffer.push(item);
    if ((session.bytes += size) < this.options.statefulReconnectBufferSize!) item.release();
    if (!session.resuming) await this.transport.send(data).catch(() => {}); // a lost send is replayed
    await room;
  }

  private dispatch(message: HubMessage) {
    this.log(LogLevel.Trace, `receive ${JSON.stringify(message)}`);
    switch (message.type) {
      case T.Invocation:
        this.invokeHandlers(message);
        break;
      case T.StreamItem:
        this.pending.get(message.invocationId!)?.item?.(message.item);
        break;
      case T.Completion: {
        const call = this.pending.get(message.invocationId!);
        if (!call) break;
        this.pending.delete(message.invocationId!);
        call.done(message.error != null ? new HubError(message.error) : undefined, message.result);
        break;
      }
      case T.Close:
        this.closeError = message.error
          ? new ConnectionClosedError(`Server returned an error on close: ${message.error}`)
          : undefined;
        this.allowReconnect = !!message.allowReconnect;
        this.transport?.stop();
        break;
    }
  }

  private async invokeHandlers(message: HubMessage) {
    const handlers = [...(this.handlers.get(message.target!.toLowerCase()) ?? [])];
    const id = message.invocationId;
    let result: unknown;
    let error: string | undefined;
    let results = 0;
    for (const handler of handlers) {
      try {
        const value = await handler.apply(this, message.arguments ?? []);
        if (id && value !== undefined && results++ === 0) result = value;
      } catch (e) {
        this.log(LogLevel.Error, `A callback for the method '${message.target}' threw: ${e}`);
        error ??= `${e}`;
      }
    }
    if (!id) return;
    if (results > 1) error = "Client provided multiple results.";
    else if (error === undefined && results === 0) error = "Client didn't provide a result.";
    const reply: HubMessage = { type: T.Completion, invocationId: id };
    if (error !== undefined) reply.error = error;
    else reply.result = result;
    this.sendMessage(reply).catch(() => {});
  }

  private onTransportClose(error?: Error) {
    clearTimeout(this.pingTimer);
    clearTimeout(this.timeoutTimer);
    this.transport = undefined;
    error = this.closeError ?? error;
    const closed = error ?? new ConnectionClosedError("Invocation canceled due to the underlying connection being closed.");
    const session = this.session;
    this.session = undefined;
    if (session) {
      clearTimeout(session.ackTimer);
      for (const item of session.buffer) item.fail(closed);
    }
    for (const call of this.pending.values()) call.done(closed);
    this.pending.clear();
    if (this._state === HubConnectionState.Connecting) return; // start() reports it
    const policy = this.options.reconnectPolicy;
    if (this._state === HubConnectionState.Connected && policy && this.allowReconnect) {
      this.reconnect(policy, error ?? new ConnectionClosedError("The connection closed."));
    } else {
      this.finish(error);
    }
  }

  private finish(error?: Error) {
    this._state = HubConnectionState.Disconnected;
    this._connectionId = null;
    this.lifetime.abort();
    for (const handler of this.closeHandlers) handler(error);
  }

  private async reconnect(policy: RetryPolicy, reason: Error) {
    this._state = HubConnectionState.Reconnecting;
    this._connectionId = null;
    const started = Date.now();
    for (const handler of this.reconnectingHandlers) handler(reason);
    for (let count = 0; ; count++) {
      const wait = policy.nextRetryDelayInMilliseconds({
        previousRetryCount: count,
        elapsedMilliseconds: Date.now() - started,
        retryReason: reason,
      });
      if (wait === null) return this.finish(reason);
      await delay(wait, this.lifetime.signal);
      if (this._state !== HubConnectionState.Reconnecting) return;
      try {
        await this.connect();
      } catch (error) {
        reason = error as Error;
        if (this._state !== HubConnectionState.Reconnecting) return;
        continue;
      }
      if (this._state !== HubConnectionState.Reconnecting) {
        await this.transport?.stop();
        return;
      }
      if (!this.transport) continue;
      this._state = HubConnectionState.Connected;
      for (const handler of this.reconnectedHandlers) handler(this._connectionId ?? undefined);
      return;
    }
  }

  /** Stops the connection: sends Close, closes the transport and waits for it. */
  async stop(): Promise<void> {
    const state = this._state;
    if (state === HubConnectionState.Disconnected || state === HubConnectionState.Disconnecting) return;
    if (state === HubConnectionState.Connecting) {
      this._state = HubConnectionState.Disconnecting;
      return void (await this.startPromise?.catch(() => {}));
    }
    if (state === HubConnectionState.Reconnecting && !this.transport) {
      return this.finish(new ConnectionClosedError("The connection was stopped during reconnect."));
    }
    this._state = HubConnectionState.Disconnecting;
    this.allowReconnect = false;
    const transport = this.transport;
    if (!transport) return this.finish();
    if (this.session?.resuming) return this.onTransportClose(); // the socket is gone already
    await this.sendMessage({ type: T.Close }).catch(() => {});
    await transport.stop();
    await this.transportClosed;
  }

  /** Registers a handler for a client method (names match case-insensitively). */
  on(methodName: string, handler: Handler): void {
    const key = methodName.toLowerCase();
    this.handlers.set(key, [...(this.handlers.get(key) ?? []), handler]);
  }

  /** Removes one handler, or every handler of the method. */
  off(methodName: string, handler?: Handler): void {
    const key = methodName.toLowerCase();
    const rest = handler ? (this.handlers.get(key) ?? []).filter((h) => h !== handler) : [];
    if (rest.length) this.handlers.set(key, rest);
    else this.handlers.delete(key);
  }

  onclose(callback: (error?: Error) => void): void {
    this.closeHandlers.push(callback);
  }
  onreconnecting(callback: (error?: Error) => void): void {
    this.reconnectingHandlers.push(callback);
  }
  onreconnected(callback: (connectionId?: string) => void): void {
    this.reconnectedHandlers.push(callback);
  }

  /** Builds an invocation; async-iterable arguments become upload streams. */
  private prepare(type: number, target: string, args: unknown[], id?: string) {
    const streams: AsyncIterable<unknown>[] = [];
    const streamIds: string[] = [];
    const plain = args.filter((arg) => {
      if (!isIterable(arg)) return true;
      streams.push(arg);
      streamIds.push(String(this.nextId++));
      return false;
    });
    const message: HubMessage = { type, target, arguments: plain };
    if (id !== undefined) message.invocationId = id;
    if (streamIds.length) message.streamIds = streamIds;
    return { message, upload: () => streams.forEach((s, i) => this.upload(s, streamIds[i])) };
  }

  private async upload(source: AsyncIterable<unknown>, id: string) {
    const generation = this.generation;
    let error: string | undefined;
    try {
      for await (const item of source) {
        if (this.generation !== generation || !this.transport) return;
        await this.sendMessage({ type: T.StreamItem, invocationId: id, item });
      }
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    if (this.generation !== generation || !this.transport) return;
    const end: HubMessage = { type: T.Completion, invocationId: id };
    if (error !== undefined) end.error = error;
    await this.sendMessage(end).catch(() => {});
  }

  /** Calls a hub method without waiting for it (a trailing AbortSignal is ignored). */
  async send(methodName: string, ...args: unknown[]): Promise<void> {
    const { message, upload } = this.prepare(T.Invocation, methodName, takeSignal(args)[0]);
    await this.sendMessage(message);
    upload();
  }

  /**
   * Calls a hub method and resolves with its result; rejects with HubError for a server error.
   * A trailing AbortSignal argument cancels it: CancelInvocation goes out, the call rejects with AbortError.
   */
  invoke<R = any>(methodName: string, ...args: unknown[]): Promise<R> {
    const [values, signal] = takeSignal(args);
    const id = String(this.nextId++);
    const { message, upload } = this.prepare(T.Invocation, methodName, values, id);
    return new Promise<R>((resolve, reject) => {
      if (signal?.aborted) return reject(new AbortError());
      const onAbort = () => {
        if (!this.pending.delete(id)) return;
        this.sendMessage({ type: T.CancelInvocation, invocationId: id }).catch(() => {});
        reject(new AbortError());
      };
      this.pending.set(id, {
        done: (error, result) => {
          signal?.removeEventListener("abort", onAbort);
          error ? reject(error) : resolve(result as R);
        },
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      this.sendMessage(message).then(upload, (error) => {
        this.pending.delete(id);
        reject(error);
      });
    });
  }

  /**
   * Calls a streaming hub method. The invocation goes out at once; items are buffered until
   * consumed. Breaking out of the loop, `dispose()` or a trailing AbortSignal cancels it.
   */
  stream<I = any>(methodName: string, ...args: unknown[]): HubStream<I> {
    const [values, signal] = takeSignal(args);
    const id = String(this.nextId++);
    const { message, upload } = this.prepare(T.StreamInvocation, methodName, values, id);
    const items: I[] = [];
    let end: { error?: Error } | undefined;
    let wake: (() => void) | undefined;
    const finish = (error?: Error) => {
      if (end) return;
      end = { error };
      signal?.removeEventListener("abort", onAbort);
      wake?.();
    };
    const cancel = () => {
      if (this.pending.delete(id)) this.sendMessage({ type: T.CancelInvocation, invocationId: id }).catch(() => {});
    };
    const onAbort = () => {
      cancel();
      finish(new AbortError());
    };
    if (signal?.aborted) finish(new AbortError());
    else {
      this.pending.set(id, {
        item: (value) => {
          items.push(value as I);
          wake?.();
        },
        done: (error) => finish(error),
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      this.sendMessage(message).then(upload, (error) => {
        this.pending.delete(id);
        finish(error);
      });
    }
    const iterator: AsyncIterator<I> = {
      next: async () => {
        while (!items.length && !end) await new Promise<void>((resolve) => (wake = resolve));
        if (items.length) return { value: items.shift()!, done: false };
        if (end!.error) throw end!.error;
        return { value: undefined, done: true };
      },
      return: async () => {
        cancel();
        finish();
        items.length = 0;
        return { value: undefined, done: true };
      },
    };
    return {
      [Symbol.asyncIterator]: () => iterator,
      subscribe(subscriber) {
        let disposed = false;
        (async () => {
          try {
            for (;;) {
              const next = await iterator.next();
              if (disposed) return;
              if (next.done) return subscriber.complete?.();
              subscriber.next(next.value);
            }
          } catch (error) {
            if (!disposed) subscriber.error?.(error as Error);
          }
        })();
        return {
          dispose() {
            disposed = true;
            iterator.return!();
          },
        };
      },
    };
  }
}

/** The default automatic-reconnect delays. */
export const DEFAULT_RETRY_DELAYS = [0, 2000, 10000, 30000];

/** Configures and builds a HubConnection. */
export class HubConnectionBuilder {
  private url?: string;
  private connectionOptions: ConnectionOptions = {};
  private options: HubConnectionOptions = {
    protocol: new JsonHubProtocol(),
    keepAliveIntervalInMilliseconds: 15_000,
    serverTimeoutInMilliseconds: 30_000,
  };

  /** The hub URL, plus transports, skipNegotiation, token factory, headers, fetch/WebSocket. */
  withUrl(url: string, options: ConnectionOptions | number = {}): this {
    this.url = url;
    this.connectionOptions = typeof options === "number" ? { transport: options } : options;
    return this;
  }
  withHubProtocol(protocol: HubProtocol): this {
    this.options.protocol = protocol;
    return this;
  }
  /** Reconnect after a lost connection: delays (default [0, 2000, 10000, 30000]) or a policy. */
  withAutomaticReconnect(retry: number[] | RetryPolicy = DEFAULT_RETRY_DELAYS): this {
    this.options.reconnectPolicy = Array.isArray(retry)
      ? { nextRetryDelayInMilliseconds: ({ previousRetryCount: n }) => retry[n] ?? null }
      : retry;
    return this;
  }
  /**
   * Stateful reconnect (WebSockets, when the server agrees): a dropped socket is reopened for the
   * same connection and unacknowledged messages are replayed, without reconnect events.
   * `bufferSize`: bytes of unacknowledged messages before sends wait (default 100 000).
   */
  withStatefulReconnect(options: { bufferSize?: number } = {}): this {
    this.options.statefulReconnectBufferSize = options.bufferSize ?? 100_000;
    return this;
  }
  withKeepAliveInterval(milliseconds: number): this {
    this.options.keepAliveIntervalInMilliseconds = milliseconds;
    return this;
  }
  withServerTimeout(milliseconds: number): this {
    this.options.serverTimeoutInMilliseconds = milliseconds;
    return this;
  }
  configureLogging(logger: Logger | ((level: number, message: string) => void)): this {
    this.options.logger = typeof logger === "function" ? { log: logger } : logger;
    return this;
  }
  build(): HubConnection {
    if (!this.url) throw new Error("The 'HubConnectionBuilder.withUrl' method must be called before building the connection.");
    return new HubConnection(this.url, this.connectionOptions, { ...this.options });
  }
}
