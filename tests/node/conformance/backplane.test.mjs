// Several conformance servers on one Redis (REDIS_URL: every hub on the hub-redis backplane),
// official clients attached to different nodes over every transport and both protocols:
// each target kind delivers exactly once across nodes, group changes and client results reach
// connections on other nodes, introspection answers for the whole cluster, a node killed with
// SIGKILL is noticed within the liveness bound (heartbeat 200 ms, dead after 3 missed), and a
// Redis outage is survived. Each scenario that breaks something gets its own Redis and nodes.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { HttpTransportType } from "@microsoft/signalr";
import { startRedis } from "../redis.mjs";
import { assertAlive, startNodes, stopNodes } from "./nodes.mjs";
import { Inbox, connect, delay, stopAll, waitUntil, withTimeout } from "./server.mjs";

const { WebSockets, ServerSentEvents, LongPolling } = HttpTransportType;
// How long a duplicate (a second path through Redis) gets to show up before exactly-once is
// checked: a copy takes milliseconds, so this is generous.
const QUIET_MS = 250;
// A hang (an invocation that never completes) fails its suite instead of the whole run.
const SUITE_TIMEOUT_MS = 60_000;

const sorted = (ids) => [...ids].sort();
const key = (message) => JSON.stringify(message);
const countOf = (list, message) => list.filter((m) => key(m) === key(message)).length;

const askClientError = (text) =>
  `An unexpected error occurred invoking 'AskClient' on the server. HubException: ${text}`;

async function rejectsWith(promise, text) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.message, text);
    return true;
  });
}

/**
 * Connects the clients described by `specs` ({ name, node, transport, protocol, user }) to
 * their nodes, each with `receive` into `inbox` and `getAnswer` answering `${name}:${question}`
 * unless `answers[name]` is set.
 */
async function connectClients(nodes, specs, inbox, answers = {}) {
  const clients = await Promise.all(
    specs.map(({ name, node, transport, protocol, user }) =>
      connect(nodes[node].url("/hub"), {
        transport,
        protocol,
        ...(user ? { accessTokenFactory: () => user } : {}),
        handlers: {
          receive: inbox.handler(name),
          getAnswer: (question) => (answers[name] ? answers[name](question) : `${name}:${question}`),
        },
      }),
    ),
  );
  return Object.fromEntries(specs.map(({ name }, i) => [name, clients[i]]));
}

/**
 * Like `inbox.expect`, for pushes that cross nodes: pushes sent through different nodes have no
 * common order, so the barrier alone doesn't prove that every earlier push arrived. First wait
 * until each expected push is there, then give duplicates time to show up, then check exactly
 * `expected` (a missing push shows in expect's diff).
 */
async function expectOnce(inbox, caller, expected) {
  const arrived = () =>
    Object.entries(expected).every(([name, want]) =>
      want.every((message) => countOf(inbox.messagesOf(name), message) >= countOf(want, message)),
    );
  await waitUntil(arrived, 5_000).catch(() => {});
  await delay(QUIET_MS);
  await inbox.expect(caller, expected);
}

/** Forgets what every client received so far. */
function clearInbox(inbox, names) {
  for (const name of names) inbox.messagesOf(name).length = 0;
}

/** Waits until every caller's node counts `count` connections cluster-wide. */
function connectionCountIs(callers, count, timeoutMs = 5_000) {
  return waitUntil(
    async () => (await Promise.all(callers.map((c) => c.invoke("ConnectionCount")))).every((n) => n === count),
    timeoutMs,
    `ConnectionCount did not become ${count} on every node`,
  );
}

