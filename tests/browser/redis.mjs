// A throwaway Redis for the two-server chat test: Debian's /usr/bin/redis-server on a free loopback
// port, with a generated configuration (no persistence) and its data dir in a temp dir. `run`
// installs the package when it is missing; nothing here uses a system Redis.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const REDIS_SERVER = process.env.REDIS_SERVER ?? "/usr/bin/redis-server";

/** A port nothing listens on now (the kernel's pick). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Whether Redis answers `PING` on 127.0.0.1:port. */
function ping(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk;
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.on("error", () => done(false));
  });
}

/**
 * Starts a Redis; resolves to `{ url, stop }` once it answers PING. `stop` kills it by its pid
 * and removes its directory; it also happens if this process exits first.
 */
export async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), "chat-redis-"));
  const port = await freePort();
  const config = join(dir, "redis.conf");
  writeFileSync(config, `bind 127.0.0.1\nport ${port}\nsave ""\nappendonly no\ndir ${dir}\n`);
  const child = spawn(REDIS_SERVER, [config], { stdio: ["ignore", "ignore", "inherit"] });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  let failed;
  child.once("error", (error) => (failed = error));
  const cleanUp = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", cleanUp);
  const stop = async () => {
    process.removeListener("exit", cleanUp);
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid, "SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (failed || child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(
        `redis-server did not start on port ${port}${failed ? ` (${failed.message}; install it with apt-get install redis-server)` : ""}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { url: `redis://127.0.0.1:${port}`, stop };
}
