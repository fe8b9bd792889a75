import { TimeoutError, TransportError } from "./errors.js";
import type { Data, TransportContext } from "./transport.js";

/** Appends `query` (already encoded) to a URL that may have a query string. */
export const withQuery = (url: string, query: string) => url + (url.includes("?") ? "&" : "?") + query;

/**
 * An HTTP request with the SignalR headers; rejects on network errors only, and with
 * TimeoutError when no response came within `timeout` ms (default: the context's; 0 = none).
 */
export async function request(
  cx: TransportContext,
  method: string,
  url: string,
  body?: Data,
  signal?: AbortSignal,
  extra?: Record<string, string>,
  timeout = cx.timeout,
): Promise<Response> {
  const controller = timeout ? new AbortController() : undefined;
  let timedOut = false;
  const timer = timeout && setTimeout(() => ((timedOut = true), controller!.abort()), timeout);
  const forward = () => controller?.abort();
  if (signal?.aborted) forward();
  signal?.addEventListener("abort", forward);
  try {
    return await cx.fetch(url, {
      method,
      body: body as BodyInit | undefined,
      headers: { "X-Requested-With": "XMLHttpRequest", ...(await cx.headers()), ...extra },
      credentials: "include",
      signal: controller?.signal ?? signal,
    });
  } catch (error) {
    throw timedOut ? new TimeoutError("A timeout occurred.") : error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", forward);
  }
}

/** The error of a non-success response. */
export function httpFailure(response: Response, what: string) {
  return new TransportError(`${what} failed: ${response.status} ${response.statusText}`);
}
