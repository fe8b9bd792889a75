/** The log levels for this package's own code: a const enum, so that bundlers put the numbers in place. */
export declare const enum Level {
    Trace = 0,
    Debug = 1,
    Information = 2,
    Warning = 3,
    Error = 4,
    Critical = 5,
    None = 6
}
/** Log levels, as in `@microsoft/signalr` (the same numbers as Level). */
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
