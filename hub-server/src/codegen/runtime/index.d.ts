export { HubConnection, HubConnectionBuilder, HubConnectionState, LogLevel, DEFAULT_RETRY_DELAYS, type HubConnectionOptions, type HubStream, type StreamSubscriber, type RetryPolicy, type RetryContext, type Logger, type Handler, } from "./hub.js";
export type { ConnectionOptions } from "./connection.js";
export { HttpTransportType } from "./transports.js";
export { JsonHubProtocol, MessageType, createTextFramer, type HubMessage, type HubProtocol, type TransferFormat } from "./protocol.js";
export * from "./errors.js";
