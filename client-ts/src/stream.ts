import { AbortError, ignore, whenAborted } from "./errors.js";
import { type HubMessage, T } from "./protocol.js";

/** A subscriber of a server-to-client stream. */
export interface StreamSubscriber<T> {
  next(value: T): void;
  error?(error: Error): void;
  complete?(): void;
}

/** A server-to-client stream: iterate it with `for await`, or `subscribe` to it (one consumer). */
export interface HubStream<T> extends AsyncIterable<T> {
  subscribe(subscriber: StreamSubscriber<T>): { dispose(): void };
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
export function createStream<I>(cancel: () => void, signal?: AbortSignal): [stream: HubStream<I>, sink: StreamSink<I>] {
  const items: I[] = [];
  let end: { error?: Error } | undefined;
  let wake: (() => void) | undefined;
  let release: (() => void) | undefined;
  const done = (error?: Error) => {
    if (end) return;
    end = { error };
    release?.();
    wake?.();
  };
  release = whenAborted(signal, () => {
    cancel();
    done(new AbortError());
  });

  const iterator: AsyncIterator<I> = {
    next: async () => {
      while (!items.length && !end) await new Promise<void>((resolve) => (wake = resolve));
      if (items.length) return { value: items.shift()!, done: false };
      if (end!.error) throw end!.error;
      return { value: undefined, done: true };
    },
    return: async () => {
      cancel();
      done();
      items.length = 0;
      return { value: undefined, done: true };
    },
  };
  const stream: HubStream<I> = {
    [Symbol.asyncIterator]: () => iterator,
    subscribe(subscriber) {
      let disposed = false;
      (async () => {
        try {
          // A subscriber that throws ends the loop: the stream is cancelled, `error` gets it.
          for await (const value of stream) {
            if (disposed) return;
            subscriber.next(value);
          }
          if (!disposed) subscriber.complete?.();
        } catch (error) {
          if (!disposed) subscriber.error?.(error as Error);
        }
      })();
      return {
        dispose() {
          disposed = true;
          iterator.return!();
        },
      };
    },
  };
  const sink: StreamSink<I> = {
    item(value) {
      items.push(value);
      wake?.();
    },
    done,
  };
  return [stream, sink];
}

/** Whether a hub method argument is an upload stream (any async iterable). */
export const isUpload = (value: any): value is AsyncIterable<unknown> => typeof value?.[Symbol.asyncIterator] === "function";

/**
 * Sends an upload stream's items as StreamItems, then a Completion (with the error text if the
 * source threw). Stops quietly once `live()` is false (the connection it started on is gone).
 */
export async function sendUpload(
  source: AsyncIterable<unknown>,
  invocationId: string,
  send: (message: HubMessage) => Promise<void>,
  live: () => boolean,
): Promise<void> {
  let error: string | undefined;
  try {
    for await (const item of source) {
      if (!live()) return;
      await send({ type: T.StreamItem, invocationId, item });
    }
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  if (!live()) return;
  await send({ type: T.Completion, invocationId, error }).catch(ignore);
}
