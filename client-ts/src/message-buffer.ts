import { ConnectionClosedError } from "./errors.js";
import { type HubMessage, T } from "./protocol.js";
import type { Data } from "./transport.js";

interface Entry {
  id: number;
  data: Data;
  size: number;
  release(): void;
  fail(error: Error): void;
}

/** Invocations, stream items, completions and cancels are numbered and acked; pings, acks and the rest are not. */
export const isTracked = (message: HubMessage) => message.type <= T.CancelInvocation;

/**
 * The stateful reconnect bookkeeping of one logical connection: keeps each sent tracked message
 * until the server acks it (sends wait while `limit` bytes are unacked), numbers the received ones
 * and acks them at most once a second, and across a resume tells what to replay and which
 * received messages are duplicates.
 */
export class MessageBuffer {
  /** Sent tracked messages not acked yet, oldest first. */
  #entries: Entry[] = [];
  #bytes = 0;
  /** Tracked messages sent so far (the last id). */
  #sent = 0;
  /** The id the next incoming tracked message has; the highest one processed. */
  #nextIn = 1;
  #latestIn = 0;
  #waitSequence = false;
  #ackTimer?: ReturnType<typeof setTimeout>;
  /** Between a drop and a completed replay: only the replay goes out (no acks, pings or new sends). */
  resuming = false;

  #limit: number;
  /** Sends an Ack for everything up to `sequenceId`. */
  #sendAck: (sequenceId: number) => void;
  /** Closes the connection over a protocol violation. */
  #fail: (error: Error) => void;

  constructor(limit: number, sendAck: (sequenceId: number) => void, fail: (error: Error) => void) {
    this.#limit = limit;
    this.#sendAck = sendAck;
    this.#fail = fail;
  }

  /** Keeps a sent tracked message until acked; resolves when the unacked bytes are under the limit. */
  track(data: Data): Promise<void> {
    const size = data.length; // UTF-16 units or bytes
    let entry!: Entry;
    const room = new Promise<void>((release, fail) => (entry = { id: ++this.#sent, data, size, release, fail }));
    this.#entries.push(entry);
    if ((this.#bytes += size) < this.#limit) entry.release();
    return room;
  }

  /** Handles Ack and Sequence; false for what must not be dispatched (those, duplicates, anything before a resume's Sequence). */
  accept(message: HubMessage): boolean {
    const type = message.type;
    if (this.#waitSequence && type !== T.Sequence) return false;
    if (type === T.Sequence) {
      this.#waitSequence = false;
      if (message.sequenceId! > this.#nextIn) {
        this.#fail(new ConnectionClosedError("Sequence ID greater than amount of messages we've received."));
      } else this.#nextIn = message.sequenceId!;
      return false;
    }
    if (type === T.Ack) {
      // Acked messages are dropped and their sends go on; so do the sends waiting for room while
      // the unacked bytes before them stay under the limit.
      let bytes = 0;
      this.#entries = this.#entries.filter((entry) => {
        const acked = entry.id <= message.sequenceId!;
        if (acked) this.#bytes -= entry.size;
        if (acked || (bytes += entry.size) < this.#limit) entry.release();
        return !acked;
      });
      return false;
    }
    if (!isTracked(message)) return true;
    const id = this.#nextIn++;
    if (id <= this.#latestIn) return false; // already processed before the resume
    this.#latestIn = id;
    this.#ackTimer ??= setTimeout(() => {
      this.#ackTimer = undefined;
      if (!this.resuming) this.#sendAck(this.#latestIn);
    }, 1000);
    return true;
  }

  /** The transport dropped: hold everything until the server's Sequence on the reopened one. */
  pause() {
    this.resuming = this.#waitSequence = true;
  }

  /** After reopening: the Sequence to send (the first id replayed) and the messages to replay. */
  replay(): [sequenceId: number, messages: Data[]] {
    return [this.#entries[0]?.id ?? this.#sent + 1, this.#entries.map((entry) => entry.data)];
  }

  /** The connection ended for good: sends waiting for room fail with `error`. */
  dispose(error: Error) {
    clearTimeout(this.#ackTimer);
    for (const entry of this.#entries) entry.fail(error);
  }
}
