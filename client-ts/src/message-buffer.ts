import { ConnectionClosedError } from "./errors.js";
import { type HubMessage, MessageType as T } from "./protocol.js";
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
  private entries: Entry[] = [];
  private bytes = 0;
  /** Tracked messages sent so far (the last id). */
  private sent = 0;
  /** The id the next incoming tracked message has; the highest one processed. */
  private nextIn = 1;
  private latestIn = 0;
  private waitSequence = false;
  private ackTimer?: ReturnType<typeof setTimeout>;
  /** Between a drop and a completed replay: only the replay goes out (no acks, pings or new sends). */
  resuming = false;

  constructor(
    private readonly limit: number,
    /** Sends an Ack for everything up to `sequenceId`. */
    private readonly sendAck: (sequenceId: number) => void,
    /** Closes the connection over a protocol violation. */
    private readonly fail: (error: Error) => void,
  ) {}

  /** Keeps a sent tracked message until acked; resolves when the unacked bytes are under the limit. */
  track(data: Data): Promise<void> {
    const size = typeof data === "string" ? data.length : data.byteLength;
    let entry!: Entry;
    const room = new Promise<void>((release, fail) => (entry = { id: ++this.sent, data, size, release, fail }));
    this.entries.push(entry);
    if ((this.bytes += size) < this.limit) entry.release();
    return room;
  }

  /** Handles Ack and Sequence; false for what must not be dispatched (those, duplicates, anything before a resume's Sequence). */
  accept(message: HubMessage): boolean {
    const type = message.type;
    if (this.waitSequence) {
      if (type !== T.Sequence) return false;
      this.waitSequence = false;
    }
    if (type === T.Sequence) {
      if (message.sequenceId! > this.nextIn) {
        this.fail(new ConnectionClosedError("Sequence ID greater than amount of messages we've received."));
      } else this.nextIn = message.sequenceId!;
      return false;
    }
    if (type === T.Ack) {
      let i = 0;
      for (const entry of this.entries) {
        if (entry.id > message.sequenceId!) break;
        this.bytes -= entry.size;
        i++;
      }
      this.entries.splice(0, i).forEach((entry) => entry.release());
      // Sends waiting for room go on while the unacked bytes stay under the limit.
      let bytes = 0;
      for (const entry of this.entries) {
        if ((bytes += entry.size) >= this.limit) break;
        entry.release();
      }
      return false;
    }
    if (!isTracked(message)) return true;
    const id = this.nextIn++;
    if (id <= this.latestIn) return false; // already processed before the resume
    this.latestIn = id;
    this.ackTimer ??= setTimeout(() => {
      this.ackTimer = undefined;
      if (!this.resuming) this.sendAck(this.latestIn);
    }, 1000);
    return true;
  }

  /** The transport dropped: hold everything until the server's Sequence on the reopened one. */
  pause() {
    this.resuming = this.waitSequence = true;
  }

  /** After reopening: the Sequence to send (the first id replayed) and the messages to replay. */
  replay(): { sequenceId: number; messages: Data[] } {
    return { sequenceId: this.entries[0]?.id ?? this.sent + 1, messages: this.entries.map((entry) => entry.data) };
  }

  /** The connection ended for good: sends waiting for room fail with `error`. */
  dispose(error: Error) {
    clearTimeout(this.ackTimer);
    for (const entry of this.entries) entry.fail(error);
  }
}
