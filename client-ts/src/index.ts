export {
  HubConnection,
  type Handler,
  type AuthenticationRefreshedContext,
  type AuthenticationRefreshFailedContext,
} from "./hub-connection.js";
export type { AuthenticationRefreshOptions } from "./authentication-refresh.js";
export { HubConnectionBuilder } from "./hub-connection-builder.js";
export { HubConnectionState, type HubConnectionOptions } from "./connection-lifecycle.js";
export type { HubStream, StreamSubscriber } from "./stream.js";
export { DEFAULT_RETRY_DELAYS, type RetryPolicy, type RetryContext } from "./retry-policy.js";
export { LogLevel, type Logger } from "./logger.js";
export type { ConnectionOptions } from "./http-connection.js";
export { HttpTransportType, type TransportName } from "./transport.js";
export { JsonHubProtocol, MessageType, createTextFramer, type HubMessage, type HubProtocol, type TransferFormat } from "./protocol.js";
export {
  AbortError,
  ConnectionClosedError,
  HandshakeError,
  HubClientError,
  HubError,
  type HubMethodError,
  NegotiateError,
  TimeoutError,
  TransportError,
} from "./errors.js";
