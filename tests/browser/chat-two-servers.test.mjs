// The chat example on two servers (examples/chat with REDIS_URL) in headless Chromium: a Redis of
// its own (redis.mjs), two chat processes on it, each on its own port, and people on both. What
// one server knows the other must too: rooms, presence, messages, private messages, nicknames
// and history.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import {
  ARTIFACTS,
  WAIT,
  buildChat,
  connected,
  enterRoom,
  launchChromium,
  openChat,
  say,
  seen,
  startChat,
  waitForMembers,
} from "./chat-page.mjs";
import { startRedis } from "./redis.mjs";

let redis;
/** The two chat servers: `a` and `b`. */
const servers = {};
let browser;
/** Every page's uncaught errors: a test fails if its pages threw. */
const pageErrors = [];

before(async () => {
  buildChat();
  redis = await startRedis();
  for (const name of ["a", "b"]) {
    servers[name] = await startChat({ REDIS_URL: redis.url });
    assert.match(servers[name].lines.join("\n"), /chat: state in Redis/, `server ${name} is not on Redis`);
  }
  assert.notEqual(servers.a.url, servers.b.url);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await Promise.all(Object.values(servers).map((server) => server.stop()));
  await redis?.stop();
});

/** Opens the chat on server `server` as `nickname`. */
function open(server, nickname) {
  return openChat(browser, servers[server].url, nickname, { errors: pageErrors });
}

test("two people on two servers talk, see each other's presence and private messages; history crosses too", async () => {
  const alice = await open("a", "alice");
  const bob = await open("b", "bob");
  try {
    // A room created on server A shows up on server B.
    await enterRoom(alice, "across", true);
    await enterRoom(bob, "across");
    await waitForMembers(alice, ["alice", "bob"]);
    await waitForMembers(bob, ["alice", "bob"]);
    // Alice's activity stream (server A) reports bob's join (server B).
    await alice.locator("#messages .message.system", { hasText: "bob joined" }).waitFor({ timeout: WAIT });

    await say(alice, "hello from server A");
    await seen(bob, "hello from server A");
    await say(bob, "and hello from server B");
    await seen(alice, "and hello from server B");

    await bob.fill("#message-input", "typing on B…");
    await alice.locator("#typing", { hasText: "bob is typing…" }).waitFor({ timeout: WAIT });

    // A private message from A to B, and one back with /msg.
    await alice.click("#members li[data-nickname=bob]");
    await alice.locator("#pm-chip:not([hidden])", { hasText: "bob" }).waitFor({ timeout: WAIT });
    await say(alice, "psst, bob: only you on server B see this");
    await seen(bob, "psst, bob: only you on server B see this", "#messages .message.private");
    assert.equal(await bob.textContent("#messages .message.private .from"), "alice → you");
    await alice.click("#pm-cancel");
    await say(bob, "/msg alice got it, over on A?");
    await seen(alice, "got it, over on A?", "#messages .message.private");

    // Nicknames are unique across the servers.
    const impostor = await browser.newPage();
    try {
      await impostor.goto(servers.b.url);
      await connected(impostor, "the second alice");
      await impostor.fill("#nickname-input", "Alice");
      await impostor.click("#nickname-submit");
      await impostor.locator("#nickname-error[data-kind=NicknameTaken]", { hasText: "Someone is already called “Alice”" }).waitFor({ timeout: WAIT });
      // The suggestion is free on both servers (the nicknames are in Redis).
      assert.equal(await impostor.textContent("#nickname-suggestion-use"), "Use Alice2");
    } finally {
      await impostor.close();
    }

    // Carol comes later, on server B: the room's history holds what was said on both servers.
    const carol = await open("b", "carol");
    try {
      await enterRoom(carol, "across");
      await seen(carol, "hello from server A");
      const texts = await carol.$$eval("#messages .message:not(.system):not(.private) .text", (items) => items.map((item) => item.textContent));
      assert.deepEqual(texts, ["hello from server A", "and hello from server B"]);
      await waitForMembers(alice, ["alice", "bob", "carol"]);
      await say(carol, "hi both, from B");
      await seen(alice, "hi both, from B");
      mkdirSync(ARTIFACTS, { recursive: true });
      await alice.screenshot({ path: `${ARTIFACTS}chat-two-servers.png` });
    } finally {
      await carol.close();
    }

    // Leaving server B shows on server A; the nickname is free again, on A too.
    await waitForMembers(alice, ["alice", "bob"]);
    await bob.close();
    await waitForMembers(alice, ["alice"]);
    await alice.locator("#messages .message.system", { hasText: "bob left (disconnected" }).waitFor({ timeout: WAIT });
    const bobAgain = await open("a", "bob");
    await bobAgain.close();
  } finally {
    await alice.close();
    await bob.close();
  }
  assert.deepEqual(pageErrors, []);
});