describe("backplane: three nodes on one Redis", { timeout: SUITE_TIMEOUT_MS }, () => {
  // Every transport × protocol the official client offers (SSE is text only), two per node,
  // both protocols on every node; alice and bob each have connections on two nodes.
  const SPECS = [
    { name: "a1", node: "a", transport: WebSockets, protocol: "json", user: "alice" },
    { name: "a2", node: "a", transport: LongPolling, protocol: "messagepack", user: "bob" },
    { name: "b1", node: "b", transport: ServerSentEvents, protocol: "json", user: "bob" },
    { name: "b2", node: "b", transport: WebSockets, protocol: "messagepack" },
    { name: "c1", node: "c", transport: LongPolling, protocol: "json", user: "carol" },
    { name: "c2", node: "c", transport: WebSockets, protocol: "messagepack", user: "alice" },
  ];
  const NAMES = SPECS.map(({ name }) => name);
  let redis;
  let nodes;
  let inbox;
  let answers;
  let a1;
  let a2;
  let b1;
  let b2;
  let c1;
  let c2;

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(redis, ["a", "b", "c"]);
    inbox = new Inbox();
    answers = {};
    ({ a1, a2, b1, b2, c1, c2 } = await connectClients(nodes, SPECS, inbox, answers));
    // The cluster is formed: every node counts every connection, a broadcast reaches everyone.
    await connectionCountIs([a1, b1, c1], 6);
    await inbox.settle(a1, 5_000);
  });
  after(async () => {
    await stopAll(a1, a2, b1, b2, c1, c2);
    await stopNodes(nodes);
    await redis?.stop();
  });

  it("all: every connection on every node, once", async () => {
    await c1.invoke("SendToAll", "to everyone");
    const m = [["all", "to everyone"]];
    await expectOnce(inbox, a1, Object.fromEntries(NAMES.map((name) => [name, m])));
  });

  it("others: everyone but the caller, on every node", async () => {
    await b1.invoke("SendToOthers", "not b1");
    const m = [["others", "not b1"]];
    await expectOnce(inbox, b1, { a1: m, a2: m, b2: m, c1: m, c2: m });
  });

  it("allExcept: everyone but the listed connections, on any node", async () => {
    await a1.invoke("SendToAllExcept", [a2.connectionId, b2.connectionId, c1.connectionId], "some");
    const m = [["allExcept", "some"]];
    await expectOnce(inbox, a1, { a1: m, b1: m, c2: m });
  });

  it("connection: exactly that connection, wherever it is; an unknown id reaches nobody", async () => {
    for (const [name, client] of Object.entries({ a2, b1, b2, c1, c2 })) {
      await a1.invoke("SendToConnection", client.connectionId, `just ${name}`);
    }
    await a1.invoke("SendToConnection", "no-such-connection", "lost");
    await expectOnce(inbox, a1, {
      a2: [["connection", "just a2"]],
      b1: [["connection", "just b1"]],
      b2: [["connection", "just b2"]],
      c1: [["connection", "just c1"]],
      c2: [["connection", "just c2"]],
    });
  });

  it("connections: exactly the listed connections across nodes", async () => {
    await c2.invoke("SendToConnections", [a2.connectionId, b1.connectionId, c1.connectionId, "unknown"], "listed");
    const m = [["connections", "listed"]];
    await expectOnce(inbox, c2, { a2: m, b1: m, c1: m });
  });

  it("group: members on every node, not the non-member caller", async () => {
    await Promise.all([a2, b2, c1].map((client) => client.invoke("JoinGroup", "bp-group")));
    await b1.invoke("SendToGroup", "bp-group", "to the group");
    const m = [["group", "to the group"]];
    await expectOnce(inbox, b1, { a2: m, b2: m, c1: m });
  });

  it("groups: the union across nodes; a connection in two of the groups gets it once", async () => {
    // a1 (the caller's node) and b1 (another node) are in both groups.
    await a1.invoke("JoinGroup", "bp-x");
    await a1.invoke("JoinGroup", "bp-y");
    await b1.invoke("JoinGroup", "bp-x");
    await b1.invoke("JoinGroup", "bp-y");
    await b2.invoke("JoinGroup", "bp-x");
    await c2.invoke("JoinGroup", "bp-y");
    await a2.invoke("SendToGroups", ["bp-x", "bp-y", "bp-empty"], "union");
    const m = [["groups", "union"]];
    await expectOnce(inbox, a2, { a1: m, b1: m, b2: m, c2: m });
  });

  it("groupExcept: members but the listed connections, across nodes", async () => {
    await Promise.all([a1, b1, b2, c1, c2].map((client) => client.invoke("JoinGroup", "bp-except")));
    await a2.invoke("SendToGroupExcept", "bp-except", [b2.connectionId, c1.connectionId], "not b2 or c1");
    const m = [["groupExcept", "not b2 or c1"]];
    await expectOnce(inbox, a2, { a1: m, b1: m, c2: m });
  });

  it("othersInGroup: the group's members on every node but the caller", async () => {
    await Promise.all([a1, a2, b2, c1].map((client) => client.invoke("JoinGroup", "bp-others")));
    await a1.invoke("SendToOthersInGroup", "bp-others", "hi group");
    const m = [["othersInGroup", "hi group"]];
    await expectOnce(inbox, a1, { a2: m, b2: m, c1: m });
  });

  it("user: every connection of a user with connections on two nodes", async () => {
    await b2.invoke("SendToUser", "alice", "for alice");
    await expectOnce(inbox, b2, { a1: [["user", "for alice"]], c2: [["user", "for alice"]] });
    await c1.invoke("SendToUser", "bob", "for bob");
    await expectOnce(inbox, c1, { a2: [["user", "for bob"]], b1: [["user", "for bob"]] });
    await a1.invoke("SendToUser", "nobody", "lost");
    await expectOnce(inbox, a1, {});
  });

  it("users: every connection of every listed user, across nodes", async () => {
    await c1.invoke("SendToUsers", ["alice", "bob", "nobody"], "for users");
    const m = [["users", "for users"]];
    await expectOnce(inbox, c1, { a1: m, a2: m, b1: m, c2: m });
  });

  it("no copy of an earlier push arrives late", async () => {
    await delay(500);
    await inbox.expect(a1, {});
  });

  it("AddToGroup on a for a connection on b, SendToGroup from c reaches it; RemoveFromGroup stops it", async () => {
    await a1.invoke("AddToGroup", b2.connectionId, "bp-remote");
    await a1.invoke("AddToGroup", a2.connectionId, "bp-remote"); // and one on a itself
    // Done once AddToGroup completed: the owner has added it.
    assert.deepEqual(await c1.invoke("GroupMembers", "bp-remote"), sorted([a2.connectionId, b2.connectionId]));
    await c1.invoke("SendToGroup", "bp-remote", "added");
    await expectOnce(inbox, c1, { a2: [["group", "added"]], b2: [["group", "added"]] });

    await a1.invoke("RemoveFromGroup", b2.connectionId, "bp-remote");
    assert.deepEqual(await c1.invoke("GroupMembers", "bp-remote"), [a2.connectionId]);
    assert.ok(!(await b2.invoke("MyGroups")).includes("bp-remote"), "b2 still lists bp-remote");
    await c1.invoke("SendToGroup", "bp-remote", "removed");
    await expectOnce(inbox, c1, { a2: [["group", "removed"]] });

    // Between two nodes that are neither the caller's: from b, for c's connection, sent from a.
    await b1.invoke("AddToGroup", c2.connectionId, "bp-remote-2");
    await a1.invoke("SendToGroup", "bp-remote-2", "via b");
    await expectOnce(inbox, a1, { c2: [["group", "via b"]] });
    await b1.invoke("RemoveFromGroup", c2.connectionId, "bp-remote-2");
    await a1.invoke("SendToGroup", "bp-remote-2", "gone");
    await expectOnce(inbox, a1, {});
  });

  it("client results: AskClient on one node for connections on others, values and the client's errors", async () => {
    // Over SSE (b) and long polling (c), from a WebSocket caller on a.
    assert.equal(await a1.invoke("AskClient", b1.connectionId, "q1"), "b1:q1");
    assert.equal(await a1.invoke("AskClient", c1.connectionId, "q2"), "c1:q2");
    // A MessagePack client's object answer reaches a JSON caller on another node intact.
    answers.b2 = async () => {
      await delay(50);
      return { a: [1, 2], b: { c: "d" }, n: null };
    };
    assert.deepEqual(await c1.invoke("AskClient", b2.connectionId, "q3"), { a: [1, 2], b: { c: "d" }, n: null });
    // The handler's own error text, thrown or rejected.
    answers.a2 = () => {
      throw new Error("a2 refuses");
    };
    await rejectsWith(b1.invoke("AskClient", a2.connectionId, "q"), askClientError("Error: a2 refuses"));
    answers.c2 = () => Promise.reject(new Error("c2 refuses later"));
    await rejectsWith(a1.invoke("AskClient", c2.connectionId, "q"), askClientError("Error: c2 refuses later"));
    answers.c2 = () => undefined;
    await rejectsWith(a1.invoke("AskClient", c2.connectionId, "q"), askClientError("Client didn't provide a result."));
    delete answers.a2;
    delete answers.b2;
    delete answers.c2;
    // Concurrent questions from three nodes: each answer goes back to its asker.
    const results = await Promise.all([
      a1.invoke("AskClient", b1.connectionId, "x"),
      b2.invoke("AskClient", c1.connectionId, "y"),
      c2.invoke("AskClient", a2.connectionId, "z"),
    ]);
    assert.deepEqual(results, ["b1:x", "c1:y", "a2:z"]);
    // An id no node owns fails at once (not at the client-result timeout).
    await assert.rejects(
      withTimeout(a1.invoke("AskClient", "no-such-id", "q"), 3_000, "AskClient to an unknown id hung"),
      (error) => {
        assert.match(error.message, /^An unexpected error occurred invoking 'AskClient' on the server\./);
        assert.match(error.message, /does not exist/);
        return true;
      },
    );
  });

  it("introspection answers for all nodes: ConnectionCount, UserConnections, GroupMembers, MyGroups", async () => {
    for (const caller of [a1, b1, c1]) assert.equal(await caller.invoke("ConnectionCount"), 6);
    assert.deepEqual(await b2.invoke("UserConnections", "alice"), sorted([a1.connectionId, c2.connectionId]));
    assert.deepEqual(await c1.invoke("UserConnections", "bob"), sorted([a2.connectionId, b1.connectionId]));
    assert.deepEqual(await a1.invoke("UserConnections", "carol"), [c1.connectionId]);
    assert.deepEqual(await a1.invoke("UserConnections", "nobody"), []);

    await Promise.all([a1, b2, c1].map((client) => client.invoke("JoinGroup", "bp-intro")));
    const members = sorted([a1.connectionId, b2.connectionId, c1.connectionId]);
    for (const caller of [a2, b1, c2]) assert.deepEqual(await caller.invoke("GroupMembers", "bp-intro"), members);
    assert.deepEqual(await b1.invoke("GroupMembers", "bp-never-used"), []);

    // A short-lived connection on c: counted everywhere, its groups (one joined itself, one
    // added from node a) in MyGroups, sorted; gone everywhere once it stops.
    const temp = await connect(nodes.c.url("/hub"), { protocol: "messagepack", accessTokenFactory: () => "temp-user" });
    let stopped = false;
    try {
      assert.equal(await a1.invoke("ConnectionCount"), 7);
      assert.deepEqual(await b1.invoke("UserConnections", "temp-user"), [temp.connectionId]);
      await temp.invoke("JoinGroup", "bp-zeta");
      await a1.invoke("AddToGroup", temp.connectionId, "bp-alpha");
      assert.deepEqual(await temp.invoke("MyGroups"), ["bp-alpha", "bp-zeta"]);
      assert.deepEqual(await b1.invoke("GroupMembers", "bp-alpha"), [temp.connectionId]);
      await temp.stop();
      stopped = true;
      await waitUntil(
        async () =>
          (await a1.invoke("ConnectionCount")) === 6 &&
          (await b1.invoke("GroupMembers", "bp-alpha")).length === 0 &&
          (await b1.invoke("UserConnections", "temp-user")).length === 0,
        3_000,
        "the stopped connection stayed in the count, its group or its user",
      );
    } finally {
      if (!stopped) await temp.stop();
    }
    assertAlive(nodes);
  });
});

