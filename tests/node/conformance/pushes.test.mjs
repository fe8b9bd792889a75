// Server → client pushes to every kind of target, and groups/users/connection bookkeeping.
// Four clients: a (user "alice"), b1 and b2 (both user "bob"), c (anonymous). The handler is
// registered as lowercase `receive` while the server calls `Receive` (JS matches names
// case-insensitively). Each variant runs all clients on one protocol; "mixed" alternates
// json/messagepack so one broadcast goes out in both encodings.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Inbox, connect, startServer, stopAll, waitUntil } from "./server.mjs";

const VARIANTS = {
  json: ["json", "json", "json", "json"],
  messagepack: ["messagepack", "messagepack", "messagepack", "messagepack"],
  mixed: ["json", "messagepack", "json", "messagepack"],
};

const sorted = (ids) => [...ids].sort();

for (const [variant, [pa, pb1, pb2, pc]] of Object.entries(VARIANTS)) {
  describe(`pushes and groups (${variant})`, () => {
    let server;
    let inbox;
    let a;
    let b1;
    let b2;
    let c;

    before(async () => {
      server = await startServer();
      inbox = new Inbox();
      const url = server.url("/hub");
      const client = (name, protocol, token) =>
        connect(url, {
          protocol,
          handlers: { receive: inbox.handler(name) },
          ...(token ? { accessTokenFactory: () => token } : {}),
        });
      [a, b1, b2, c] = await Promise.all([
        client("a", pa, "alice"),
        client("b1", pb1, "bob"),
        client("b2", pb2, "bob"),
        client("c", pc),
      ]);
    });
    after(async () => {
      await stopAll(a, b1, b2, c);
      await server?.stop();
    });

    it("ConnectionCount counts the hub's connections (before any other test connects)", async () => {
      assert.equal(await a.invoke("ConnectionCount"), 4);
    });

    it("UserConnections lists a user's connections, sorted", async () => {
      assert.deepEqual(await c.invoke("UserConnections", "bob"), sorted([b1.connectionId, b2.connectionId]));
      assert.deepEqual(await c.invoke("UserConnections", "alice"), [a.connectionId]);
      assert.deepEqual(await c.invoke("UserConnections", "nobody"), []);
    });

    it("caller: only the caller", async () => {
      await a.invoke("SendToCaller", "to me");
      await inbox.expect(a, { a: [["caller", "to me"]] });
    });

    it("others: everyone but the caller", async () => {
      await a.invoke("SendToOthers", "hello others");
      const m = [["others", "hello others"]];
      await inbox.expect(a, { b1: m, b2: m, c: m });
    });

    it("all: everyone, caller included", async () => {
      await b2.invoke("SendToAll", "hello all 😀");
      const m = [["all", "hello all 😀"]];
      await inbox.expect(a, { a: m, b1: m, b2: m, c: m });
    });

    it("allExcept: everyone but the listed connections", async () => {
      await a.invoke("SendToAllExcept", [b1.connectionId, c.connectionId], "not b1 or c");
      const m = [["allExcept", "not b1 or c"]];
      await inbox.expect(a, { a: m, b2: m });
    });

    it("connection: exactly that connection", async () => {
      await a.invoke("SendToConnection", b2.connectionId, "just b2");
      await inbox.expect(a, { b2: [["connection", "just b2"]] });
    });

    it("connection: an unknown id reaches nobody and is not an error", async () => {
      await a.invoke("SendToConnection", "no-such-connection", "lost");
      await inbox.expect(a, {});
    });

    it("connections: exactly the listed connections", async () => {
      await a.invoke("SendToConnections", [b1.connectionId, c.connectionId, "unknown"], "b1 and c");
      const m = [["connections", "b1 and c"]];
      await inbox.expect(a, { b1: m, c: m });
    });

    it("group: only members, not the non-member caller", async () => {
      await b1.invoke("JoinGroup", "g-one");
      await c.invoke("JoinGroup", "g-one");
      await a.invoke("SendToGroup", "g-one", "group one");
      const m = [["group", "group one"]];
      await inbox.expect(a, { b1: m, c: m });
    });

    it("group: a member caller gets its own group push", async () => {
      await a.invoke("JoinGroup", "g-self");
      await a.invoke("SendToGroup", "g-self", "self");
      await inbox.expect(a, { a: [["group", "self"]] });
      await a.invoke("LeaveGroup", "g-self");
    });

    it("groups: the union of the groups, a member of two groups gets it once", async () => {
      await b1.invoke("JoinGroup", "g-x");
      await c.invoke("JoinGroup", "g-x");
      await c.invoke("JoinGroup", "g-y");
      await b2.invoke("JoinGroup", "g-y");
      await a.invoke("SendToGroups", ["g-x", "g-y", "g-empty"], "union");
      const m = [["groups", "union"]];
      await inbox.expect(a, { b1: m, b2: m, c: m });
    });

    it("groupExcept: members except the listed connections", async () => {
      await b1.invoke("JoinGroup", "g-except");
      await b2.invoke("JoinGroup", "g-except");
      await c.invoke("JoinGroup", "g-except");
      await a.invoke("SendToGroupExcept", "g-except", [c.connectionId, a.connectionId], "not c");
      const m = [["groupExcept", "not c"]];
      await inbox.expect(a, { b1: m, b2: m });
    });

    it("othersInGroup: the group's members except the caller", async () => {
      await b1.invoke("JoinGroup", "g-others");
      await c.invoke("JoinGroup", "g-others");
      await b1.invoke("SendToOthersInGroup", "g-others", "hi group");
      await inbox.expect(a, { c: [["othersInGroup", "hi group"]] });
    });

    it("user: every connection of that user and nobody else", async () => {
      await c.invoke("SendToUser", "bob", "for bob");
      const m = [["user", "for bob"]];
      await inbox.expect(a, { b1: m, b2: m });
    });

    it("user: an unknown user reaches nobody", async () => {
      await a.invoke("SendToUser", "nobody", "lost");
      await inbox.expect(a, {});
    });

    it("users: every connection of every listed user", async () => {
      await c.invoke("SendToUsers", ["bob", "alice", "nobody"], "for users");
      const m = [["users", "for users"]];
      await inbox.expect(a, { a: m, b1: m, b2: m });
    });

    it("SendLater: a push through the hub context after the method returned", async () => {
      await b1.invoke("SendLater", 100, "from later");
      assert.deepEqual(inbox.messagesOf("b1"), [], "the push must not arrive before its delay");
      await waitUntil(() => inbox.messagesOf("b1").length > 0, 3_000, "SendLater push did not arrive");
      await inbox.expect(a, { b1: [["later", "from later"]] });
    });

    it("join then leave: a former member gets nothing", async () => {
      await c.invoke("JoinGroup", "g-leave");
      await a.invoke("SendToGroup", "g-leave", "while member");
      await inbox.expect(a, { c: [["group", "while member"]] });
      await c.invoke("LeaveGroup", "g-leave");
      await a.invoke("SendToGroup", "g-leave", "after leaving");
      await inbox.expect(a, {});
      assert.deepEqual(await a.invoke("GroupMembers", "g-leave"), []);
    });

    it("joining twice is idempotent", async () => {
      await b2.invoke("JoinGroup", "g-twice");
      await b2.invoke("JoinGroup", "g-twice");
      assert.deepEqual(await a.invoke("GroupMembers", "g-twice"), [b2.connectionId]);
      await a.invoke("SendToGroup", "g-twice", "once");
      await inbox.expect(a, { b2: [["group", "once"]] });
    });

    it("GroupMembers lists exactly the members, sorted", async () => {
      await b1.invoke("JoinGroup", "g-members");
      await c.invoke("JoinGroup", "g-members");
      await a.invoke("JoinGroup", "g-members");
      assert.deepEqual(
        await b2.invoke("GroupMembers", "g-members"),
        sorted([a.connectionId, b1.connectionId, c.connectionId]),
      );
      assert.deepEqual(await b2.invoke("GroupMembers", "g-never-used"), []);
    });

    it("MyGroups lists the caller's groups, sorted", async () => {
      const client = await connect(server.url("/hub"), { protocol: pa });
      try {
        assert.deepEqual(await client.invoke("MyGroups"), []);
        for (const group of ["zeta", "alpha", "mid"]) await client.invoke("JoinGroup", group);
        assert.deepEqual(await client.invoke("MyGroups"), ["alpha", "mid", "zeta"]);
        await client.invoke("LeaveGroup", "mid");
        assert.deepEqual(await client.invoke("MyGroups"), ["alpha", "zeta"]);
      } finally {
        await client.stop();
      }
    });

    it("a stopped connection leaves its groups and the counts", async () => {
      // Earlier tests' short-lived connections may still be on their way out.
      const before = 4;
      await waitUntil(async () => (await a.invoke("ConnectionCount")) === before, 3_000, "ConnectionCount != 4");
      const temp = await connect(server.url("/hub"), { protocol: pc, accessTokenFactory: () => "temp-user" });
      let stopped = false;
      try {
        assert.equal(await a.invoke("ConnectionCount"), before + 1);
        assert.deepEqual(await a.invoke("UserConnections", "temp-user"), [temp.connectionId]);
        await temp.invoke("JoinGroup", "g-temp");
        await c.invoke("JoinGroup", "g-temp");
        assert.deepEqual(await a.invoke("GroupMembers", "g-temp"), sorted([temp.connectionId, c.connectionId]));
        await temp.stop();
        stopped = true;
        await waitUntil(
          async () => (await a.invoke("GroupMembers", "g-temp")).length === 1,
          3_000,
          "the stopped connection stayed in its group",
        );
        assert.deepEqual(await a.invoke("GroupMembers", "g-temp"), [c.connectionId]);
        assert.equal(await a.invoke("ConnectionCount"), before);
        assert.deepEqual(await a.invoke("UserConnections", "temp-user"), []);
        await a.invoke("SendToGroup", "g-temp", "after stop");
        await inbox.expect(a, { c: [["group", "after stop"]] });
      } finally {
        if (!stopped) await temp.stop();
      }
    });

  });
}
