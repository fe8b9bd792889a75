// The README's "Use it in your own project", end to end, from a scratch directory outside this
// repository: the project in examples/quickstart (an axum app with a hub) is copied there with its
// hub-server dependency pointing at this checkout and built; its binary writes the generated
// TypeScript package there; a fresh Vite + TypeScript app (`npm create vite`) gets the page of
// examples/quickstart/web/src/main.ts, installs the package with `npm install ../greeter-client`
// (then again from an `npm pack` tarball), type-checks with skipLibCheck on and off, builds, and
// headless Chromium drives it over WebSockets against the axum app serving the build.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TARGET = resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
/** The create-vite release the scratch app starts from. */
const CREATE_VITE = "vite@9.3.0"; // npm create vite@X runs create-vite@X
const WAIT = 10_000;
const NPM = ["--no-audit", "--no-fund", "--loglevel=error"];

const scratch = mkdtempSync(join(tmpdir(), "hubs-quickstart-"));
const web = join(scratch, "web");
let browser;
const servers = new Set();

function run(command, args, cwd, env = {}) {
  execFileSync(command, args, { cwd, stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, ...env } });
}

/** Starts the greeter serving `dist`; resolves to its base URL. */
async function startServer() {
  const server = spawn(join(TARGET, "debug/greeter"), [], {
    cwd: join(scratch, "server"),
    env: { ...process.env, PORT: "0", WEB_DIST: join(web, "dist") },
    stdio: ["ignore", "pipe", "inherit"],
  });
  servers.add(server);
  const url = await new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    server.on("exit", (code) => reject(new Error(`greeter exited (${code}): ${out}`)));
  });
  return { url, stop: () => (server.kill(), servers.delete(server)) };
}

before(async () => {
  // The server project, as a user has it: its own directory and lockfile, hub-server from a checkout.
  const server = join(scratch, "server");
  cpSync(join(ROOT, "examples/quickstart"), server, {
    recursive: true,
    filter: (path) => !path.includes(`${join("quickstart", "web")}`) && !path.endsWith("target"),
  });
  const manifest = join(server, "Cargo.toml");
  writeFileSync(
    manifest,
    readFileSync(manifest, "utf8").replace('path = "../../hub-server"', `path = ${JSON.stringify(join(ROOT, "hub-server"))}`),
  );
  // The same target directory as the repository's build: the shared crates are not rebuilt.
  run("cargo", ["build", "-q", "--locked"], server, { CARGO_TARGET_DIR: TARGET });
  // The generator is the server binary.
  run(join(TARGET, "debug/greeter"), ["--emit-ts", join(scratch, "greeter-client")], server);

  // A fresh Vite + TypeScript app, its main.ts replaced by the README's.
  run("npm", ["create", "-y", CREATE_VITE, "web", "--", "--template", "vanilla-ts", "--no-interactive"], scratch);
  cpSync(join(ROOT, "examples/quickstart/web/src/main.ts"), join(web, "src/main.ts"));
  for (const unused of ["counter.ts", "typescript.svg"]) rmSync(join(web, "src", unused), { force: true });
  run("npm", ["install", ...NPM], web);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close();
  for (const server of servers) server.kill();
  rmSync(scratch, { recursive: true, force: true });
});

/** Type-checks the app with the template's skipLibCheck (true) and with false, then builds it. */
function checkAndBuild(t) {
  run("npx", ["tsc", "--noEmit", "-p", "."], web);
  run("npx", ["tsc", "--noEmit", "-p", ".", "--skipLibCheck", "false"], web);
  run("npx", ["vite", "build", "--logLevel", "warn"], web);
  const assets = join(web, "dist/assets");
  const js = readdirSync(assets).filter((name) => name.endsWith(".js"));
  const bytes = js.map((name) => readFileSync(join(assets, name)));
  const raw = bytes.reduce((sum, b) => sum + b.length, 0);
  const gzipped = bytes.reduce((sum, b) => sum + gzipSync(b, { level: 9 }).length, 0);
  t.diagnostic(`app bundle (page + generated client + runtime): ${raw} B minified, ${gzipped} B gzipped`);
}

/** Opens the app as the user of `token`; waits until it says it is connected. */
async function open(baseUrl, token) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error));
  await page.goto(`${baseUrl}/?token=${token}`);
  await page.waitForSelector("#status[data-transport]", { timeout: WAIT });
  return { page, errors, close: () => context.close() };
}

/** Two users greet each other through the hub; the page says which transport it uses. */
async function greetEachOther(baseUrl) {
  const alice = await open(baseUrl, "alice-token");
  const bob = await open(baseUrl, "bob-token");
  try {
    for (const { page } of [alice, bob]) {
      assert.equal(await page.getAttribute("#status", "data-transport"), "WebSockets");
    }
    await alice.page.fill("#text", "hello from alice");
    await alice.page.click("button");
    await bob.page.waitForSelector("#log li:has-text('alice: hello from alice')", { timeout: WAIT });
    await alice.page.waitForSelector("#log li:has-text('alice: hello from alice')", { timeout: WAIT });
    // The hub's error reaches the page as a HubError.
    await bob.page.click("button");
    await bob.page.waitForSelector("#error:has-text('say something')", { timeout: WAIT });
    // The app's own route pushes through the hub's context.
    const response = await fetch(`${baseUrl}/api/announce`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify("maintenance at noon"),
    });
    assert.equal(response.status, 200);
    await alice.page.waitForSelector("#log li:has-text('server: maintenance at noon')", { timeout: WAIT });
    assert.deepEqual([...alice.errors, ...bob.errors], []);
  } finally {
    await alice.close();
    await bob.close();
  }
}

test("installed from the generated directory: type-checks, builds, and runs over WebSockets", async (t) => {
  run("npm", ["install", ...NPM, "../greeter-client"], web);
  const installed = JSON.parse(readFileSync(join(web, "package.json"), "utf8"));
  assert.equal(installed.dependencies["greeter-client"], "file:../greeter-client");
  checkAndBuild(t);
  const server = await startServer();
  try {
    await greetEachOther(server.url);
    // A wrong token: negotiate answers 401 and the page says it cannot connect.
    const stranger = await browser.newPage();
    await stranger.goto(`${server.url}/?token=nope`);
    await stranger.waitForSelector("#status:has-text('cannot connect')", { timeout: WAIT });
    await stranger.close();
  } finally {
    server.stop();
  }
});

test("installed from an npm pack tarball: type-checks, builds, and runs over WebSockets", async (t) => {
  run("npm", ["pack", "--silent", "--pack-destination", scratch], join(scratch, "greeter-client"));
  const tarball = readdirSync(scratch).find((name) => name.endsWith(".tgz"));
  assert.ok(tarball, "npm pack wrote no tarball");
  run("npm", ["uninstall", ...NPM, "greeter-client"], web);
  run("npm", ["install", ...NPM, join("..", tarball)], web);
  // A copy, not a link: the package works without the directory it was generated in.
  rmSync(join(scratch, "greeter-client"), { recursive: true, force: true });
  checkAndBuild(t);
  const server = await startServer();
  try {
    await greetEachOther(server.url);
  } finally {
    server.stop();
  }
});