describe("backplane: a node killed with SIGKILL", { timeout: SUITE_TIMEOUT_MS }, () => {
  let redis;
  let nodes;
  let inbox;
  let clients = {};

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(redis, ["a", "b", "c"]);
    inbox = new Inbox();
    // yuri has a connection on b (killed) and one on c (survives).
    clients = await connectClients(
      nodes,
      [
        { name: "x", node: "a", transport: WebSockets, protocol: "json" },
        { name: "y1", node: "b", transport: WebSockets, protocol: "json", user: "yuri" },
        { name: "y2", node: "b", transport: WebSockets, protocol: "messagepack" },
        { name: "w", node: "c", transport: WebSockets, protocol: "messagepack", user: "yuri" },
      ],
      inbox,
    );
    await connectionCountIs([clients.x, clients.w], 4);
  });
  after(async () => {
    await stopAll(Object.values(clients));
    await stopNodes(nodes);
    await redis?.stop();
  });

  it("client results to its connections fail fast, its connections leave the counts, the rest goes on", async () => {
    const { x, y1, y2, w } = clients;
    await Promise.all([x, y1, w].map((client) => client.invoke("JoinGroup", "bp-kill")));
    // Before: b's connections answer and are counted.
    assert.equal(await x.invoke("AskClient", y2.connectionId, "q"), "y2:q");
    assert.deepEqual(
      await w.invoke("GroupMembers", "bp-kill"),
      sorted([x.connectionId, y1.connectionId, w.connectionId]),
    );
    const y2Id = y2.connectionId;

    const killedAt = Date.now();
    await nodes.b.stop(); // SIGKILL: no goodbye to Redis or the other nodes
    // w polls while x waits for its answer (one invocation at a time per connection).
    const asked = (async () => {
      await assert.rejects(
        withTimeout(x.invoke("AskClient", y2Id, "q"), 10_000, "AskClient to the killed node's connection hung"),
        (error) => {
          assert.match(error.message, /is unavailable|does not exist/);
          return true;
        },
      );
      return Date.now() - killedAt;
    })();
    const left = (async () => {
      await waitUntil(
        async () =>
          (await w.invoke("ConnectionCount")) === 2 &&
          key(await w.invoke("GroupMembers", "bp-kill")) === key(sorted([x.connectionId, w.connectionId])),
        3_000,
        "the killed node's connections did not leave ConnectionCount/GroupMembers",
      );
      return Date.now() - killedAt;
    })();
    const [askedAfter] = await Promise.all([asked, left]);
    assert.ok(askedAfter < 3_000, `AskClient failed only after ${askedAfter} ms`);
    assert.deepEqual(await x.invoke("UserConnections", "yuri"), [w.connectionId]);
    assert.equal(await x.invoke("ConnectionCount"), 2);

    // The surviving nodes still talk to each other.
    inbox.remove("y1");
    inbox.remove("y2");
    await x.invoke("SendToGroup", "bp-kill", "after the kill");
    await expectOnce(inbox, x, { x: [["group", "after the kill"]], w: [["group", "after the kill"]] });
    assert.equal(await w.invoke("AskClient", x.connectionId, "q"), "x:q");
    assertAlive({ a: nodes.a, c: nodes.c });
  });
});

