import { AuthenticationRefresher } from "./authentication-refresh.js";
import {
  ConnectionLifecycle,
  type HubConnectionOptions,
  type HubConnectionState,
  HubConnectionState as S,
} from "./connection-lifecycle.js";
import { AbortError, HubError } from "./errors.js";
import type { ConnectionOptions } from "./http-connection.js";
import { LogLevel } from "./logger.js";
import { type HubMessage, type HubProtocol, MessageType as T } from "./protocol.js";
import { createStream, type HubStream, isUpload, sendUpload } from "./stream.js";
import type { TransportName } from "./transport.js";

export type Handler = (...args: any[]) => unknown;

/** What `onAuthenticationRefreshed` callbacks get. */
export interface AuthenticationRefreshedContext {
  /** The connection whose authentication was refreshed. */
  connection: HubConnection;
  /** The new lifetime of the credentials in seconds, if the server reported one. */
  newTokenLifetimeInSeconds?: number;
  /** When the refresh completed. */
  refreshedAt: Date;
}

/** What `onAuthenticationRefreshFailed` callbacks get. */
export interface AuthenticationRefreshFailedContext {
  /** The connection whose refresh failed (it goes on with its old credentials). */
  connection: HubConnection;
  /** Why the refresh failed. */
  error: Error;
}

/** A call waiting for its Completion (and, for a stream, its items). */
interface Pending {
  item?(value: unknown): void;
  done(error?: Error, result?: unknown): void;
}

const ignore = () => {};

/** Splits a trailing AbortSignal off the argument list. */
function takeSignal(args: unknown[]): [unknown[], AbortSignal | undefined] {
  const last = args[args.length - 1];
  return typeof AbortSignal !== "undefined" && last instanceof AbortSignal
    ? [args.slice(0, -1), last]
    : [args, undefined];
}

/**
 * A connection to a hub: calls (`invoke`, `send`, `stream`, uploads), client methods (`on`), state and
 * events. Build one with `HubConnectionBuilder`; the connection itself lives in ConnectionLifecycle.
 */
export class HubConnection {
  private readonly lifecycle: ConnectionLifecycle;
  private readonly refresher: AuthenticationRefresher<HubConnection>;
  private readonly handlers = new Map<string, Handler[]>();
  private readonly pending = new Map<string, Pending>();
  private nextId = 0;

  /** @internal Use HubConnectionBuilder. */
  constructor(url: string, connectionOptions: ConnectionOptions, options: HubConnectionOptions) {
    this.lifecycle = new ConnectionLifecycle(url, connectionOptions, options, {
      message: (message) => this.dispatch(message),
      closed: (error) => {
        this.refresher.clear();
        for (const call of this.pending.values()) call.done(error);
        this.pending.clear();
      },
    });
    this.refresher = new AuthenticationRefresher<HubConnection>(
      this,
      options.authenticationRefresh,
      () => (this.state === S.Connected ? this.lifecycle.authentication : null),
      options.logger,
    );
    this.lifecycle.reconnectedHandlers.push(() => this.refresher.connected());
  }

  get state(): HubConnectionState {
    return this.lifecycle.state;
  }
  /** The id from negotiate (null before start, with skipNegotiation, and after stop). */
  get connectionId(): string | null {
    return this.lifecycle.connectionId;
  }
  /** The transport in use (the one connected after any fallback or reconnect); null unless Connected. */
  get transport(): TransportName | null {
    return this.state === S.Connected ? this.lifecycle.transportName : null;
  }
  get protocol(): HubProtocol {
    return this.lifecycle.options.protocol;
  }

  /** Starts the connection; rejects with NegotiateError, HandshakeError or a transport error. */
  async start(): Promise<void> {
    await this.lifecycle.start();
    this.refresher.connected();
  }

  /** Stops the connection: sends Close, closes the transport and waits for it. */
  stop(): Promise<void> {
    this.refresher.clear();
    return this.lifecycle.stop();
  }

  /**
   * Refreshes the connection's authentication (`POST {hub}/refresh` with the token factory's
   * credentials) and resolves with their new lifetime in seconds, if the server reported one.
   * Rejects when not Connected, with skipNegotiation, and when the server refuses (the connection
   * keeps its credentials). With automatic refresh on, the next refresh is scheduled from the new lifetime.
   */
  refreshAuthentication(): Promise<number | undefined> {
    return this.refresher.refresh();
  }

  /** Registers a callback run after each successful authentication refresh. */
  onAuthenticationRefreshed(callback: (context: AuthenticationRefreshedContext) => void): void {
    if (callback) this.refresher.refreshedHandlers.push(callback);
  }

  /** Registers a callback run when an authentication refresh fails. */
  onAuthenticationRefreshFailed(callback: (context: AuthenticationRefreshFailedContext) => void): void {
    if (callback) this.refresher.failedHandlers.push(callback);
  }

  onclose(callback: (error?: Error) => void): void {
    this.lifecycle.closeHandlers.push(callback);
  }
  onreconnecting(callback: (error?: Error) => void): void {
    this.lifecycle.reconnectingHandlers.push(callback);
  }
  onreconnected(callback: (connectionId?: string) => void): void {
    this.lifecycle.reconnectedHandlers.push(callback);
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

  private sendMessage(message: HubMessage): Promise<void> {
    return this.lifecycle.send(message);
  }

  /** Invocations, stream items and completions from the server. */
  private dispatch(message: HubMessage) {
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
    }
  }

  /** Runs a client method's handlers; with an invocation id, sends the client result back. */
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
        this.lifecycle.log(LogLevel.Error, `A callback for the method '${message.target}' threw: ${e}`);
        error ??= `${e}`;
      }
    }
    if (!id) return;
    if (results > 1) error = "Client provided multiple results.";
    else if (error === undefined && results === 0) error = "Client didn't provide a result.";
    const reply: HubMessage = { type: T.Completion, invocationId: id };
    if (error !== undefined) reply.error = error;
    else reply.result = result;
    this.sendMessage(reply).catch(ignore);
  }

  /** Builds an invocation; async-iterable arguments become upload streams, started by `upload()`. */
  private prepare(type: number, target: string, args: unknown[], id?: string) {
    const uploads: AsyncIterable<unknown>[] = [];
    const streamIds: string[] = [];
    const plain = args.filter((arg) => {
      if (!isUpload(arg)) return true;
      uploads.push(arg);
      streamIds.push(String(this.nextId++));
      return false;
    });
    const message: HubMessage = { type, target, arguments: plain };
    if (id !== undefined) message.invocationId = id;
    if (streamIds.length) message.streamIds = streamIds;
    const upload = () => {
      const live = this.lifecycle.liveness();
      uploads.forEach((source, i) => sendUpload(source, streamIds[i], (m) => this.sendMessage(m), live));
    };
    return { message, upload };
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
        this.sendMessage({ type: T.CancelInvocation, invocationId: id }).catch(ignore);
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
    const { stream, sink } = createStream<I>(() => {
      if (this.pending.delete(id)) this.sendMessage({ type: T.CancelInvocation, invocationId: id }).catch(ignore);
    }, signal);
    if (!signal?.aborted) {
      this.pending.set(id, { item: (value) => sink.item(value as I), done: (error) => sink.done(error) });
      this.sendMessage(message).then(upload, (error) => {
        this.pending.delete(id);
        sink.done(error);
      });
    }
    return stream;
  }
}
