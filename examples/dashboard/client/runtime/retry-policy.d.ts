/** What a retry policy knows when it picks the next delay. */
export interface RetryContext {
    previousRetryCount: number;
    elapsedMilliseconds: number;
    retryReason: Error;
}
/** Decides the delay before each reconnect attempt; `null` gives up. */
export interface RetryPolicy {
    nextRetryDelayInMilliseconds(context: RetryContext): number | null;
}
/** The default automatic-reconnect delays. */
export declare const DEFAULT_RETRY_DELAYS: number[];
/** A policy that waits `delays[n]` before retry n and gives up after the last one. */
export declare const retryDelays: (delays: number[]) => RetryPolicy;
