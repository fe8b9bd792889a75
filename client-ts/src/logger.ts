/** The log levels for this package's own code: a const enum, so that bundlers put the numbers in place. */
export const enum Level {
  Trace,
  Debug,
  Information,
  Warning,
  Error,
  Critical,
  None,
}

/** Log levels, as in `@microsoft/signalr` (the same numbers as Level). */
export const LogLevel = { Trace: 0, Debug: 1, Information: 2, Warning: 3, Error: 4, Critical: 5, None: 6 } as const;

/** Receives the connection's log messages (see `configureLogging`). */
export interface Logger {
  log(level: number, message: string): void;
}
