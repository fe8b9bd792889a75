import { type AuthenticationRefreshFeature, createRefresh, tokenLifetime } from "./authentication-refresh.js";
import { NegotiateError, TimeoutError, TransportError } from "./errors.js";
import { request, withPath, withQuery } from "./http-client.js";
import { LongPollingTransport } from "./long-polling-transport.js";
import type { TransferFormat } from "./protocol.js";
import { ServerSentEventsTransport } from "./server-sent-events-transport.js";
import {
  HttpTransportType,
  type Transport,
  type TransportContext,
  type TransportName,
} from "./transport.js";
import { WebSocketTransport } from "./websocket-transport.js";

/** Options of `withUrl`. */
export interface ConnectionOptions {
  /** Allowed transports: a `HttpTransportType` bitmask (default: all three). */
  transport?: number;
  /** Connect a WebSocket straight to the URL without negotiating (WebSockets only). */
  skipNegotiation?: boolean;
  /** Called before each negotiate and transport connect; the token goes out as a bearer. */
  accessTokenFactory?: () => string | undefined | Promise<string | undefined>;
  /** Extra HTTP headers (the WebSocket upgrade gets them only where the implementation allows). */
  headers?: Record<string, string>;
  /** A `fetch` implementation (default: the global one). */
  fetch?: typeof fetch;
  /** A WebSocket constructor (default: the global one; in Node 20, pass `ws`). */
  WebSocket?: unknown;
  /** Timeout of negotiate, POST and DELETE requests in ms (default 100 000; 0 = none). Long polls have their own 100 s. */
  timeout?: number;
}

interface NegotiateResponse {
  connectionId?: string;
  connectionToken?: string;
  negotiateVersion?: number;
  availableTransports?: { transport: string; transferFormats: TransferFormat[] }[];
  url?: string;
  accessToken?: string;
  error?: string;
  ProtocolVersion?: string;
  useStatefulReconnect?: boolean;
  tokenLifetimeSeconds?: number;
}

/** The transports by name (each name is also its `HttpTransportType` flag's). */
const TRANSPORTS: Record<TransportName, new (cx: TransportContext) => Transport> = {
  WebSockets: WebSocketTransport,
  ServerSentEvents: ServerSentEventsTransport,
  LongPolling: LongPollingTransport,
};

const NEGOTIATE_FAILED = "Failed to complete negotiation with the server: ";

/** Reopens a dropped WebSocket of the same connection (stateful reconnect); `setup` wires it before it opens. */
export type Reopen = (setup: (transport: Transport) => void) => Promise<Transport>;

/** A connected transport, with what negotiate said about it. */
export interface OpenConnection {
  transport: Transport;
  name: TransportName;
  connectionId?: string;
  /** Set when the server agreed to stateful reconnect. */
  reopen?: Reopen;
  /** Authentication refresh (`POST {hub}/refresh`): set when the connection was negotiated. */
  auth?: AuthenticationRefreshFeature;
}

