import { TimeoutError, TransportError, whenAborted } from "./errors.js";
import type { Data, TransportContext } from "./transport.js";

/** Appends `query` (already encoded) to a URL that may have a query string. */
export const withQuery = (url: string, query: string) => url + (url.includes("?") ? "&" : "?") + query;

/** Appends `/segment` to a URL's path (one slash between), keeping its query and fragment. */
export const withPath = (url: string, segment: string) => url.replace(/\/?(?=[?#]|$)/, "/" + segment);

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
  timeout = cx.timeout ?? 100_000,
): Promise<Response> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = timeout && setTimeout(() => ((timedOut = true), controller.abort()), timeout);
  const release = whenAborted(signal, () => controller.abort());
  try {
    // Called unbound: a browser's fetch must not get `cx` as `this`.
    return await (cx.fetch ?? fetch)(url, {
      method,
      body: body as BodyInit | undefined,
      headers: { "X-Requested-With": "XMLHttpRequest", ...(await cx.headers()), ...extra },
      credentials: "include",
      signal: controller.signal,
    });
  } catch (error) {
    throw timedOut ? new TimeoutError("A timeout occurred.") : error;
  } finally {
    clearTimeout(timer);
    release();
  }
}

/** The error of a non-success response. */
export function httpFailure(response: Response, what: string) {
  return new TransportError(`${what} failed: ${response.status} ${response.statusText}`);
}
