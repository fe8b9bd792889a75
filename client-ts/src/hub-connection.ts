import { type AuthenticationRefresher, createAuthenticationRefresher } from "./authentication-refresh.js";
import {
  ConnectionLifecycle,
  type HubConnectionOptions,
  type HubConnectionState,
  S,
  stateName,
} from "./connection-lifecycle.js";
import { AbortError, HubError, ignore, whenAborted } from "./errors.js";
import type { ConnectionOptions } from "./http-connection.js";
import { Level } from "./logger.js";
import { type HubMessage, type HubProtocol, T } from "./protocol.js";
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

/**
 * A Completion's error: a HubError, which is a HubMethodError when the server sent a typed error
 * (its `hubs-error` header: `{"type": …, "error": …}`).
 */
function hubError(message: HubMessage): HubError {
  const error = new HubError(message.error!);
  try {
    Object.assign(error, JSON.parse(message.headers?.["hubs-error"]!));
  } catch {}
  return error;
}

/** Splits a trailing AbortSignal off the argument list. */
function takeSignal(args: unknown[]): [unknown[], AbortSignal | undefined] {
  const last = args.at(-1);
  return last instanceof AbortSignal ? [args.slice(0, -1), last] : [args, undefined];
}

/**
 * A connection to a hub: calls (`invoke`, `send`, `stream`, uploads), client methods (`on`), state and
 * events. Build one with `HubConnectionBuilder`; the connection itself lives in ConnectionLifecycle.
 */
export class HubConnection {
  readonly #lifecycle: ConnectionLifecycle;
  readonly #refresher: AuthenticationRefresher<HubConnection>;
  readonly #handlers = new Map<string, Handler[]>();
  readonly #pending = new Map<string, Pending>();
  #nextId = 0;

