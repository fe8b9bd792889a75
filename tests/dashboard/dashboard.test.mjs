// The dashboard example (examples/dashboard) in headless Chromium: Debian's /usr/bin/chromium
// driven by playwright-core. Starts the dashboard binary on a free port (it serves the Vite build
// in examples/dashboard/web/dist: `tests/dashboard/run` builds it) and signs in alice (admin) and
// bob (user) in two pages. Every page talks to the server through the generated client
// (examples/dashboard/client) over the transport its `?transport=` asks for; an admin's page also
// reads the server's stats view (`GET /stats`) into its Server panel.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const ARTIFACTS = fileURLToPath(new URL("./artifacts/", import.meta.url));
const TARGET = resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target");
const BINARY = `${TARGET}/debug/dashboard`;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const WAIT = 10_000;

let server;
let baseUrl;
let browser;
/** Tokens are signed with this: a restart with the same secret keeps everyone signed in. */
let secret = randomUUID();
/** Every page's uncaught errors: a test fails if its pages threw. */
const pageErrors = [];

/** Starts the dashboard (on `port`, 0 = any) and resolves with its URL. */
async function startServer(port = 0) {
  server = spawn(BINARY, [], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), DASHBOARD_SECRET: secret },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const started = server;
  return new Promise((resolve, reject) => {
    let out = "";
    started.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /dashboard: (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    started.on("exit", (code) => reject(new Error(`dashboard exited (${code}) before printing its URL: ${out}`)));
  });
}

/** Stops the dashboard with SIGTERM and resolves with its exit code once it is gone. */
async function stopServer() {
  const stopping = server;
  const exited = new Promise((resolve) => stopping.once("exit", (code, signal) => resolve(code ?? signal)));
  stopping.kill("SIGTERM");
  return exited;
}

before(async () => {
  assert.ok(
    existsSync(resolve(ROOT, "examples/dashboard/web/dist/index.html")),
    "the page is not built: run tests/dashboard/run (or npm ci && npm run build in examples/dashboard/web)",
  );
  const cargo = ["build", "-q", "-p", "hub-examples", "--bin", "dashboard"];
  if (process.env.CARGO_LOCK) execFileSync("flock", [process.env.CARGO_LOCK, "cargo", ...cargo], { cwd: ROOT, stdio: "inherit" });
  else execFileSync("cargo", cargo, { cwd: ROOT, stdio: "inherit" });
  baseUrl = await startServer();
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

/** Opens the dashboard in its own browser context and signs in as `user` (password = user). */
async function open(user, transport) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(`${user}: ${error.message}`));
  await page.goto(transport ? `${baseUrl}?transport=${transport}` : baseUrl);
  await page.fill("#login-user", user);
  await page.fill("#login-password", user);
  await page.click("#login-submit");
  await connected(page, user);
  assert.equal(await page.textContent("#me"), user);
  page.close = async () => context.close();
  return page;
}

/** Waits until the page's connection is up, saying what the page shows if it never is. */
async function connected(page, who) {
  try {
    await page.locator("#status[data-state=connected]").waitFor({ timeout: WAIT });
    await page.locator("#transport[data-server-transport]:not([data-server-transport=''])").waitFor({ timeout: WAIT });
  } catch (error) {
    const shown = await page.evaluate(() => `status "${document.querySelector("#status")?.textContent}", error "${document.querySelector("#error-text")?.textContent}", login "${document.querySelector("#login-error")?.textContent ?? ""}"`);
    throw new Error(`${who}'s page did not connect (${shown})`, { cause: error });
  }
}

/** The number a page shows in `selector`. */
async function number(page, selector) {
  return Number(await page.textContent(selector));
}

/** Waits until the page has received more than `count` metrics samples. */
async function samplesBeyond(page, count) {
  await page.waitForFunction((count) => Number(document.querySelector("#metrics-count").textContent) > count, count, { timeout: WAIT });
}

/** Waits until the page's presence shows these users. */
async function presence(page, users) {
  await page.waitForFunction(
    (expected) => document.querySelector("#presence-count")?.textContent === String(expected.length)
      && document.querySelector("#presence-users")?.textContent === `: ${expected.join(", ")}`,
    users,
    { timeout: WAIT },
  );
}

