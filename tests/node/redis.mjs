// A throwaway Redis for the backplane tests: Debian's redis-server on a free loopback port, with
// its own config and data dir in a temp dir, no persistence. scripts/test-all installs the
// package when it is missing; nothing here uses a system Redis.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REDIS_SERVER = "/usr/bin/redis-server";

// Never leave a redis-server (or its temp dir) behind, even if the test process ends without
// running `after` (an uncaught error, the runner's timeout, Ctrl-C); as server.mjs does.
const running = new Set();
let guarded = false;
function guardExit() {
  if (guarded) return;
  guarded = true;
  const killAll = () => {
    for (const instance of running) {
      instance.child.kill("SIGKILL");
      rmSync(instance.dir, { recursive: true, force: true });
    }
  };
  process.once("exit", killAll);
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ]) {
    process.once(signal, () => {
      killAll();
      process.exit(code);
    });
  }
}

/** Whether something answers `PING` with `+PONG` on 127.0.0.1:port (raw RESP inline command). */
export function ping(port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    let reply = "";
    const timer = setTimeout(() => done(false), timeoutMs);
    function done(ok) {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    }
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk;
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.on("error", () => done(false));
    socket.on("close", () => done(false));
  });
}

function canListen(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * A free loopback port below the kernel's ephemeral range: while Redis is down for the outage
 * test, the nodes' reconnecting clients take ephemeral source ports, and one of them could
 * otherwise take (or self-connect to) the port Redis must come back on.
 */
async function freePort() {
  let low = 32768;
  try {
    low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: keep the usual bound
  }
  const from = Math.min(15_000, low - 1_000);
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = from + Math.floor(Math.random() * (low - from));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${from}..${low - 1}`);
}

/**
 * Starts redis-server on a free loopback port and waits until it answers PING.
 * Returns { port, url, stop(), start(), output() }: stop() kills it (SIGKILL, an abrupt outage)
 * and removes its temp dir; start() brings it back, empty, on the same port. Always stop it in
 * `after`/`finally`.
 */
export async function startRedis() {
  if (!existsSync(REDIS_SERVER)) {
    throw new Error(
      `${REDIS_SERVER} is missing: install Debian's redis-server (apt-get install -y redis-server); ` +
        "scripts/test-all does it",
    );
  }
  guardExit();
  const port = await freePort();
  let current; // the running instance: { child, dir, exited, output }
  let output = ""; // every instance's stdout/stderr, for error messages

  async function start() {
    if (current) throw new Error("redis-server is already running");
    const dir = mkdtempSync(join(tmpdir(), "hub-redis-"));
    const config = join(dir, "redis.conf");
    writeFileSync(
      config,
      [
        "bind 127.0.0.1",
        `port ${port}`,
        'save ""',
        "appendonly no",
        `dir ${dir}`,
        "daemonize no",
        'logfile ""',
        "loglevel warning",
        "",
      ].join("\n"),
    );
    const child = spawn(REDIS_SERVER, [config], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    // Resolves on exit, or on a failed spawn (which may emit no exit).
    const exited = new Promise((resolve) => {
      child.once("exit", resolve);
      child.once("error", (error) => {
        output += `spawn failed: ${error.message}\n`;
        resolve();
      });
    });
    const instance = { child, dir, exited };
    running.add(instance);
    current = instance;
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        if (output.length < 100_000) output += chunk;
      });
    }
    let gone = false;
    exited.then(() => {
      gone = true;
    });
    const deadline = Date.now() + 10_000;
    while (!(await ping(port))) {
      if (gone || Date.now() > deadline) {
        await stop();
        throw new Error(
          `redis-server did not answer PING on port ${port} ${gone ? "(it exited)" : "within 10 s"}\n${output}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async function stop() {
    const instance = current;
    if (!instance) return;
    current = undefined;
    const { child } = instance;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await instance.exited;
    running.delete(instance);
    rmSync(instance.dir, { recursive: true, force: true });
  }

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    stop,
    /** Whether redis-server is running (started and not stopped). */
    running: () => current !== undefined,
    output: () => output,
  };
}
