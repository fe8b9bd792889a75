// The chat example (examples/chat) in headless Chromium: Debian's /usr/bin/chromium driven by
// playwright-core. Starts the chat binary on a free port and opens one page per person; every
// page talks to the server through the generated client (examples/chat/client) over the
// transport its `?transport=` asks for.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const ARTIFACTS = fileURLToPath(new URL("./artifacts/", import.meta.url));
const TARGET = resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const WAIT = 10_000;

let server;
let baseUrl;
let browser;
/** Every page's uncaught errors: a test fails if its pages threw. */
const pageErrors = [];

before(async () => {
  execFileSync("cargo", ["build", "-q", "-p", "hub-examples", "--bin", "chat"], { cwd: ROOT, stdio: "inherit" });
  server = spawn(`${TARGET}/debug/chat`, [], {
    cwd: ROOT,
    env: { ...process.env, PORT: "0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  baseUrl = await new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /chat: (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    server.on("exit", (code) => reject(new Error(`chat exited (${code}) before printing its URL: ${out}`)));
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  server?.kill();
});

/** Opens the chat as `nickname` (in its own browser context) and waits until it is in #general. */
async function open(nickname, transport) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(`${nickname}: ${error.message}`));
  await page.goto(transport ? `${baseUrl}?transport=${transport}` : baseUrl);
  await connected(page, nickname);
  await page.fill("#nickname-input", nickname);
  await page.click("#nickname-submit");
  await page.locator("body[data-ready=true]").waitFor({ timeout: WAIT });
  await page.locator("#rooms li.current[data-room=general]").waitFor({ timeout: WAIT });
  assert.equal(await page.textContent("#me"), nickname);
  page.close = async () => context.close();
  return page;
}

/** Waits until the page's connection is up, saying what the page shows if it never is. */
async function connected(page, who) {
  try {
    await page.locator("#status[data-state=connected]").waitFor({ timeout: WAIT });
  } catch (error) {
    const shown = await page.evaluate(() => `status "${document.querySelector("#status").textContent}", error "${document.querySelector("#error-text").textContent}"`);
    throw new Error(`${who}'s page did not connect (${shown})`, { cause: error });
  }
}

/** Posts `text` to the page's current room (or private recipient). */
async function say(page, text) {
  await page.fill("#message-input", text);
  await page.press("#message-input", "Enter");
}

/** Waits until the page shows a message with exactly this text. */
async function seen(page, text, selector = "#messages .message") {
  await page.locator(selector).filter({ has: page.locator(".text", { hasText: text }) }).first().waitFor({ timeout: WAIT });
}

/** The nicknames the page lists as present in its current room. */
async function members(page) {
  return page.$$eval("#members li", (items) => items.map((item) => item.dataset.nickname));
}

async function waitForMembers(page, expected) {
  await page.waitForFunction(
    (expected) => [...document.querySelectorAll("#members li")].map((li) => li.dataset.nickname).join(",") === expected,
    expected.join(","),
    { timeout: WAIT },
  );
}

/** Makes `page` create (if missing) and enter `room`. */
async function enterRoom(page, room, create = false) {
  if (create) {
    await page.fill("#new-room-input", room);
    await page.click("#new-room-form button");
  } else {
    await page.locator(`#rooms li[data-room=${room}]`).waitFor({ timeout: WAIT });
    await page.click(`#rooms li[data-room=${room}]`);
  }
  await page.locator(`#rooms li.current[data-room=${room}]`).waitFor({ timeout: WAIT });
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

test("the server's rejections show in the page", async () => {
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

    // A taken nickname is refused in the dialog.
    const other = await browser.newPage();
    try {
      await other.goto(baseUrl);
      await connected(other, "the second ida");
      await other.fill("#nickname-input", "IDA");
      await other.click("#nickname-submit");
      await other.locator("#nickname-error", { hasText: "the nickname `IDA` is taken; pick another" }).waitFor({ timeout: WAIT });
    } finally {
      await other.close();
    }
  } finally {
    await ida.close();
  }
  assert.deepEqual(pageErrors, []);
});