/** Waits until the page's feed has an entry of `kind` with exactly `text`. */
async function inFeed(page, kind, text) {
  await page.locator(`#feed li[data-kind=${kind}]`).filter({ has: page.locator(".text", { hasText: text }) }).first().waitFor({ timeout: WAIT });
}

async function feedCount(page, kind, text) {
  return page.locator(`#feed li[data-kind=${kind}]`).filter({ has: page.locator(".text", { hasText: text }) }).count();
}

/** Subscribes (or unsubscribes) the page to a topic and waits for the server to agree. */
async function subscribe(page, topic, on = true) {
  const box = page.locator(`#topics input[data-topic=${topic}]`);
  await (on ? box.check() : box.uncheck());
  await page.waitForFunction(
    ([topic, on]) => document.querySelector(`#topics input[data-topic=${topic}]`).checked === on,
    [topic, on],
    { timeout: WAIT },
  );
}

/** Everything the dashboard does, between alice (admin) and bob (user), over one transport. */
async function exercise(alice, bob, tag) {
  // Presence: both are counted.
  await presence(alice, ["alice", "bob"]);
  await presence(bob, ["alice", "bob"]);

  // Metrics: the stream starts on sign-in; alice stops it (AbortSignal) and it stays stopped.
  await samplesBeyond(alice, 2);
  await samplesBeyond(bob, 2);
  assert.equal(await alice.getAttribute("#metrics", "data-state"), "running");
  await alice.click("#metrics-toggle");
  await alice.locator("#metrics[data-state=stopped]").waitFor({ timeout: WAIT });
  const stoppedAt = await number(alice, "#metrics-count");
  const bobBefore = await number(bob, "#metrics-count");
  await alice.waitForTimeout(1200); // more than two intervals of 500 ms
  assert.equal(await number(alice, "#metrics-count"), stoppedAt, "samples arrived after Stop");
  await samplesBeyond(bob, bobBefore); // bob's stream is his own and goes on
  await alice.click("#metrics-toggle");
  await alice.locator("#metrics[data-state=running]").waitFor({ timeout: WAIT });
  await samplesBeyond(alice, stoppedAt);

  // A topic: bob subscribes to incidents; alice (not subscribed) publishes; only bob gets it.
  await subscribe(bob, "incidents");
  await alice.selectOption("#publish-topic", "incidents");
  await alice.fill("#publish-text", `db latency is up (${tag})`);
  await alice.click("#publish-form button[type=submit]");
  await inFeed(bob, "topic", `db latency is up (${tag})`);
  await inFeed(alice, "sent", `db latency is up (${tag})`);
  assert.equal(await feedCount(alice, "topic", `db latency is up (${tag})`), 0);
  // Unsubscribed, bob no longer hears it (a later user notification proves the order).
  await subscribe(bob, "incidents", false);
  await alice.fill("#publish-text", `resolved (${tag})`);
  await alice.click("#publish-form button[type=submit]");
  await inFeed(alice, "sent", `resolved (${tag})`);

  // A user notification: to every connection of bob.
  await alice.selectOption("#notify-user", "bob");
  await alice.fill("#notify-text", `your deploy finished (${tag})`);
  await alice.click("#notify-form button[type=submit]");
  await inFeed(bob, "user", `your deploy finished (${tag})`);
  await alice.locator("#notify-result", { hasText: "delivered to 1 connection of bob" }).waitFor({ timeout: WAIT });
  assert.equal(await feedCount(alice, "user", `your deploy finished (${tag})`), 0);
  assert.equal(await feedCount(bob, "topic", `resolved (${tag})`), 0, "bob unsubscribed but heard the topic");

  // The admin broadcast: bob is refused, in the page; alice's reaches both.
  await bob.fill("#broadcast-text", `bob tries (${tag})`);
  await bob.click("#broadcast-form button[type=submit]");
  await bob.locator("#broadcast-error", { hasText: "Failed to invoke 'Broadcast' because user is unauthorized" }).waitFor({ timeout: WAIT });
  await alice.fill("#broadcast-text", `maintenance at noon (${tag})`);
  await alice.click("#broadcast-form button[type=submit]");
  for (const page of [alice, bob]) {
    await page.locator("#announcement .text", { hasText: `maintenance at noon (${tag})` }).waitFor({ timeout: WAIT });
    await inFeed(page, "announcement", `maintenance at noon (${tag})`);
  }
  assert.equal(await feedCount(alice, "announcement", `bob tries (${tag})`), 0);
}