  /** @internal Use HubConnectionBuilder. */
  constructor(url: string, connectionOptions: ConnectionOptions, options: HubConnectionOptions) {
    const lifecycle = (this.#lifecycle = new ConnectionLifecycle(url, connectionOptions, options, {
      message: (message) => this.#dispatch(message),
      closed: (error) => {
        this.#refresher.clear();
        for (const call of this.#pending.values()) call.done(error);
        this.#pending.clear();
      },
    }));
    this.#refresher = createAuthenticationRefresher<HubConnection>(
      this,
      options.authenticationRefresh,
      () => (lifecycle.state === S.Connected ? lifecycle.auth : null),
      (level, message) => lifecycle.log(level, message),
    );
    this.onreconnected(() => this.#refresher.connected());
  }

  get state(): HubConnectionState {
    return stateName(this.#lifecycle.state);
  }
  /** The id from negotiate (null before start, with skipNegotiation, and after stop). */
  get connectionId(): string | null {
    return this.#lifecycle.connectionId;
  }
  /** The transport in use (the one connected after any fallback or reconnect); null unless Connected. */
  get transport(): TransportName | null {
    return this.#lifecycle.state === S.Connected ? this.#lifecycle.transport : null;
  }
  get protocol(): HubProtocol {
    return this.#lifecycle.options.protocol;
  }
  /**
   * The server hub's contract hash, when this client presented one (`withContract`; generated
   * clients do) and the server has one: compare it with the generated package's to see whether
   * the client matches the server it reached.
   */
  get serverContract(): string | undefined {
    return this.#lifecycle.serverContract;
  }

  /** Starts the connection; rejects with NegotiateError, HandshakeError or a transport error. */
  async start(): Promise<void> {
    await this.#lifecycle.start();
    this.#refresher.connected();
  }

  /** Stops the connection: sends Close, closes the transport and waits for it. */
  stop(): Promise<void> {
    this.#refresher.clear();
    return this.#lifecycle.stop();
  }

  /**
   * Refreshes the connection's authentication (`POST {hub}/refresh` with the token factory's
   * credentials) and resolves with their new lifetime in seconds, if the server reported one.
   * Rejects when not Connected, with skipNegotiation, and when the server refuses (the connection
   * keeps its credentials). With automatic refresh on, the next refresh is scheduled from the new lifetime.
   */
  refreshAuthentication(): Promise<number | undefined> {
    return this.#refresher.refresh();
  }

  /** Registers a callback run after each successful authentication refresh. */
  onAuthenticationRefreshed(callback: (context: AuthenticationRefreshedContext) => void): void {
    if (callback) this.#refresher.onAuthenticationRefreshed.push(callback);
  }

  /** Registers a callback run when an authentication refresh fails. */
  onAuthenticationRefreshFailed(callback: (context: AuthenticationRefreshFailedContext) => void): void {
    if (callback) this.#refresher.onAuthenticationRefreshFailed.push(callback);
  }

  onclose(callback: (error?: Error) => void): void {
    this.#lifecycle.onclose.push(callback);
  }
  onreconnecting(callback: (error?: Error) => void): void {
    this.#lifecycle.onreconnecting.push(callback);
  }
  onreconnected(callback: (connectionId?: string) => void): void {
    this.#lifecycle.onreconnected.push(callback);
  }

  /** Registers a handler for a client method (names match case-insensitively). */
  on(methodName: string, handler: Handler): void {
    const key = methodName.toLowerCase();
    this.#handlers.set(key, [...(this.#handlers.get(key) ?? []), handler]);
  }

  /** Removes one handler, or every handler of the method. */
  off(methodName: string, handler?: Handler): void {
    const key = methodName.toLowerCase();
    const rest = handler ? (this.#handlers.get(key) ?? []).filter((h) => h !== handler) : [];
    if (rest.length) this.#handlers.set(key, rest);
    else this.#handlers.delete(key);
  }

  /** Invocations, stream items and completions from the server. */
  #dispatch(message: HubMessage) {
    const { type, invocationId: id } = message;
    const call = this.#pending.get(id!);
    if (type === T.Invocation) this.#invokeHandlers(message);
    else if (type === T.StreamItem) call?.item?.(message.item);
    else if (type === T.Completion && call) {
      this.#pending.delete(id!);
      call.done(message.error != null ? hubError(message) : undefined, message.result);
    }
  }

  /** Runs a client method's handlers; with an invocation id, sends the client result back. */
  async #invokeHandlers(message: HubMessage) {
    // on() and off() replace a method's array, never change it: no copy needed while awaiting.
    const handlers = this.#handlers.get(message.target!.toLowerCase()) ?? [];
    const id = message.invocationId;
    let result: unknown;
    let error: string | undefined;
    let results = 0;
    for (const handler of handlers) {
      try {
        // apply() takes a missing argument list as an empty one.
        const value = await handler.apply(this, message.arguments!);
        if (value !== undefined && results++ === 0) result = value;
      } catch (e) {
        this.#lifecycle.log(Level.Error, `A callback for the method '${message.target}' threw error '${e}'.`);
        error ??= `${e}`;
      }
    }
    if (!id) return;
    if (results > 1) error = "Client provided multiple results.";
    else if (error === undefined && results === 0) error = "Client didn't provide a result.";
    this.#lifecycle.send({ type: T.Completion, invocationId: id, ...(error !== undefined ? { error } : { result }) }).catch(ignore);
  }

  /** Sends an invocation; async-iterable arguments become upload streams, started once it is out. */
  #invoke(type: number, target: string, args: unknown[], id?: string): Promise<void> {
    const uploads = args.filter(isUpload);
    const streamIds = uploads.map(() => String(this.#nextId++));
    return this.#lifecycle.send({
      type,
      target,
      arguments: args.filter((arg) => !isUpload(arg)),
      headers: this.#lifecycle.options.invocationHeaders?.(),
      invocationId: id,
      streamIds: streamIds.length ? streamIds : undefined,
    }).then(() => {
      const live = this.#lifecycle.liveness();
      uploads.forEach((source, i) => sendUpload(source, streamIds[i], (m) => this.#lifecycle.send(m), live));
    });
  }

  /**
   * Starts a call that waits for its Completion (`invoke`, `stream`). `track` gets `cancel`
   * (sends CancelInvocation; false once the call is over) and the trailing AbortSignal, and
   * returns what receives the call's items and end (none: the call is not sent).
   */
  #call(type: number, target: string, args: unknown[], track: (cancel: () => boolean, signal?: AbortSignal) => Pending | void) {
    const [values, signal] = takeSignal(args);
    const id = String(this.#nextId++);
    const call = track(() => {
      if (!this.#pending.delete(id)) return false;
      this.#lifecycle.send({ type: T.CancelInvocation, invocationId: id }).catch(ignore);
      return true;
    }, signal);
    if (!call) return;
    this.#pending.set(id, call);
    this.#invoke(type, target, values, id).catch((error) => {
      this.#pending.delete(id);
      call.done(error);
    });
  }

  /** Calls a hub method without waiting for it (a trailing AbortSignal is ignored). */
  async send(methodName: string, ...args: unknown[]): Promise<void> {
    return this.#invoke(T.Invocation, methodName, takeSignal(args)[0]);
  }

  /**
   * Calls a hub method and resolves with its result; rejects with HubError for a server error.
   * A trailing AbortSignal argument cancels it: CancelInvocation goes out, the call rejects with AbortError.
   */
  invoke<R = any>(methodName: string, ...args: unknown[]): Promise<R> {
    return new Promise<R>((resolve, reject) =>
      this.#call(T.Invocation, methodName, args, (cancel, signal) => {
        if (signal?.aborted) return reject(new AbortError());
        const release = whenAborted(signal, () => cancel() && reject(new AbortError()));
        return {
          done: (error, result) => {
            release();
            error ? reject(error) : resolve(result as R);
          },
        };
      }),
    );
  }

  /**
   * Calls a streaming hub method. The invocation goes out at once; items are buffered until
   * consumed. Breaking out of the loop, `dispose()` or a trailing AbortSignal cancels it.
   */
  stream<I = any>(methodName: string, ...args: unknown[]): HubStream<I> {
    let stream!: HubStream<I>;
    this.#call(T.StreamInvocation, methodName, args, (cancel, signal) => {
      const [created, sink] = createStream<I>(cancel, signal);
      stream = created;
      if (!signal?.aborted) return sink as Pending;
    });
    return stream;
  }
}
