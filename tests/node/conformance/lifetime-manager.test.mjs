// The lifetime-manager seam, proven from outside hub-server: with LIFETIME_MANAGER=counting the
// conformance hub runs on `CountingManager` (examples/conformance/counting.rs), a manager written
// against hub-server's public API that wraps the local one and counts every call it forwards.
// The real-client suites for client results, pushes/groups/users/introspection and close/abort
// run again here, unchanged, through it; a last scenario uses every seam method on one server and
// reads the counts back (`ManagerCalls`), so a call that bypassed the manager would show as 0.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

process.env.LIFETIME_MANAGER = "counting";
const { connect, startServer, stopAll, waitUntil } = await import("./server.mjs");
await import("./client-results.test.mjs");
await import("./pushes.test.mjs");
await import("./close.test.mjs");

describe("every seam method is reached through the wrapping manager", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => server?.stop());

  it("client results, groups, users, introspection, sends and abort all go through it", async () => {
    const url = server.url("/hub");
    const received = [];
    const alice = await connect(url, {
      accessTokenFactory: () => "alice",
      handlers: { getAnswer: (question) => `alice:${question}`, receive: (...args) => received.push(args) },
    });
    const bob = await connect(url, {
      accessTokenFactory: () => "bob",
      handlers: { getAnswer: (question) => `bob:${question}` },
    });
    try {
      // Client results both ways: the invocation out through the manager, the Completion back.
      assert.equal(await alice.invoke("AskCaller", "q"), "alice:q");
      assert.equal(await alice.invoke("AskClient", bob.connectionId, "r"), "bob:r");
      // Groups and introspection.
      await alice.invoke("JoinGroup", "g");
      assert.deepEqual(await bob.invoke("GroupMembers", "g"), [alice.connectionId]);
      assert.deepEqual(await alice.invoke("MyGroups"), ["g"]);
      await bob.invoke("SendToGroup", "g", "to g");
      await waitUntil(() => received.some(([, text]) => text === "to g"));
      await alice.invoke("LeaveGroup", "g");
      assert.deepEqual(await bob.invoke("GroupMembers", "g"), []);
      assert.deepEqual(await alice.invoke("UserConnections", "bob"), [bob.connectionId]);
      assert.equal(await alice.invoke("ConnectionCount"), 2);
      // Abort by target: bob is ended from alice's call.
      const closed = new Promise((resolve) => bob.onclose(resolve));
      assert.equal(await alice.invoke("Kick", bob.connectionId), true);
      await closed;
      await waitUntil(async () => (await alice.invoke("ConnectionCount")) === 1);

      const calls = await alice.invoke("ManagerCalls");
      for (const method of [
        "bind",
        "add_connection",
        "remove_connection",
        "send",
        "invoke_client",
        "complete_client_result",
        "add_to_group",
        "remove_from_group",
        "group_members",
        "groups_of",
        "user_connections",
        "connection_count",
        "abort",
      ]) {
        assert.ok(calls[method] > 0, `${method} was never called through the manager: ${JSON.stringify(calls)}`);
      }
      assert.equal(calls.bind, 6, "one bind per hub (/hub, /no-ws, /detailed, /strict-contract, /refreshing, /refreshing-lenient)");
      assert.equal(calls.invoke_client, 2);
      assert.equal(calls.complete_client_result, 2);
    } finally {
      await stopAll(alice, bob);
    }
  });
});
