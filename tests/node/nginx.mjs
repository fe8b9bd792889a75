// A throwaway nginx for the no-sticky-sessions tests: Debian's nginx on a free loopback port, as a
// plain reverse proxy in front of several hub servers, with its config, logs, pid file and temp
// paths in a temp dir (no root, nothing under /var or /etc). Modelled on redis.mjs;
// scripts/test-all installs the package when it is missing; nothing here uses a system nginx.
//
// The upstream is round robin with no keepalive to the servers, so every request of one client
// (negotiate, each long-polling GET and POST, the SSE stream, the WebSocket) may go to another
// server; `affinity: true` uses `ip_hash` instead (every request of a loopback client on one
// server). The access log records `$upstream_addr`, so a test can check which servers answered.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const NGINX = "/usr/sbin/nginx";

// Never leave an nginx (or its temp dir) behind, even if the test process ends without running
// `after` (an uncaught error, the runner's timeout, Ctrl-C); as redis.mjs does.
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

/** Whether something accepts a TCP connection on 127.0.0.1:port. */
function accepts(port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    const timer = setTimeout(() => done(false), timeoutMs);
    function done(ok) {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    }
    socket.on("connect", () => done(true));
    socket.on("error", () => done(false));
  });
}

/** A free loopback port (the kernel picks it; nginx binds it right after). */
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

function config({ dir, port, upstreamPorts, affinity }) {
  return [
    "daemon off;",
    // One process, no privilege drop (a root master would hand the temp dir to `nobody`
    // workers): SIGKILL to the spawned pid stops all of it.
    "master_process off;",
    "worker_processes 1;",
    `pid ${join(dir, "nginx.pid")};`,
    `error_log ${join(dir, "error.log")} warn;`,
    "events {}",
    "http {",
    `  client_body_temp_path ${join(dir, "client_body")};`,
    `  proxy_temp_path ${join(dir, "proxy")};`,
    `  fastcgi_temp_path ${join(dir, "fastcgi")};`,
    `  uwsgi_temp_path ${join(dir, "uwsgi")};`,
    `  scgi_temp_path ${join(dir, "scgi")};`,
    // Tab-separated; $upstream_addr lists every server tried ("a, b" after a retry).
    "  log_format hubs '$msec\\t$status\\t$upstream_addr\\t$upstream_status\\t$request';",
    `  access_log ${join(dir, "access.log")} hubs;`,
    "  map $http_upgrade $connection_upgrade {",
    "    default upgrade;",
    "    '' close;",
    "  }",
    // No `keepalive` here: a fresh upstream connection per request, so round robin spreads
    // one client's requests over every server.
    "  upstream hubs {",
    ...(affinity ? ["    ip_hash;"] : []),
    ...upstreamPorts.map((p) => `    server 127.0.0.1:${p};`),
    "  }",
    "  server {",
    `    listen 127.0.0.1:${port};`,
    "    location / {",
    "      proxy_pass http://hubs;",
    "      proxy_http_version 1.1;",
    "      proxy_set_header Upgrade $http_upgrade;",
    "      proxy_set_header Connection $connection_upgrade;",
    // $http_host keeps the port: the servers' origin check compares a browser's Origin with it.
    "      proxy_set_header Host $http_host;",
    "      proxy_read_timeout 300s;",
    "      proxy_send_timeout 300s;",
    "      proxy_buffering off;",
    "      proxy_cache off;",
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");
}

/**
 * Starts nginx on a free loopback port, proxying to 127.0.0.1 on each of `upstreamPorts`
 * (round robin, or `ip_hash` with `affinity: true`), and waits until its port accepts TCP.
 * Returns { port, url, stop(), output(), requests(), upstreamsSeen() }: stop() kills it (SIGKILL)
 * and removes its temp dir; output() is its stdout/stderr and error log; requests() the access
 * log's entries so far ({ status, upstreams, upstreamStatus, request }, one per finished
 * request); upstreamsSeen() the set of "127.0.0.1:port" that answered at least one request.
 * Always stop it in `after`/`finally`.
 */
export async function startNginx(upstreamPorts, { affinity = false } = {}) {
  if (!existsSync(NGINX)) {
    throw new Error(
      `${NGINX} is missing: install Debian's nginx (apt-get install -y nginx); scripts/test-all does it`,
    );
  }
  if (!upstreamPorts?.length) throw new Error("startNginx needs at least one upstream port");
  guardExit();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "hub-nginx-"));
  const errorLog = join(dir, "error.log");
  const accessLog = join(dir, "access.log");
  const configFile = join(dir, "nginx.conf");
  writeFileSync(configFile, config({ dir, port, upstreamPorts, affinity }));
  let output = "";
  // -e: the error log before the config is read (the compiled-in default may be unwritable).
  const child = spawn(NGINX, ["-p", dir, "-c", configFile, "-e", errorLog], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
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
  let stopped = false;
  const read = (file) => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return "";
    }
  };
  const allOutput = () => {
    const log = read(errorLog);
    return `${output}${log ? `${output ? "\n" : ""}error.log:\n${log}` : ""}`;
  };

  async function stop() {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    running.delete(instance);
    rmSync(dir, { recursive: true, force: true });
  }

  function requests() {
    return read(accessLog)
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [msec, status, upstreams, upstreamStatus, request] = line.split("\t");
        return {
          at: Number(msec) * 1000,
          status: Number(status),
          // "127.0.0.1:1, 127.0.0.1:2" after a retry; "a : b" across internal redirects;
          // "-" when no upstream was tried.
          upstreams: upstreams.split(/\s*[,:]\s+/).filter((a) => a && a !== "-"),
          upstreamStatus,
          request,
        };
      });
  }

  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (gone || Date.now() > deadline) {
      const log = allOutput();
      await stop();
      throw new Error(
        `nginx did not accept connections on port ${port} ${gone ? "(it exited)" : "within 10 s"}\n${log}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    stop,
    /** Whether nginx is running (started, not stopped, not exited). */
    running: () => !stopped && !gone,
    output: allOutput,
    requests,
    upstreamsSeen: () => new Set(requests().flatMap(({ upstreams }) => upstreams)),
  };
}