/** What the admin's Server panel shows (from the stats view it read last). */
async function serverPanel(page) {
  return page.evaluate(() => {
    const panel = document.querySelector("#server");
    if (!panel) return null;
    const counts = (selector, key) => Object.fromEntries(
      [...panel.querySelectorAll(`${selector} li`)].map((li) => [li.dataset[key], Number(li.dataset.count)]),
    );
    const rate = (selector) => {
      const element = panel.querySelector(selector);
      return { rate: Number(element.dataset.rate), total: Number(element.dataset.total), text: element.textContent };
    };
    return {
      state: panel.dataset.state,
      reads: Number(panel.dataset.reads),
      connections: Number(panel.querySelector("#server-connections").textContent),
      users: Number(panel.querySelector("#server-users").textContent),
      transports: counts("#server-transports", "transport"),
      protocols: counts("#server-protocols", "protocol"),
      groups: [...panel.querySelectorAll("#server-groups li")].map((li) => [li.dataset.group, Number(li.dataset.members), li.textContent.trim()]),
      invocations: rate("#server-invocations"),
      messagesIn: rate("#server-messages-in"),
      messagesOut: rate("#server-messages-out"),
    };
  });
}

/** Waits until the Server panel shows what `check` wants; fails with what it showed last. */
async function panelShows(page, what, check, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  let shown;
  for (;;) {
    shown = await serverPanel(page);
    if (shown && shown.state === "live" && check(shown)) return shown;
    if (Date.now() > deadline) throw new Error(`the Server panel never showed ${what}: ${JSON.stringify(shown)}`);
    await page.waitForTimeout(100);
  }
}

/** `GET /stats` from the page, with `token` as the bearer token when there is one: the status. */
async function statsStatus(page, token) {
  return page.evaluate(async (token) => {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    return (await fetch("/stats", { headers, cache: "no-store" })).status;
  }, token);
}

/** The page's bearer token (kept in sessionStorage by the page). */
async function tokenOf(page) {
  return page.evaluate(() => JSON.parse(sessionStorage.getItem("dashboard.signIn")).token);
}

test("sign-in: wrong passwords and requests without a token are refused", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(baseUrl);
    await page.fill("#login-user", "alice");
    await page.fill("#login-password", "bob");
    await page.click("#login-submit");
    await page.locator("#login-error", { hasText: "wrong user name or password" }).waitFor({ timeout: WAIT });
    const status = await page.evaluate(async () => (await fetch("/dashboard/negotiate?negotiateVersion=1", { method: "POST" })).status);
    assert.equal(status, 401);
  } finally {
    await context.close();
  }
});

test("over WebSockets (the default): metrics, topics, user notifications, broadcast, presence", async () => {
  const alice = await open("alice");
  const bob = await open("bob");
  try {
    // No transport asked for: the first one, WebSockets, must work (no silent fallback); the
    // client and the server agree on it.
    for (const page of [alice, bob]) {
      assert.equal(await page.textContent("#transport"), "WebSockets");
      assert.equal(await page.getAttribute("#transport", "data-server-transport"), "WebSockets");
    }
    await exercise(alice, bob, "ws");
    mkdirSync(ARTIFACTS, { recursive: true });
    await alice.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });

    // bob's second tab is another connection of the same user: presence counts it, and a user
    // notification reaches both.
    const bobAgain = await open("bob");
    try {
      await alice.locator("#presence-count[data-connections='3']").waitFor({ timeout: WAIT });
      await alice.fill("#notify-text", "to both of bob's tabs");
      await alice.click("#notify-form button[type=submit]");
      await alice.locator("#notify-result", { hasText: "delivered to 2 connections of bob" }).waitFor({ timeout: WAIT });
      await inFeed(bob, "user", "to both of bob's tabs");
      await inFeed(bobAgain, "user", "to both of bob's tabs");
    } finally {
      await bobAgain.close();
    }
    await alice.locator("#presence-count[data-connections='2']").waitFor({ timeout: WAIT });
    // bob leaves: alice sees the count drop.
    await bob.close();
    await presence(alice, ["alice"]);
  } finally {
    await alice.close();
    await bob.close();
  }
  assert.deepEqual(pageErrors, []);
});

