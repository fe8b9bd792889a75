// Streams with the official client (spec §4, §8): server-to-client streams (Counter,
// FailingStream, Ticker), cancellation, the parallel-invocation limit, invoke-vs-stream
// mismatches, upload streams (Sum, Double) and, over raw WebSockets, what the official client
// can't send (stream-count mismatches, unknown stream ids, reused ids, cancelling a unary call).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MessageType, Subject } from "@microsoft/signalr";
import { PROTOCOLS, connect, delay, openRaw, startServer, stopAll, waitUntil, withTimeout } from "./server.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

/** Subscribes to `connection.stream(...)`; resolves with { items, error? } once it ends. */
function streamAll(connection, name, ...args) {
  return withTimeout(
    new Promise((resolve) => {
      const items = [];
      connection.stream(name, ...args).subscribe({
        next: (item) => items.push(item),
        complete: () => resolve({ items }),
        error: (error) => resolve({ items, error }),
      });
    }),
    5_000,
    `stream ${name} did not finish`,
  );
}

/** Asserts that `promise` rejects with an Error whose message is exactly `text`. */
async function rejectsWith(promise, text) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.message, text);
    return true;
  });
}

/** A Completion that carries neither a result nor an error (a stream's end). */
const isBareCompletion = (m) => m.type === MessageType.Completion && m.result === undefined && m.error === undefined;