/** Negotiates (following redirects) and connects the first transport that works. */
export async function openConnection(
  baseUrl: string,
  options: ConnectionOptions,
  format: TransferFormat,
  stateful?: boolean,
): Promise<OpenConnection> {
  // A token from a negotiate redirect or a refresh replaces the factory's for this connection.
  let serverToken: string | undefined;
  const appToken = async () => options.accessTokenFactory?.();
  // The options (fetch, WebSocket, timeout) with the token and the headers of each request.
  const context = (token: () => Promise<string | undefined>): TransportContext => ({
    ...options,
    token,
    headers: async () => {
      const value = await token();
      return { ...options.headers, ...(value && { Authorization: "Bearer " + value }) };
    },
  });
  const cx = context(async () => serverToken ?? (await appToken()));
  // Refreshes belong to the application's credentials: they always carry the factory's token.
  const refreshCx = context(appToken);
  const hubUrl = baseUrl;
  const allowed = options.transport ?? 7;

  if (options.skipNegotiation) {
    if (allowed !== HttpTransportType.WebSockets) {
      throw new TransportError("Negotiation can only be skipped when using the WebSocket transport directly.");
    }
    const transport = new WebSocketTransport(cx);
    await transport.connect(baseUrl);
    return { transport, name: "WebSockets" };
  }

  const negotiate = async (): Promise<NegotiateResponse> => {
    for (let hop = 0; hop < 100; hop++) {
      const url = withQuery(
        withPath(baseUrl, "negotiate"),
        "negotiateVersion=1" + (stateful ? "&useStatefulReconnect=true" : ""),
      );
      let response: Response;
      try {
        response = await request(cx, "POST", url);
      } catch (error) {
        const message = NEGOTIATE_FAILED + error;
        throw error instanceof TimeoutError ? new TimeoutError(message) : new NegotiateError(message);
      }
      if (response.status !== 200) {
        const text = (await response.text().catch(() => "")) || response.statusText;
        throw new NegotiateError(
          `${NEGOTIATE_FAILED}Error: ${text}: Status code '${response.status}'` +
            (response.status === 404
              ? " Either this is not a SignalR endpoint or there is a proxy blocking the connection."
              : ""),
          response.status,
        );
      }
      const body = (await response.json()) as NegotiateResponse;
      if (body.error) throw new NegotiateError(body.error, 200);
      if (body.useStatefulReconnect && !stateful) {
        throw new NegotiateError("Client didn't negotiate Stateful Reconnect but the server did.", 200);
      }
      if (body.ProtocolVersion) {
        throw new NegotiateError("Detected a connection attempt to an ASP.NET SignalR Server. This client only supports connecting to an ASP.NET Core SignalR Server.", 200);
      }
      if (!body.url) return body;
      baseUrl = body.url;
      if (body.accessToken) serverToken = body.accessToken;
    }
    throw new NegotiateError("Negotiate redirection limit exceeded.");
  };

  let negotiated: NegotiateResponse | undefined = await negotiate();
  const errors: string[] = [];
  for (const offer of negotiated.availableTransports ?? []) {
    const name = offer.transport as TransportName;
    // An unknown name has no flag.
    if (!(allowed & HttpTransportType[name]) || !offer.transferFormats.includes(format)) continue;
    try {
      // A failed attempt may have used up the token: negotiate again for each fallback.
      negotiated ??= await negotiate();
      const token = negotiated.negotiateVersion! > 0 ? negotiated.connectionToken : negotiated.connectionId;
      // As the official client: the refresh goes to the URL the application gave, not a redirect's.
      const refresh = createRefresh(refreshCx, hubUrl, token!, (fresh) => (serverToken = fresh));
      const transport = new TRANSPORTS[name]({ ...cx, refresh });
      const url = withQuery(baseUrl, "id=" + encodeURIComponent(token!));
      await transport.connect(url, format);
      // Stateful reconnect (WebSockets only): a dropped socket reopens the same URL.
      const reopen: Reopen | undefined =
        negotiated.useStatefulReconnect && name === "WebSockets"
          ? async (setup) => {
              const socket = new WebSocketTransport(cx);
              setup(socket); // the server's Sequence may come with the upgrade
              await socket.connect(url);
              return socket;
            }
          : undefined;
      const auth = { lifetime: tokenLifetime(negotiated.tokenLifetimeSeconds), refresh };
      return { transport, name, connectionId: negotiated.connectionId, reopen, auth };
    } catch (error) {
      if (error instanceof NegotiateError) throw error;
      errors.push(`${name}: ${(error as Error).message}`);
      negotiated = undefined;
    }
  }
  throw new TransportError(
    errors.length ? `Unable to connect to the server with any of the available transports. ${errors.join(" ")}` : "None of the transports supported by the client are supported by the server.",
  );
}
