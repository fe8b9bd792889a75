import { type HubMessage } from "./protocol.js";
import type { Data } from "./transport.js";
/** Invocations, stream items, completions and cancels are numbered and acked; pings, acks and the rest are not. */
export declare const isTracked: (message: HubMessage) => boolean;
/**
 * The stateful reconnect bookkeeping of one logical connection: keeps each sent tracked message
 * until the server acks it (sends wait while `limit` bytes are unacked), numbers the received ones
 * and acks them at most once a second, and across a resume tells what to replay and which
 * received messages are duplicates.
 */
export declare class MessageBuffer {
    #private;
    /** Between a drop and a completed replay: only the replay goes out (no acks, pings or new sends). */
    resuming: boolean;
    constructor(limit: number, sendAck: (sequenceId: number) => void, fail: (error: Error) => void);
    /** Keeps a sent tracked message until acked; resolves when the unacked bytes are under the limit. */
    track(data: Data): Promise<void>;
    /** Handles Ack and Sequence; false for what must not be dispatched (those, duplicates, anything before a resume's Sequence). */
    accept(message: HubMessage): boolean;
    /** The transport dropped: hold everything until the server's Sequence on the reopened one. */
    pause(): void;
    /** After reopening: the Sequence to send (the first id replayed) and the messages to replay. */
    replay(): [sequenceId: number, messages: Data[]];
    /** The connection ended for good: sends waiting for room fail with `error`. */
    dispose(error: Error): void;
}