for (const [transport, name] of [["serverSentEvents", "ServerSentEvents"], ["longPolling", "LongPolling"]]) {
  test(`over ${name} (forced): metrics, topics, user notifications, broadcast, presence`, async () => {
    const alice = await open("alice", transport);
    const bob = await open("bob", transport);
    try {
      for (const page of [alice, bob]) {
        assert.equal(await page.textContent("#transport"), name);
        assert.equal(await page.getAttribute("#transport", "data-server-transport"), name);
      }
      await exercise(alice, bob, transport);
      // bob signs out: the page stops its connection, and alice sees the count drop at once. (A
      // long-polling page that just vanishes counts until the server's disconnect timeout.)
      await bob.click("#sign-out");
      await bob.locator("#login-form").waitFor({ timeout: WAIT });
      await presence(alice, ["alice"]);
    } finally {
      await alice.close();
      await bob.close();
    }
    assert.deepEqual(pageErrors, []);
  });
}

test("after the server restarts, the pages reconnect by themselves: topics and metrics resume", async () => {
  const alice = await open("alice");
  const bob = await open("bob", "longPolling");
  try {
    await presence(alice, ["alice", "bob"]);
    await subscribe(bob, "deploys");
    await samplesBeyond(alice, 1);
    await samplesBeyond(bob, 1);

    const port = new URL(baseUrl).port;
    assert.equal(await stopServer(), 0, "SIGTERM stops the dashboard cleanly");
    for (const page of [alice, bob]) {
      await page.locator("#status[data-state=reconnecting]").waitFor({ timeout: WAIT });
    }
    const aliceSamples = await number(alice, "#metrics-count");
    const bobSamples = await number(bob, "#metrics-count");

    // Same port, same secret: the tokens the pages hold are still good.
    baseUrl = await startServer(port);
    for (const [page, who] of [[alice, "alice"], [bob, "bob"]]) await connected(page, who);
    assert.equal(await alice.textContent("#transport"), "WebSockets");
    assert.equal(await bob.textContent("#transport"), "LongPolling");
    // The metrics stream restarted; presence is counted anew.
    await samplesBeyond(alice, aliceSamples);
    await samplesBeyond(bob, bobSamples);
    await presence(alice, ["alice", "bob"]);
    await presence(bob, ["alice", "bob"]);
    assert.equal(await bob.getAttribute("#metrics", "data-state"), "running");
    // bob's topic was subscribed again on the new connection.
    assert.equal(await bob.locator("#topics input[data-topic=deploys]").isChecked(), true);
    await alice.selectOption("#publish-topic", "deploys");
    await alice.fill("#publish-text", "deployed after the restart");
    await alice.click("#publish-form button[type=submit]");
    await inFeed(bob, "topic", "deployed after the restart");
    await alice.selectOption("#notify-user", "bob");
    await alice.fill("#notify-text", "still there, bob?");
    await alice.click("#notify-form button[type=submit]");
    await inFeed(bob, "user", "still there, bob?");

    // A restart with another secret invalidates the tokens: the pages ask to sign in again.
    assert.equal(await stopServer(), 0);
    secret = randomUUID();
    baseUrl = await startServer(port);
    for (const page of [alice, bob]) {
      await page.locator("#login-notice", { hasText: "sign in again" }).waitFor({ timeout: WAIT });
    }
    await alice.fill("#login-user", "alice");
    await alice.fill("#login-password", "alice");
    await alice.click("#login-submit");
    await connected(alice, "alice");
  } finally {
    await alice.close();
    await bob.close();
  }
  assert.deepEqual(pageErrors, []);
});

