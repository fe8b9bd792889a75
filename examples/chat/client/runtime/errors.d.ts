/** Base class of every error this client raises. */
export declare class HubClientError extends Error {
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** Negotiation failed: a non-200 status (see `status`), an `error` field, or too many redirects. */
export declare class NegotiateError extends HubClientError {
    readonly status?: number | undefined;
    constructor(message: string, status?: number | undefined);
}
/** The server refused the handshake (`Server returned handshake error: …`). */
export declare class HandshakeError extends HubClientError {
}
/** A hub method failed on the server: the message is the server's Completion error text. */
export declare class HubError extends HubClientError {
}
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
export declare class ConnectionClosedError extends HubClientError {
}
/** The server went silent for longer than the server timeout. */
export declare class TimeoutError extends HubClientError {
}
/** The operation was cancelled through its AbortSignal. */
export declare class AbortError extends HubClientError {
    constructor(message?: string);
}
/**
 * Runs `onAbort` when `signal` aborts, at once if it has; returns what stops listening (call it
 * when the operation ends).
 */
export declare function whenAborted(signal: AbortSignal | undefined, onAbort: () => void): () => void;
/** Swallows a rejection nobody waits for (`promise.catch(ignore)`). */
export declare const ignore: () => void;
/** A transport could not connect or failed. */
export declare class TransportError extends HubClientError {
}
