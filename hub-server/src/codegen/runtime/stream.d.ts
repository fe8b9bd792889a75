import { type HubMessage } from "./protocol.js";
/** A subscriber of a server-to-client stream. */
export interface StreamSubscriber<T> {
    next(value: T): void;
    error?(error: Error): void;
    complete?(): void;
}
/** A server-to-client stream: iterate it with `for await`, or `subscribe` to it (one consumer). */
export interface HubStream<T> extends AsyncIterable<T> {
    subscribe(subscriber: StreamSubscriber<T>): {
        dispose(): void;
    };
}
/** The feeding end of a HubStream. */
export interface StreamSink<T> {
    /** An item: kept until the consumer takes it. */
    item(value: T): void;
    /** The end, with the error the consumer gets after the last item. */
    done(error?: Error): void;
}
/**
 * A server-to-client stream fed through `sink`. `cancel` runs when the consumer leaves early
 * (`break`, `dispose()`) or `signal` aborts; an aborted signal ends the stream with AbortError.
 */
export declare function createStream<I>(cancel: () => void, signal?: AbortSignal): [stream: HubStream<I>, sink: StreamSink<I>];
/** Whether a hub method argument is an upload stream (any async iterable). */
export declare const isUpload: (value: any) => value is AsyncIterable<unknown>;
/**
 * Sends an upload stream's items as StreamItems, then a Completion (with the error text if the
 * source threw). Stops quietly once `live()` is false (the connection it started on is gone).
 */
export declare function sendUpload(source: AsyncIterable<unknown>, invocationId: string, send: (message: HubMessage) => Promise<void>, live: () => boolean): Promise<void>;
