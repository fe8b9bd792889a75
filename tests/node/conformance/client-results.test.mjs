// Client results (spec §4): the hub invokes a client method and awaits its answer — AskCaller
// asks the calling connection's `GetAnswer`, AskClient asks another connection's. Covers the
// official client's answers (values, promises, null, no handler, throwing handlers), the
// absence of a deadlock with the default parallel-invocation limit of 1, and raw Completions.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MessageType } from "@microsoft/signalr";
import { PROTOCOLS, connect, delay, openRaw, startServer, stopAll, waitUntil, withTimeout } from "./server.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

/** Asserts that `promise` rejects with an Error whose message is exactly `text`. */
async function rejectsWith(promise, text) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.message, text);
    return true;
  });
}


const askCallerError = (text) => `An unexpected error occurred invoking 'AskCaller' on the server. HubException: ${text}`;

for (const protocol of PROTOCOLS) {
  describe(`client results (${protocol})`, () => {
    let hub;
    let answer; // what the `getAnswer` handler does; set per test
    before(async () => {
      // Registered in lowercase: the server calls `GetAnswer`, JS matches case-insensitively.
      hub = await connect(server.url("/hub"), { protocol, handlers: { getAnswer: (q) => answer(q) } });
    });
    after(() => stopAll(hub));

    it("AskCaller returns the handler's value", async () => {
      answer = (q) => `answer:${q}`;
      assert.equal(await hub.invoke("AskCaller", "q"), "answer:q");
    });

    it("a handler returning a promise (resolved after 50 ms) works", async () => {
      answer = async (q) => {
        await delay(50);
        return `later:${q}`;
      };
      assert.equal(await hub.invoke("AskCaller", "q"), "later:q");
    });

    it("an object result comes back deep-equal", async () => {
      answer = () => ({ a: [1, 2], b: { c: "d" } });
      assert.deepEqual(await hub.invoke("AskCaller", "q"), { a: [1, 2], b: { c: "d" } });
    });

    it("a null result resolves to null", async () => {
      answer = () => null;
      assert.equal(await hub.invoke("AskCaller", "q"), null);
    });

    it("a handler returning undefined: 'Client didn't provide a result.'", async () => {
      answer = () => undefined;
      await rejectsWith(hub.invoke("AskCaller", "q"), askCallerError("Client didn't provide a result."));
    });

    it("a throwing handler: the JS error text as a HubException", async () => {
      answer = () => {
        throw new Error("bad");
      };
      await rejectsWith(hub.invoke("AskCaller", "q"), askCallerError("Error: bad"));
      answer = () => Promise.reject(new Error("async bad"));
      await rejectsWith(hub.invoke("AskCaller", "q"), askCallerError("Error: async bad"));
      answer = (q) => q;
      assert.equal(await hub.invoke("AskCaller", "usable"), "usable");
    });

    it("no handler registered: 'Client didn't provide a result.'", async () => {
      const bare = await connect(server.url("/hub"), { protocol });
      try {
        await rejectsWith(bare.invoke("AskCaller", "q"), askCallerError("Client didn't provide a result."));
        assert.equal(await bare.invoke("Echo", "after"), "after");
      } finally {
        await bare.stop();
      }
    });

    it("no deadlock: the handler fires another invoke on the same connection without awaiting it", async () => {
      const order = [];
      let inner;
      answer = () => {
        inner = hub.invoke("Echo", "inner").then((value) => {
          order.push("inner");
          return value;
        });
        return "ok";
      };
      const outer = hub.invoke("AskCaller", "q").then((value) => {
        order.push("outer");
        return value;
      });
      assert.equal(await withTimeout(outer, 3_000, "AskCaller did not resolve"), "ok");
      assert.equal(await withTimeout(inner, 3_000, "the inner Echo did not resolve"), "inner");
      // The inner Echo queued behind AskCaller (one invocation at a time).
      assert.deepEqual(order, ["outer", "inner"]);
    });

    it("no deadlock: an Echo sent while AskCaller waits for a slow answer completes after it", async () => {
      answer = async () => {
        await delay(300);
        return "slow";
      };
      const order = [];
      const started = Date.now();
      const outer = hub.invoke("AskCaller", "q").then((value) => order.push(["AskCaller", value]));
      const echo = hub.invoke("Echo", "x").then((value) => order.push(["Echo", value]));
      await withTimeout(Promise.all([outer, echo]), 3_000, "AskCaller + Echo did not both resolve");
      assert.deepEqual(order, [
        ["AskCaller", "slow"],
        ["Echo", "x"],
      ]);
      assert.ok(Date.now() - started >= 290, "the answer took 300 ms");
    });

    it("several AskCaller calls in a row each get their own answer", async () => {
      answer = (q) => `re:${q}`;
      const results = await Promise.all(["a", "b", "c", "d"].map((q) => hub.invoke("AskCaller", q)));
      assert.deepEqual(results, ["re:a", "re:b", "re:c", "re:d"]);
    });

    it("AskClient asks another connection", async () => {
      const other = await connect(server.url("/hub"), { protocol, handlers: { GetAnswer: (q) => `B:${q}` } });
      try {
        assert.equal(await hub.invoke("AskClient", other.connectionId, "q"), "B:q");
        // And the other way round.
        answer = (q) => `A:${q}`;
        assert.equal(await other.invoke("AskClient", hub.connectionId, "q2"), "A:q2");
      } finally {
        await other.stop();
      }
    });

    it("AskClient with an unknown connection id: 'does not exist'", async () => {
      await assert.rejects(hub.invoke("AskClient", "no-such-id", "q"), (error) => {
        assert.match(error.message, /^An unexpected error occurred invoking 'AskClient' on the server\./);
        assert.match(error.message, /does not exist/);
        return true;
      });
    });

    it("raw: the server's Invocation carries an id; a Completion with 42 answers it", async () => {
      const client = await openRaw(server.url("/hub"), protocol);
      try {
        client.send({ type: MessageType.Invocation, invocationId: "1", target: "AskCaller", arguments: ["q"] });
        const question = await client.waitFor((m) => m.type === MessageType.Invocation, 3_000, "GetAnswer");
        assert.equal(question.target, "GetAnswer");
        assert.deepEqual(question.arguments, ["q"]);
        assert.equal(typeof question.invocationId, "string");
        assert.ok(question.invocationId.length > 0);
        // A Completion for an unknown id first: ignored, AskCaller keeps waiting.
        client.send({ type: MessageType.Completion, invocationId: `${question.invocationId}-nope`, result: 1 });
        await delay(100);
        assert.deepEqual(client.messages, [question]);
        client.send({ type: MessageType.Completion, invocationId: question.invocationId, result: 42 });
        const reply = await client.waitFor((m) => m.invocationId === "1", 3_000, "AskCaller reply");
        assert.deepEqual([reply.type, reply.result, reply.error], [MessageType.Completion, 42, undefined]);
        // A second answer for the same (now finished) id is ignored too.
        client.send({ type: MessageType.Completion, invocationId: question.invocationId, result: 43 });
        client.send({ type: MessageType.Invocation, invocationId: "2", target: "Echo", arguments: ["alive"] });
        assert.equal((await client.waitFor((m) => m.invocationId === "2")).result, "alive");
        await delay(100);
        assert.equal(client.messages.length, 3, JSON.stringify(client.messages));
      } finally {
        client.close();
      }
    });

    it("raw: a null result is a result", async () => {
      const client = await openRaw(server.url("/hub"), protocol);
      try {
        client.send({ type: MessageType.Invocation, invocationId: "1", target: "AskCaller", arguments: ["q"] });
        const question = await client.waitFor((m) => m.type === MessageType.Invocation, 3_000, "GetAnswer");
        client.send({ type: MessageType.Completion, invocationId: question.invocationId, result: null });
        const reply = await client.waitFor((m) => m.invocationId === "1", 3_000, "AskCaller reply");
        assert.deepEqual([reply.type, reply.result, reply.error], [MessageType.Completion, null, undefined]);
      } finally {
        client.close();
      }
    });

    it("raw: an error answer is surfaced as a HubException", async () => {
      const client = await openRaw(server.url("/hub"), protocol);
      try {
        client.send({ type: MessageType.Invocation, invocationId: "1", target: "AskCaller", arguments: ["q"] });
        const question = await client.waitFor((m) => m.type === MessageType.Invocation, 3_000, "GetAnswer");
        client.send({ type: MessageType.Completion, invocationId: question.invocationId, error: "no idea" });
        const reply = await client.waitFor((m) => m.invocationId === "1", 3_000, "AskCaller reply");
        assert.equal(reply.type, MessageType.Completion);
        assert.equal(reply.error, askCallerError("no idea"));
      } finally {
        client.close();
      }
    });

    it("raw: a client-result Completion for an unknown id with no pending call is ignored", async () => {
      const client = await openRaw(server.url("/hub"), protocol);
      try {
        client.send({ type: MessageType.Completion, invocationId: "42", result: "stray" });
        client.send({ type: MessageType.Completion, invocationId: "43", error: "stray" });
        client.send({ type: MessageType.Invocation, invocationId: "1", target: "Echo", arguments: ["alive"] });
        const reply = await client.waitFor((m) => m.invocationId === "1", 3_000, "Echo reply");
        assert.equal(reply.result, "alive");
        await delay(100);
        assert.deepEqual(client.messages, [reply]);
      } finally {
        client.close();
      }
    });
  });
}
