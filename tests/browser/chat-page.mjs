// What the chat's browser tests share: building and starting the chat binary, launching headless
// Chromium (Debian's /usr/bin/chromium, driven by playwright-core), and driving the chat page as a
// person would.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const ARTIFACTS = fileURLToPath(new URL("./artifacts/", import.meta.url));
const TARGET = resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const WAIT = 10_000;

/** Builds the chat binary (once per test file). */
export function buildChat() {
  execFileSync("cargo", ["build", "-q", "-p", "hub-examples", "--bin", "chat"], { cwd: ROOT, stdio: "inherit" });
}

/**
 * Starts a chat server on a free port with `env` added to this process's environment. Resolves
 * to `{ url, lines, stop }`: its base URL, what it printed to stdout before, and a function that
 * stops it (SIGTERM) and resolves when it has exited.
 */
export async function startChat(env = {}) {
  const server = spawn(`${TARGET}/debug/chat`, [], {
    cwd: ROOT,
    env: { ...process.env, PORT: "0", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => server.once("exit", resolve));
  const started = await new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /chat: (http:\/\/\S+)/.exec(out);
      if (match) resolve({ url: match[1], lines: out.split("\n").filter(Boolean) });
    });
    server.once("exit", (code) => reject(new Error(`chat exited (${code}) before printing its URL: ${out}`)));
  });
  return {
    ...started,
    stop: async () => {
      if (server.exitCode === null && server.signalCode === null) server.kill("SIGTERM");
      await exited;
    },
  };
}

/** Headless Chromium as the tests run it. */
export function launchChromium() {
  return chromium.launch({
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
}

/**
 * Opens the chat at `baseUrl` as `nickname` (in its own browser context) and waits until it is
 * in #general. The page's uncaught errors are pushed to `errors`.
 */
export async function openChat(browser, baseUrl, nickname, { transport, errors }) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => errors.push(`${nickname}: ${error.message}`));
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
export async function connected(page, who) {
  try {
    await page.locator("#status[data-state=connected]").waitFor({ timeout: WAIT });
  } catch (error) {
    const shown = await page.evaluate(() => `status "${document.querySelector("#status").textContent}", error "${document.querySelector("#error-text").textContent}"`);
    throw new Error(`${who}'s page did not connect (${shown})`, { cause: error });
  }
}

/** Posts `text` to the page's current room (or private recipient). */
export async function say(page, text) {
  await page.fill("#message-input", text);
  await page.press("#message-input", "Enter");
}

/** Waits until the page shows a message with exactly this text. */
export async function seen(page, text, selector = "#messages .message") {
  await page.locator(selector).filter({ has: page.locator(".text", { hasText: text }) }).first().waitFor({ timeout: WAIT });
}

/** Waits until the page lists exactly these nicknames as present in its current room. */
export async function waitForMembers(page, expected) {
  try {
    await page.waitForFunction(
      (expected) => [...document.querySelectorAll("#members li")].map((li) => li.dataset.nickname).join(",") === expected,
      expected.join(","),
      { timeout: WAIT },
    );
  } catch (error) {
    const shown = await page.$$eval("#members li", (items) => items.map((item) => item.dataset.nickname));
    throw new Error(`expected the members ${expected.join(", ")}; the page shows ${shown.join(", ")}`, { cause: error });
  }
}

/** Makes `page` create (if `create`) and enter `room`. */
export async function enterRoom(page, room, create = false) {
  if (create) {
    await page.fill("#new-room-input", room);
    await page.click("#new-room-form button");
  } else {
    await page.locator(`#rooms li[data-room=${room}]`).waitFor({ timeout: WAIT });
    await page.click(`#rooms li[data-room=${room}]`);
  }
  await page.locator(`#rooms li.current[data-room=${room}]`).waitFor({ timeout: WAIT });
}