test("the admin's Server panel shows the stats view; a user gets no panel, /stats answers 403 (401 without a token)", async () => {
  const alice = await open("alice");
  const stats = [];
  alice.on("request", (request) => {
    if (new URL(request.url()).pathname === "/stats") stats.push(Date.now());
  });
  let bob;
  try {
    // Alone over WebSockets (a long-polling page of an earlier test may linger up to the server's
    // 15 s disconnect timeout).
    await panelShows(alice, "alice alone over WebSockets", (shown) =>
      shown.connections === 1 && shown.users === 1 && shown.transports.webSockets === 1
        && shown.transports.longPolling === 0 && shown.transports.serverSentEvents === 0
        && shown.protocols.json === 1 && shown.protocols.messagepack === 0 && shown.groups.length === 0, 20_000);

    // bob connects over long polling (forced): two connections, one per transport, two users.
    bob = await open("bob", "longPolling");
    assert.equal(await bob.textContent("#transport"), "LongPolling");
    await panelShows(alice, "bob's long-polling connection", (shown) =>
      shown.connections === 2 && shown.users === 2 && shown.transports.webSockets === 1
        && shown.transports.longPolling === 1 && shown.transports.serverSentEvents === 0 && shown.protocols.json === 2);

    // bob is no admin: no panel, his page never asked for the view, and the server refuses him.
    assert.equal(await bob.locator("#server").count(), 0);
    assert.equal(await bob.evaluate(() => performance.getEntriesByType("resource").filter((entry) => new URL(entry.name).pathname === "/stats").length), 0);
    assert.equal(await statsStatus(bob, await tokenOf(bob)), 403);
    assert.equal(await statsStatus(bob, null), 401);
    assert.equal(await statsStatus(bob, "v1.alice.99999999999.forged"), 401);
    assert.equal(await statsStatus(alice, await tokenOf(alice)), 200);

    // Topics are the hub's groups: a subscription appears with its members, largest first.
    await subscribe(bob, "deploys");
    await panelShows(alice, "#deploys with bob", (shown) => JSON.stringify(shown.groups.map(([name, members]) => [name, members])) === '[["deploys",1]]');
    await subscribe(alice, "deploys");
    await subscribe(bob, "incidents");
    const grouped = await panelShows(alice, "#deploys with two members, #incidents with one", (shown) =>
      JSON.stringify(shown.groups.map(([name, members]) => [name, members])) === '[["deploys",2],["incidents",1]]');
    assert.match(grouped.groups[0][2], /^#deploys\s*2$/);

    // Invocations: four more, and the rate moves; then, with nothing invoked, it falls back to 0.
    const invocationsBefore = grouped.invocations.total;
    for (const text of ["first", "second", "third"]) {
      await bob.selectOption("#publish-topic", "deploys");
      await bob.fill("#publish-text", `stats ${text}`);
      await bob.click("#publish-form button[type=submit]");
      await inFeed(bob, "sent", `stats ${text}`);
    }
    await alice.selectOption("#notify-user", "bob");
    await alice.fill("#notify-text", "stats: are you there?");
    await alice.click("#notify-form button[type=submit]");
    await inFeed(bob, "user", "stats: are you there?");
    const busy = await panelShows(alice, "invocations moving", (shown) =>
      shown.invocations.total >= invocationsBefore + 4 && shown.invocations.rate > 0 && shown.messagesIn.rate > 0 && shown.messagesOut.rate > 0);
    assert.match(busy.invocations.text, /^\d+\.\d\/s$/);
    assert.ok(busy.messagesIn.total > 0 && busy.messagesOut.total > 0);
    const idle = await panelShows(alice, "no invocations for a while", (shown) => shown.invocations.rate === 0);
    assert.ok(idle.invocations.total >= invocationsBefore + 4);
    assert.equal(idle.invocations.text, "0.0/s");

    // Read every 2 s.
    const from = stats.length;
    await alice.waitForTimeout(4500);
    const during = stats.length - from;
    assert.ok(during >= 2 && during <= 3, `${during} reads of /stats in 4.5 s`);
    mkdirSync(ARTIFACTS, { recursive: true });
    await alice.screenshot({ path: `${ARTIFACTS}dashboard-server.png`, fullPage: true });

    // bob signs out: his connection and his groups go.
    await bob.click("#sign-out");
    await bob.locator("#login-form").waitFor({ timeout: WAIT });
    await panelShows(alice, "alice alone again", (shown) =>
      shown.connections === 1 && shown.users === 1 && shown.transports.longPolling === 0
        && JSON.stringify(shown.groups.map(([name, members]) => [name, members])) === '[["deploys",1]]');

    // alice signs out: the panel goes and stops reading the view.
    await alice.click("#sign-out");
    await alice.locator("#login-form").waitFor({ timeout: WAIT });
    assert.equal(await alice.locator("#server").count(), 0);
    const readsAtSignOut = stats.length;
    await alice.waitForTimeout(2500);
    assert.equal(stats.length, readsAtSignOut, "the panel read /stats after signing out");
  } finally {
    await alice.close();
    await bob?.close();
  }
  assert.deepEqual(pageErrors, []);
});
