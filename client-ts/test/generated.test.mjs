// The generated client of the conformance hub (examples/conformance/client, written by
// `conformance --emit-ts`) against the running hub: typed methods, streams, uploads, AbortSignal,
// callbacks and client results through a registered receiver, over every transport.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { AbortError, HttpTransportType, HubError } from "../dist/index.js";
import { startServer } from "./server.mjs";

// The generated module imports "@hubs/client"; a copy inside this package resolves that to this
// package itself (Node's self-reference through package.json "exports").
const GENERATED = fileURLToPath(new URL("../../examples/conformance/client/index.js", import.meta.url));
const COPY = fileURLToPath(new URL("./.generated/conformance-client.js", import.meta.url));
mkdirSync(new URL("./.generated/", import.meta.url), { recursive: true });
copyFileSync(GENERATED, COPY);
const { connectConformance, createConformance, conformanceRoute } = await import(COPY);

let server;
before(async () => (server = await startServer()));
after(() => server?.stop());

const base = () => server.url("");

for (const [name, transport] of Object.entries({
  webSockets: HttpTransportType.WebSockets,
  serverSentEvents: HttpTransportType.ServerSentEvents,
  longPolling: HttpTransportType.LongPolling,
})) {
  describe(`generated client over ${name}`, () => {
    test("typed methods, streams, uploads and errors", async () => {
      const hub = await connectConformance(base(), { connection: { transport, WebSocket } });
      try {
        assert.equal(conformanceRoute, "/hub");
        assert.equal(await hub.echo("héllo"), "héllo");
        assert.equal(await hub.add(2, 40), 42);
        assert.equal(await hub.void(), null);
        const items = [];
        for await (const n of hub.counter(3, 0)) items.push(n);
        assert.deepEqual(items, [0, 1, 2]);
        async function* numbers() {
          for (let i = 1; i <= 10; i++) yield i;
        }
        assert.equal(await hub.sum(numbers()), 55);
        await assert.rejects(hub.throwHub("nope"), (error) => error instanceof HubError && /HubException: nope/.test(error.message));
        const abort = new AbortController();
        const sleeping = hub.sleep(60_000, abort.signal);
        abort.abort();
        await assert.rejects(sleeping, AbortError);
        assert.equal(await hub.echo("still alive"), "still alive");
      } finally {
        await hub.stop();
      }
    });

    test("callbacks and client results reach a registered receiver", async () => {
      const received = [];
      const client = {
        receive: (label, text) => received.push([label, text]),
        getAnswer: async (question) => ({ question, answer: 42 }),
      };
      const hub = await connectConformance(base(), { client, connection: { transport, WebSocket } });
      try {
        await hub.sendToCaller("to me");
        await waitFor(() => received.length === 1);
        assert.deepEqual(received[0][1], "to me");
        assert.deepEqual(await hub.askCaller("what?"), { question: "what?", answer: 42 });
      } finally {
        await hub.stop();
      }
    });
  });
}

test("createConformance builds without starting, and register can be undone", async () => {
  const hub = createConformance(base(), { connection: { WebSocket } });
  const received = [];
  const unregister = hub.register({ receive: (label, text) => received.push(text) });
  await hub.start();
  try {
    await hub.sendToCaller("one");
    await waitFor(() => received.length === 1);
    unregister();
    await hub.sendToCaller("two");
    assert.equal(await hub.echo("flush"), "flush");
    assert.deepEqual(received, ["one"]);
    assert.equal(typeof hub.connection.invoke, "function");
    assert.equal(await hub.connection.invoke("Add", 1, 2), 3);
  } finally {
    await hub.stop();
  }
});

async function waitFor(condition, timeout = 5000) {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
