// The chat example on three servers behind nginx round robin, no affinity (examples/chat with
// REDIS_URL and one CHAT_TOKEN_KEY): negotiate, the transport and every later request of a page's
// connection land on whichever server nginx picks, and the chat works on each transport — people
// on one transport talk to people on another, and the page really uses the transport it asked
// for.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { WAIT, buildChat, enterRoom, launchChromium, openChat, say, seen, startChat, waitForMembers } from "./chat-page.mjs";
import { startRedis } from "./redis.mjs";
import { startNginx } from "../node/nginx.mjs";

let redis;
let nginx;
const servers = [];
let browser;
const pageErrors = [];

before(async () => {
  buildChat();
  redis = await startRedis();
  const key = randomBytes(32).toString("hex");
  for (let i = 0; i < 3; i++) {
    servers.push(await startChat({ REDIS_URL: redis.url, CHAT_TOKEN_KEY: key }));
  }
  nginx = await startNginx(servers.map((server) => Number(new URL(server.url).port)));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await nginx?.stop();
  await Promise.all(servers.map((server) => server.stop()));
  await redis?.stop();
});

test("through nginx round robin, people on every transport talk to each other", async () => {
  const people = {};
  try {
    for (const [nickname, transport, shown] of [
      ["socket", "webSockets", "WebSockets"],
      ["streamer", "serverSentEvents", "ServerSentEvents"],
      ["poller", "longPolling", "LongPolling"],
    ]) {
      people[nickname] = await openChat(browser, `${nginx.url}/`, nickname, { transport, errors: pageErrors });
      assert.equal(await people[nickname].textContent("#transport"), `via ${shown}`);
      assert.equal(await people[nickname].getAttribute("#transport", "data-client-transport"), shown);
    }
    const { socket, streamer, poller } = people;
    await enterRoom(poller, "balanced", true);
    await enterRoom(streamer, "balanced");
    await enterRoom(socket, "balanced");
    for (const page of [socket, streamer, poller]) {
      await waitForMembers(page, ["poller", "socket", "streamer"]);
    }
    // Several messages each: most of the long-polling and SSE page's sends and polls reach a
    // server that does not hold its connection.
    for (let round = 0; round < 4; round++) {
      for (const [name, page] of Object.entries(people)) {
        await say(page, `${name} says ${round}`);
      }
    }
    for (const page of Object.values(people)) {
      for (const name of Object.keys(people)) {
        await seen(page, `${name} says 3`);
      }
    }
    const texts = await poller.$$eval("#messages .message:not(.system) .text", (items) => items.map((item) => item.textContent));
    assert.equal(texts.length, 12, texts.join(" | "));
    // Every server served some of it.
    assert.equal(nginx.upstreamsSeen().size, 3, `upstreams used: ${[...nginx.upstreamsSeen()].join(", ")}`);
    await poller.locator("#status[data-state=connected]").waitFor({ timeout: WAIT });
  } finally {
    await Promise.all(Object.values(people).map((page) => page.close()));
  }
  assert.deepEqual(pageErrors, []);
});
