/** Log levels, as in `@microsoft/signalr`. */
export declare const LogLevel: {
    readonly Trace: 0;
    readonly Debug: 1;
    readonly Information: 2;
    readonly Warning: 3;
    readonly Error: 4;
    readonly Critical: 5;
    readonly None: 6;
};
/** Receives the connection's log messages (see `configureLogging`). */
export interface Logger {
    log(level: number, message: string): void;
}
