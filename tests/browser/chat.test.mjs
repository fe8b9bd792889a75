// The chat example (examples/chat) in headless Chromium: Debian's /usr/bin/chromium driven by
// playwright-core. Starts the chat binary on a free port and opens one page per person; every
// page talks to the server through the generated client (examples/chat/client) over the
// transport its `?transport=` asks for.
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

let server;
let baseUrl;
let browser;
/** Every page's uncaught errors: a test fails if its pages threw. */
const pageErrors = [];

before(async () => {
  buildChat();
  server = await startChat();
  baseUrl = server.url;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Opens the chat as `nickname` (in its own browser context) and waits until it is in #general. */
function open(nickname, transport) {
  return openChat(browser, baseUrl, nickname, { transport, errors: pageErrors });
}

test("two pages join a room and talk both ways; typing shows; a later joiner gets the history", async () => {
  const alice = await open("alice");
  const bob = await open("bob");
  try {
    // No transport asked for: the first one, WebSockets, must work (no silent fallback).
    assert.equal(await alice.textContent("#transport"), "via WebSockets");
    assert.equal(await alice.getAttribute("#transport", "data-client-transport"), "WebSockets");
    await waitForMembers(alice, ["alice", "bob"]);
    await say(alice, "hello bob, welcome to #general");
    await seen(bob, "hello bob, welcome to #general");
    await seen(alice, "hello bob, welcome to #general", "#messages .message.mine");
    await say(bob, "hi alice! glad to be here");
    await seen(alice, "hi alice! glad to be here");

    await bob.fill("#message-input", "typing something…");
    await alice.locator("#typing", { hasText: "bob is typing…" }).waitFor({ timeout: WAIT });

    const carol = await open("carol");
    try {
      // History: what was said before carol came, oldest first.
      await seen(carol, "hello bob, welcome to #general");
      const texts = await carol.$$eval("#messages .message:not(.system) .text", (items) => items.map((item) => item.textContent));
      assert.deepEqual(texts.slice(-2), ["hello bob, welcome to #general", "hi alice! glad to be here"]);
      await waitForMembers(alice, ["alice", "bob", "carol"]);
      await say(carol, "hey both, what did I miss?");
      await seen(alice, "hey both, what did I miss?");
      await seen(bob, "hey both, what did I miss?");
      mkdirSync(ARTIFACTS, { recursive: true });
      await alice.screenshot({ path: `${ARTIFACTS}chat.png` });
    } finally {
      await carol.close();
    }
  } finally {
    await alice.close();
    await bob.close();
  }
  assert.deepEqual(pageErrors, []);
});

test("presence and the activity stream follow joins and leaves", async () => {
  const dana = await open("dana");
  const eli = await open("eli");
  try {
    await enterRoom(dana, "presence-check", true);
    await waitForMembers(dana, ["dana"]);
    await enterRoom(eli, "presence-check");
    await waitForMembers(dana, ["dana", "eli"]);
    await waitForMembers(eli, ["dana", "eli"]);
    // The RoomActivity stream (server → client stream) reports the join.
    await dana.locator("#messages .message.system", { hasText: "eli joined" }).waitFor({ timeout: WAIT });

    await eli.click("#leave-room");
    await waitForMembers(dana, ["dana"]);
    await dana.locator("#messages .message.system", { hasText: "eli left" }).waitFor({ timeout: WAIT });
    assert.equal(await eli.locator("#rooms li.joined[data-room=presence-check]").count(), 0);
    assert.equal(await eli.locator("#rooms li.current[data-room=general]").count(), 1);

    // Closing the page is leaving too.
    await enterRoom(eli, "presence-check");
    await waitForMembers(dana, ["dana", "eli"]);
    await eli.close();
    await waitForMembers(dana, ["dana"]);
    await dana.locator("#messages .message.system", { hasText: "eli left (disconnected" }).waitFor({ timeout: WAIT });
  } finally {
    await dana.close();
    await eli.close();
  }
  assert.deepEqual(pageErrors, []);
});

test("a private message reaches only its user", async () => {
  const fay = await open("fay");
  const gus = await open("gus");
  const hal = await open("hal");
  try {
    await waitForMembers(fay, ["fay", "gus", "hal"]);
    await fay.click("#members li[data-nickname=gus]");
    await fay.locator("#pm-chip:not([hidden])", { hasText: "gus" }).waitFor({ timeout: WAIT });
    await say(fay, "psst, gus: this is just for you");
    await seen(gus, "psst, gus: this is just for you", "#messages .message.private");
    await seen(fay, "psst, gus: this is just for you", "#messages .message.private");
    assert.equal(await gus.textContent("#messages .message.private .from"), "fay → you");

    // Back to the room: hal gets this later message, and must not have had the private one.
    await fay.click("#pm-cancel");
    await say(fay, "and now for everyone");
    await seen(hal, "and now for everyone");
    await seen(gus, "and now for everyone");
    assert.equal(await hal.locator("#messages .message", { hasText: "just for you" }).count(), 0);
    assert.equal(await hal.locator("#messages .message.private").count(), 0);

    // The /msg command works too.
    await say(hal, "/msg fay got it?");
    await seen(fay, "got it?", "#messages .message.private");
    assert.equal(await gus.locator("#messages .message", { hasText: "got it?" }).count(), 0);
  } finally {
    await fay.close();
    await gus.close();
    await hal.close();
  }
  assert.deepEqual(pageErrors, []);
});

test("pages on long polling, Server-Sent Events and WebSockets chat together", async () => {
  const poller = await open("poller", "longPolling");
  const streamer = await open("streamer", "serverSentEvents");
  const socket = await open("socket", "webSockets");
  try {
    assert.equal(await poller.textContent("#transport"), "via LongPolling");
    assert.equal(await streamer.textContent("#transport"), "via ServerSentEvents");
    assert.equal(await socket.textContent("#transport"), "via WebSockets");
    for (const [page, name] of [[poller, "LongPolling"], [streamer, "ServerSentEvents"], [socket, "WebSockets"]]) {
      assert.equal(await page.getAttribute("#transport", "data-client-transport"), name);
    }
    for (const page of [poller, streamer, socket]) await enterRoom(page, "transports", page === poller);
    await waitForMembers(poller, ["poller", "socket", "streamer"]);
    await say(poller, "from long polling");
    await say(streamer, "from server-sent events");
    await say(socket, "from websockets");
    for (const page of [poller, streamer, socket]) {
      await seen(page, "from long polling");
      await seen(page, "from server-sent events");
      await seen(page, "from websockets");
    }
    await socket.fill("#message-input", "typing…");
    await poller.locator("#typing", { hasText: "socket is typing…" }).waitFor({ timeout: WAIT });
    await streamer.locator("#typing", { hasText: "socket is typing…" }).waitFor({ timeout: WAIT });
  } finally {
    await poller.close();
    await streamer.close();
    await socket.close();
  }
  assert.deepEqual(pageErrors, []);
});

test("the server's rejections show in the page; typed ones (ChatError) get their own messages", async () => {
  const ida = await open("ida");
  try {
    await say(ida, "   ");
    await ida.locator("#error-banner:not([hidden])").waitFor({ timeout: WAIT });
    assert.equal(await ida.textContent("#error-text"), "a message needs some text");

    await say(ida, "x".repeat(501));
    await ida.locator("#error-text", { hasText: "501" }).waitFor({ timeout: WAIT });
    assert.equal(await ida.textContent("#error-text"), "messages are at most 500 characters (this one has 501)");
    assert.equal(await ida.getAttribute("#counter", "class"), "over");
    assert.equal(await ida.inputValue("#message-input"), "x".repeat(501), "a rejected message stays in the box");

    await say(ida, "/msg nobody hello?");
    await ida.locator("#error-text", { hasText: "nobody called `nobody` is online" }).waitFor({ timeout: WAIT });

    // A good message clears the banner.
    await say(ida, "fine, a short one");
    await seen(ida, "fine, a short one");
    assert.equal(await ida.isHidden("#error-banner"), true);

    // Creating a room that exists: the typed refusal (ChatError's RoomExists) offers to join it,
    // in place of the banner.
    await ida.fill("#new-room-input", "random");
    await ida.click("#new-room-form button");
    await ida.locator("#room-exists:not([hidden])").waitFor({ timeout: WAIT });
    assert.equal(await ida.textContent("#room-exists-text"), "#random already exists.");
    assert.equal(await ida.textContent("#room-exists-join"), "Join #random");
    assert.equal(await ida.isHidden("#error-banner"), true);
    await ida.click("#room-exists-join");
    await ida.locator("#rooms li.current[data-room=random]").waitFor({ timeout: WAIT });
    assert.equal(await ida.isHidden("#room-exists"), true);
    assert.equal(await ida.inputValue("#new-room-input"), "");
    // One she is in: offered to show it.
    await ida.fill("#new-room-input", "#general");
    await ida.click("#new-room-form button");
    await ida.locator("#room-exists-text", { hasText: "#general already exists and you are in it." }).waitFor({ timeout: WAIT });
    await ida.click("#room-exists-join");
    await ida.locator("#rooms li.current[data-room=general]").waitFor({ timeout: WAIT });
    // An invalid name is not a typed refusal the page treats apart: the banner, as before.
    await ida.fill("#new-room-input", "Bad Name");
    await ida.click("#new-room-form button");
    await ida.locator("#error-text", { hasText: "room names may use lowercase letters, digits and `-` only" }).waitFor({ timeout: WAIT });
    assert.equal(await ida.isHidden("#room-exists"), true);

    // A taken nickname is refused in the dialog with ChatError's NicknameTaken: the page says so
    // and offers the free variant the server suggests, which fills the field; taking it joins.
    const other = await browser.newPage();
    try {
      other.on("pageerror", (error) => pageErrors.push(`the second ida: ${error.message}`));
      await other.goto(baseUrl);
      await connected(other, "the second ida");
      // An invalid nickname: the reason, next to the field, and no suggestion.
      await other.fill("#nickname-input", "ida!");
      await other.click("#nickname-submit");
      await other.locator("#nickname-error[data-kind=NicknameInvalid]").waitFor({ timeout: WAIT });
      assert.equal(await other.textContent("#nickname-error"), "nicknames may use letters, digits, `_`, `-` and `.` only");
      assert.equal(await other.getAttribute("#nickname-input", "aria-invalid"), "true");
      assert.equal(await other.isHidden("#nickname-suggestion"), true);

      await other.fill("#nickname-input", "IDA");
      await other.click("#nickname-submit");
      await other.locator("#nickname-error[data-kind=NicknameTaken]").waitFor({ timeout: WAIT });
      assert.equal(await other.textContent("#nickname-error"), "Someone is already called “IDA” (nicknames ignore case).");
      await other.locator("#nickname-suggestion:not([hidden])").waitFor({ timeout: WAIT });
      assert.equal(await other.textContent("#nickname-suggestion-text"), "“IDA2” is free:");
      assert.equal(await other.textContent("#nickname-suggestion-use"), "Use IDA2");
      await other.click("#nickname-suggestion-use");
      assert.equal(await other.inputValue("#nickname-input"), "IDA2");
      assert.equal(await other.evaluate(() => document.activeElement?.id), "nickname-input");
      assert.equal(await other.textContent("#nickname-error"), "");
      assert.equal(await other.isHidden("#nickname-suggestion"), true);
      await other.click("#nickname-submit");
      await other.locator("body[data-ready=true]").waitFor({ timeout: WAIT });
      assert.equal(await other.textContent("#me"), "IDA2");
      await other.locator("#rooms li.current[data-room=general]").waitFor({ timeout: WAIT });
      // (Not the exact list: the long-polling page of an earlier test may linger until its
      // server notices it stopped polling.)
      await ida.locator("#members li[data-nickname=IDA2]").waitFor({ timeout: WAIT });
      await say(other, "hello from the second ida");
      await seen(ida, "hello from the second ida");
    } finally {
      await other.close();
    }
  } finally {
    await ida.close();
  }
  assert.deepEqual(pageErrors, []);
});