for (const protocol of PROTOCOLS) {
  describe(`streams (${protocol})`, () => {
    let hub;
    let record;
    let tickerCancels;
    before(async () => {
      record = [];
      tickerCancels = 0;
      hub = await connect(server.url("/hub"), {
        protocol,
        record,
        handlers: { tickerCancelled: () => tickerCancels++ },
      });
    });
    after(() => stopAll(hub));

    it("Counter(5, 10) yields 0..4 in order, then completes", async () => {
      const { items, error } = await streamAll(hub, "Counter", 5, 10);
      assert.equal(error, undefined);
      assert.deepEqual(items, [0, 1, 2, 3, 4]);
    });

    it("Counter(0, 0) completes without items", async () => {
      record.length = 0;
      const { items, error } = await streamAll(hub, "Counter", 0, 0);
      assert.equal(error, undefined);
      assert.deepEqual(items, []);
      // On the wire: exactly one Completion without a result, nothing else.
      const seen = record.filter((m) => m.type !== MessageType.Ping);
      assert.equal(seen.length, 1, JSON.stringify(seen));
      assert.ok(isBareCompletion(seen[0]), JSON.stringify(seen[0]));
    });

    it("Counter(2000, 0) yields all 2000 items in order", async () => {
      const { items, error } = await streamAll(hub, "Counter", 2000, 0);
      assert.equal(error, undefined);
      assert.equal(items.length, 2000);
      assert.deepEqual(items, Array.from({ length: 2000 }, (_, i) => i));
    });

    it("FailingStream(2) yields 0, 1, then the streaming error with the HubException text", async () => {
      const { items, error } = await streamAll(hub, "FailingStream", 2);
      assert.deepEqual(items, [0, 1]);
      assert.ok(error, "the stream should fail");
      assert.equal(
        error.message,
        "An error occurred on the server while streaming results. HubException: the stream broke",
      );
    });

    it("disposing a Ticker subscription cancels it: a bare Completion, no later items, TickerCancelled", async () => {
      record.length = 0;
      const cancelsBefore = tickerCancels;
      const items = [];
      let ended;
      const subscription = hub.stream("Ticker", 20).subscribe({
        next: (item) => items.push(item),
        complete: () => (ended = "complete"),
        error: (error) => (ended = error),
      });
      await waitUntil(() => items.length >= 3, 3_000, "Ticker items did not arrive");
      const id = record.find((m) => m.type === MessageType.StreamItem).invocationId;
      subscription.dispose();

      const completion = await waitUntil(
        () => record.find((m) => m.type === MessageType.Completion && m.invocationId === id),
        2_000,
        "no Completion for the cancelled stream",
      );
      assert.ok(isBareCompletion(completion), `expected a Completion without result: ${JSON.stringify(completion)}`);
      await waitUntil(() => tickerCancels > cancelsBefore, 2_000, "TickerCancelled was not pushed");
      await delay(150);
      const completionAt = record.indexOf(completion);
      const late = record.slice(completionAt + 1).filter((m) => m.invocationId === id);
      assert.deepEqual(late, [], "nothing for the stream after its Completion");
      const forId = record.filter((m) => m.invocationId === id);
      assert.equal(forId.filter((m) => m.type === MessageType.Completion).length, 1);
      // The items the subscriber got are the first ones, in order.
      assert.deepEqual(items, Array.from({ length: items.length }, (_, i) => i));
      assert.equal(ended, undefined, "a disposed subscription gets no completion callback");
      assert.equal(await hub.invoke("Echo", "after cancel"), "after cancel");
    });

    it("streams don't count against the parallel-invocation limit of 1", async () => {
      const cancelsBefore = tickerCancels;
      const ticks = [];
      const ticker = hub.stream("Ticker", 50).subscribe({ next: (item) => ticks.push(item), error: () => {}, complete: () => {} });
      try {
        await waitUntil(() => ticks.length >= 1, 3_000, "Ticker did not start");
        const started = Date.now();
        assert.equal(await withTimeout(hub.invoke("Echo", "x"), 1_000, "Echo blocked by a stream"), "x");
        assert.ok(Date.now() - started < 1_000);
        // A slower unary invocation isn't held up either.
        assert.equal(await withTimeout(hub.invoke("Sleep", 100), 1_000, "Sleep blocked by a stream"), 100);
      } finally {
        ticker.dispose();
      }
      await waitUntil(() => tickerCancels > cancelsBefore, 2_000, "TickerCancelled was not pushed");
    });

    it("two concurrent streams interleave", async () => {
      record.length = 0;
      const [a, b] = await Promise.all([streamAll(hub, "Counter", 5, 40), streamAll(hub, "Counter", 5, 40)]);
      assert.deepEqual(a, { items: [0, 1, 2, 3, 4] });
      assert.deepEqual(b, { items: [0, 1, 2, 3, 4] });
      const items = record.filter((m) => m.type === MessageType.StreamItem);
      const ids = [...new Set(items.map((m) => m.invocationId))];
      assert.equal(ids.length, 2);
      const positions = (id) => items.flatMap((m, i) => (m.invocationId === id ? [i] : []));
      const [pa, pb] = ids.map(positions);
      // Each stream's first item arrives before the other's last one.
      assert.ok(pa[0] < pb.at(-1) && pb[0] < pa.at(-1), `not interleaved: ${ids.map((id) => positions(id)).join(" | ")}`);
    });

    it("invoke() on a streaming method gives the non-streaming-invocation error", async () => {
      await rejectsWith(
        hub.invoke("Counter", 1, 1),
        "The client attempted to invoke the streaming 'Counter' method with a non-streaming invocation.",
      );
    });

    it("stream() on a non-streaming method gives the streaming-invocation error", async () => {
      const { items, error } = await streamAll(hub, "Echo", "x");
      assert.deepEqual(items, []);
      assert.ok(error);
      assert.equal(
        error.message,
        "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation.",
      );
      assert.equal(await hub.invoke("Echo", "still usable"), "still usable");
    });

    it("upload: Sum of 1..100 is 5050", async () => {
      const subject = new Subject();
      const pending = hub.invoke("Sum", subject);
      for (let i = 1; i <= 100; i++) subject.next(i);
      subject.complete();
      assert.equal(await withTimeout(pending, 3_000, "Sum did not finish"), 5050);
    });

    it("upload: Sum of no items is 0", async () => {
      const subject = new Subject();
      const pending = hub.invoke("Sum", subject);
      subject.complete();
      assert.equal(await withTimeout(pending, 3_000, "Sum did not finish"), 0);
    });

    it("upload: subject.error() fails the method with the client's message as a HubException", async () => {
      const subject = new Subject();
      const pending = hub.invoke("Sum", subject);
      subject.next(1);
      subject.next(2);
      // The JS client sends the Error's message ("client broke"), not its toString().
      subject.error(new Error("client broke"));
      await rejectsWith(
        withTimeout(pending, 3_000, "Sum did not finish"),
        "An unexpected error occurred invoking 'Sum' on the server. HubException: client broke",
      );
      assert.equal(await hub.invoke("Echo", "after upload error"), "after upload error");
    });

    it("upload on a StreamInvocation: Double yields each item doubled, in order", async () => {
      const subject = new Subject();
      const result = streamAll(hub, "Double", subject);
      for (const n of [1, 2, 3, -4, 50]) subject.next(n);
      subject.complete();
      assert.deepEqual(await result, { items: [2, 4, 6, -8, 100] });
    });

    it("upload on a StreamInvocation: many items (beyond the server's buffer) all arrive", async () => {
      const subject = new Subject();
      const result = streamAll(hub, "Double", subject);
      for (let i = 0; i < 200; i++) subject.next(i);
      subject.complete();
      assert.deepEqual(await result, { items: Array.from({ length: 200 }, (_, i) => i * 2) });
    });

    it("upload via send(): accepted, no Completion, the connection stays usable", async () => {
      record.length = 0;
      const subject = new Subject();
      await hub.send("Sum", subject);
      for (let i = 1; i <= 5; i++) subject.next(i);
      subject.complete();
      // Sum holds the only invocation slot until its upload ends, so Echo's reply proves it finished.
      assert.equal(await withTimeout(hub.invoke("Echo", "after send"), 3_000, "Echo after send()"), "after send");
      await delay(100);
      const seen = record.filter((m) => m.type !== MessageType.Ping);
      assert.equal(seen.length, 1, `only Echo's Completion expected: ${JSON.stringify(seen)}`);
      assert.equal(seen[0].result, "after send");
    });

    it("raw: Sum without streamIds gets the stream-count error", async () => {
      const client = await openRaw(server.url("/hub"), protocol);
      try {
        client.send({ type: MessageType.Invocation, invocationId: "1", target: "Sum", arguments: [] });
        const reply = await client.waitFor((m) => m.invocationId === "1", 3_000, "reply to Sum");
        assert.equal(reply.type, MessageType.Completion);
        assert.equal(
          reply.error,
          "An unexpected error occurred invoking 'Sum' on the server. HubException: Client sent 0 stream(s), Hub method expects 1.",
        );
      } finally {
        client.close();
      }
    });

    it("raw: Echo with a stream id gets the stream-count error", async () => {
      const client = await openRaw(server.url("/hub"), protocol);
      try {
        client.send({
          type: MessageType.Invocation,
          invocationId: "1",
          target: "Echo",
          arguments: ["x"],
          streamIds: ["9"],
        });
        const reply = await client.waitFor((m) => m.invocationId === "1", 3_000, "reply to Echo");
        assert.equal(reply.type, MessageType.Completion);
        assert.equal(
          reply.error,
          "An unexpected error occurred invoking 'Echo' on the server. HubException: Client sent 1 stream(s), Hub method expects 0.",
        );
        // The refused stream id is not open: items for it are ignored.
        client.send({ type: MessageType.StreamItem, invocationId: "9", item: 1 });
        client.send({ type: MessageType.Invocation, invocationId: "2", target: "Echo", arguments: ["y"] });
        assert.equal((await client.waitFor((m) => m.invocationId === "2")).result, "y");
      } finally {
        client.close();
      }
    });

    it("raw: a StreamItem and a Completion for an unknown stream id are ignored", async () => {
      const client = await openRaw(server.url("/hub"), protocol);
      try {
        client.send({ type: MessageType.StreamItem, invocationId: "zzz", item: 1 });
        client.send({ type: MessageType.Completion, invocationId: "zzz" });
        client.send({ type: MessageType.Completion, invocationId: "zzz", error: "boom" });
        client.send({ type: MessageType.Invocation, invocationId: "1", target: "Echo", arguments: ["alive"] });
        const reply = await client.waitFor((m) => m.invocationId === "1", 3_000, "Echo reply");
        assert.equal(reply.result, "alive");
        await delay(150);
        assert.deepEqual(client.messages, [reply]);
      } finally {
        client.close();
      }
    });

    it("raw: a reused stream invocation id is refused; CancelInvocation then ends the first stream", async () => {
      const client = await openRaw(server.url("/hub"), protocol);
      try {
        const ticker = { type: MessageType.StreamInvocation, invocationId: "5", target: "Ticker", arguments: [20] };
        client.send(ticker);
        await client.waitFor((m) => m.type === MessageType.StreamItem && m.invocationId === "5", 3_000, "Ticker item");
        client.send(ticker);
        const refused = await client.waitFor(
          (m) => m.type === MessageType.Completion && m.invocationId === "5",
          3_000,
          "refusal of the reused id",
        );
        assert.equal(refused.error, "Invocation ID '5' is already in use.");
        // The first stream goes on.
        const count = client.messages.length;
        await client.waitFor(
          (m, i) => i >= count && m.type === MessageType.StreamItem && m.invocationId === "5",
          3_000,
          "Ticker item after the refusal",
        );
        client.send({ type: MessageType.CancelInvocation, invocationId: "5" });
        const end = await client.waitFor(
          (m) => m.type === MessageType.Completion && m.invocationId === "5" && m !== refused,
          3_000,
          "Completion of the cancelled Ticker",
        );
        assert.ok(isBareCompletion(end), JSON.stringify(end));
        await client.waitFor(
          (m) => m.type === MessageType.Invocation && m.target === "TickerCancelled",
          3_000,
          "TickerCancelled push",
        );
        await delay(100);
        const after = client.messages.slice(client.messages.indexOf(end) + 1);
        assert.deepEqual(
          after.filter((m) => m.invocationId === "5"),
          [],
          "nothing for id 5 after its Completion",
        );
        const items = client.messages.filter((m) => m.type === MessageType.StreamItem).map((m) => m.item);
        assert.deepEqual(items, Array.from({ length: items.length }, (_, i) => i), "one stream's items, in order");
      } finally {
        client.close();
      }
    });

    // The official client can't cancel an invoke(); ASP.NET ignores CancelInvocation for unary
    // invocations (only streams are cancellable there). This server cancels the unary method
    // (its Context cancellation fires), frees its slot at once, and sends nothing for it.
    it("raw: CancelInvocation of a unary Sleep frees the only invocation slot at once", async () => {
      const client = await openRaw(server.url("/hub"), protocol);
      try {
        client.send({ type: MessageType.Invocation, invocationId: "1", target: "Sleep", arguments: [5000] });
        await delay(50);
        client.send({ type: MessageType.CancelInvocation, invocationId: "1" });
        const sent = Date.now();
        client.send({ type: MessageType.Invocation, invocationId: "2", target: "Echo", arguments: ["freed"] });
        const reply = await client.waitFor((m) => m.invocationId === "2", 1_500, "Echo reply within 1.5 s");
        assert.ok(Date.now() - sent < 1_500);
        assert.equal(reply.result, "freed");
        await delay(300);
        const forCancelled = client.messages.filter((m) => m.invocationId === "1");
        assert.deepEqual(forCancelled, [], "a cancelled invocation gets no reply");
      } finally {
        client.close();
      }
    });

    it(
      "raw: a cancelled unary invocation never gets a Completion (same outcome every time)",
      async () => {
        const client = await openRaw(server.url("/hub"), protocol);
        try {
          for (let i = 0; i < 20; i++) {
            const id = `s${i}`;
            client.send({ type: MessageType.Invocation, invocationId: id, target: "Sleep", arguments: [5000] });
            await delay(10);
            client.send({ type: MessageType.CancelInvocation, invocationId: id });
            client.send({ type: MessageType.Invocation, invocationId: `e${i}`, target: "Echo", arguments: ["x"] });
            await client.waitFor((m) => m.invocationId === `e${i}`, 1_500, `Echo e${i}`);
          }
          await delay(200);
          const cancelled = client.messages.filter((m) => m.invocationId.startsWith("s"));
          assert.deepEqual(cancelled, [], `${cancelled.length} of 20 cancelled invocations got a Completion`);
        } finally {
          client.close();
        }
      },
    );

    it("stop() while a Ticker runs: stop resolves, OnDisconnected sees no error", async () => {
      const client = await connect(server.url("/hub"), { protocol });
      const id = client.connectionId;
      const ticks = [];
      let streamError;
      client.stream("Ticker", 20).subscribe({
        next: (item) => ticks.push(item),
        error: (error) => (streamError = error),
        complete: () => {},
      });
      await waitUntil(() => ticks.length >= 2, 3_000, "Ticker did not start");
      await withTimeout(client.stop(), 3_000, "stop() did not resolve");
      assert.ok(streamError, "the open stream is failed locally by stop()");
      const entry = await waitUntil(
        async () => (await hub.invoke("Disconnections")).find(([cid]) => cid === id),
        3_000,
        `OnDisconnected not recorded for ${id}`,
      );
      assert.equal(entry[1], null);
    });
  });
}
