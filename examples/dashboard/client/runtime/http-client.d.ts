import { TransportError } from "./errors.js";
import type { Data, TransportContext } from "./transport.js";
/** Appends `query` (already encoded) to a URL that may have a query string. */
export declare const withQuery: (url: string, query: string) => string;
/** Appends `/segment` to a URL's path (one slash between), keeping its query and fragment. */
export declare const withPath: (url: string, segment: string) => string;
/**
 * An HTTP request with the SignalR headers; rejects on network errors only, and with
 * TimeoutError when no response came within `timeout` ms (default: the context's; 0 = none).
 */
export declare function request(cx: TransportContext, method: string, url: string, body?: Data, signal?: AbortSignal, extra?: Record<string, string>, timeout?: number): Promise<Response>;
/** The error of a non-success response. */
export declare function httpFailure(response: Response, what: string): TransportError;