describe("backplane: Redis stopped and restarted mid-run", { timeout: SUITE_TIMEOUT_MS }, () => {
  let redis;
  let nodes;
  let inbox;
  let clients = {};
  const NAMES = ["p", "q", "r", "s"];

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(redis, ["a", "b"]);
    inbox = new Inbox();
    clients = await connectClients(
      nodes,
      [
        { name: "p", node: "a", transport: WebSockets, protocol: "json", user: "pat" },
        { name: "q", node: "a", transport: LongPolling, protocol: "messagepack" },
        { name: "r", node: "b", transport: WebSockets, protocol: "messagepack", user: "rob" },
        { name: "s", node: "b", transport: ServerSentEvents, protocol: "json" },
      ],
      inbox,
    );
    await connectionCountIs([clients.p, clients.r], 4);
  });
  after(async () => {
    await stopAll(Object.values(clients));
    await stopNodes(nodes);
    await redis?.stop();
  });

  it("while down, sends complete and local deliveries go on; once back, cross-node sends resume", async () => {
    const { p, r } = clients;
    await r.invoke("JoinGroup", "bp-outage");
    await p.invoke("SendToAll", "before");
    const m0 = [["all", "before"]];
    await expectOnce(inbox, p, { p: m0, q: m0, r: m0, s: m0 });

    await redis.stop();
    // The hub method completes (resolved, or rejected with an error) instead of hanging.
    await withTimeout(
      p.invoke("SendToAll", "during").then(
        () => "resolved",
        (error) => `rejected: ${error.message}`,
      ),
      8_000,
      "SendToAll hung while Redis was down",
    );
    await waitUntil(
      () => ["p", "q"].every((name) => inbox.messagesOf(name).some(([, text]) => text === "during")),
      3_000,
      "the local clients did not get the SendToAll while Redis was down",
    );
    // Both nodes still serve their own clients.
    assert.equal(await p.invoke("Echo", "alive a"), "alive a");
    assert.equal(await r.invoke("Echo", "alive b"), "alive b");
    assertAlive(nodes);

    await redis.start(); // same port, empty: no connection table, no subscriptions
    /** Sends with `send(text)` until `receiver` (on the other node) gets one of them. */
    const resumes = (what, receiver, send) => {
      let n = 0;
      return waitUntil(
        async () => {
          await send(`${what} ${++n}`).catch(() => {});
          await delay(100);
          return inbox.messagesOf(receiver).some(([, text]) => text.startsWith(`${what} `));
        },
        10_000,
        `${what}: cross-node sends did not resume after Redis came back`,
      );
    };
    await resumes("a to b", "r", (text) => p.invoke("SendToAll", text));
    await resumes("b to a", "p", (text) => r.invoke("SendToAll", text));
    await resumes("connection", "r", (text) => p.invoke("SendToConnection", r.connectionId, text));
    await resumes("group", "r", (text) => p.invoke("SendToGroup", "bp-outage", text));
    await resumes("user", "p", (text) => r.invoke("SendToUser", "pat", text));

    // Drain what the polling sent, then: one copy each (no doubled subscription after the
    // reconnect), and the connection table and client results are back.
    await delay(QUIET_MS);
    await inbox.settle(p, 5_000);
    clearInbox(inbox, NAMES);
    await p.invoke("SendToAll", "after");
    const m = [["all", "after"]];
    await expectOnce(inbox, p, { p: m, q: m, r: m, s: m });
    await p.invoke("SendToGroup", "bp-outage", "group after");
    await expectOnce(inbox, p, { r: [["group", "group after"]] });
    await connectionCountIs([p, r], 4);
    assert.equal(await p.invoke("AskClient", r.connectionId, "q"), "r:q");
    assertAlive(nodes);
  });
});
