/** Base class of every error this client raises. */
export class HubClientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Negotiation failed: a non-200 status (see `status`), an `error` field, or too many redirects. */
export class NegotiateError extends HubClientError {
  declare readonly status?: number | undefined;
  constructor(message: string, status?: number | undefined) {
    super(message);
    this.status = status;
  }
}

/** The server refused the handshake (`Server returned handshake error: …`). */
export class HandshakeError extends HubClientError {}

/** A hub method failed on the server: the message is the server's Completion error text. */
export class HubError extends HubClientError {}

/**
 * A HubError that carries a hub method's typed error (a Rust `ClientError`): `type` is its Rust
 * type's name, `error` its value. Generated packages export a guard per type
 * (`isChatError(e)`) that narrows a caught error to it.
 */
export interface HubMethodError<E = unknown> extends HubError {
  readonly type: string;
  readonly error: E;
}

/** The connection closed (or could not start) while the operation was pending. */
export class ConnectionClosedError extends HubClientError {}

/** The server went silent for longer than the server timeout. */
export class TimeoutError extends HubClientError {}

/** The operation was cancelled through its AbortSignal. */
export class AbortError extends HubClientError {
  constructor(message = "The operation was aborted.") {
    super(message);
  }
}

/**
 * Runs `onAbort` when `signal` aborts, at once if it has; returns what stops listening (call it
 * when the operation ends).
 */
export function whenAborted(signal: AbortSignal | undefined, onAbort: () => void): () => void {
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort); // a signal aborts once
  return () => signal?.removeEventListener("abort", onAbort);
}

/** Swallows a rejection nobody waits for (`promise.catch(ignore)`). */
export const ignore = () => {};

/** A transport could not connect or failed. */
export class TransportError extends HubClientError {}
