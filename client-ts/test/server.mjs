// Builds and starts the Rust conformance hub (examples/conformance/main.rs) for the tests.
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BINARY = `${resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target")}/debug/conformance`;
let built = false;
const running = new Set();
process.once("exit", () => running.forEach((child) => child.kill("SIGKILL")));

/** Starts a server on a free port; returns { url(path), stop() }. */
export async function startServer(env = {}) {
  if (!built && !process.env.CONFORMANCE_NO_BUILD) {
    const result = spawnSync("cargo", ["build", "-q", "-p", "hub-examples", "--bin", "conformance"], {
      cwd: ROOT,
      stdio: ["ignore", "inherit", "inherit"],
    });
    if (result.status !== 0) throw new Error(`cargo build failed (${result.status ?? result.error})`);
    built = true;
  }
  const child = spawn(BINARY, [], { cwd: ROOT, env: { ...process.env, PORT: "0", ...env }, stdio: ["ignore", "pipe", "inherit"] });
  running.add(child);
  const exited = once(child, "exit").then(() => running.delete(child));
  const port = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("server did not start")), 20_000);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      const match = /listening on (\d+)/.exec((out += chunk));
      if (match) clearTimeout(timer), resolve(Number(match[1]));
    });
    child.once("exit", (code) => reject(new Error(`server exited early (${code})`)));
  });
  return {
    url: (path = "/hub") => `http://127.0.0.1:${port}${path}`,
    async stop() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}
