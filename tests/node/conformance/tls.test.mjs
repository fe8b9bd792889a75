// The conformance server serving https and wss itself (TLS_CERT/TLS_KEY: hub-server's `tls`
// feature), with a certificate for localhost signed by a CA made here with openssl. The official
// client, in a Node process that trusts that CA (NODE_EXTRA_CA_CERTS), connects over every
// transport × protocol and invokes; the same client trusting nothing extra cannot connect, so the
// certificate is really checked.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { startServer } from "./server.mjs";

const NODE_DIR = fileURLToPath(new URL("..", import.meta.url));

/** A CA and a certificate for localhost/127.0.0.1 it signed, in `dir`. */
function makeCertificates(dir) {
  const openssl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-days", "1", "-subj", "/CN=hub test CA", "-keyout", "ca-key.pem", "-out", "ca.pem");
  openssl("req", ...ec, "-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "server.csr");
  writeFileSync(join(dir, "server.ext"), "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "1", "-extfile", "server.ext", "-out", "cert.pem");
  return { ca: join(dir, "ca.pem"), cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
}

// What the client process runs: every transport × protocol (Server-Sent Events carry text only:
// JSON), one echo each; prints one JSON line.
const CLIENT = `
import { HubConnectionBuilder, HttpTransportType, LogLevel } from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
const url = process.argv[1];
const results = [];
for (const transport of ["WebSockets", "ServerSentEvents", "LongPolling"]) {
  for (const protocol of ["json", "messagepack"]) {
    if (transport === "ServerSentEvents" && protocol === "messagepack") continue; // text only
    let builder = new HubConnectionBuilder()
      .withUrl(url, { transport: HttpTransportType[transport] })
      .configureLogging(LogLevel.None);
    if (protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
    const connection = builder.build();
    try {
      await connection.start();
      const echoed = await connection.invoke("Echo", transport + "/" + protocol);
      results.push({ transport, protocol, echoed, used: connection.connection.transport?.constructor?.name ?? null });
      await connection.stop();
    } catch (error) {
      results.push({ transport, protocol, error: String(error?.message ?? error) });
    }
  }
}
console.log(JSON.stringify(results));
`;

/** Runs the client process against `url`, with `env`; its results. */
function runClient(url, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", CLIENT, url], {
      cwd: NODE_DIR,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => (out += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk) => (err += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split("\n").pop()));
      } catch {
        reject(new Error(`the client process exited (${code}) without results\nstdout: ${out}\nstderr: ${err}`));
      }
    });
  });
}

describe("TLS on the server's own listener, official client", { timeout: 120_000 }, () => {
  let dir;
  let files;
  let server;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "hub-tls-"));
    files = makeCertificates(dir);
    server = await startServer({ TLS_CERT: files.cert, TLS_KEY: files.key });
  });

  after(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("connects over https and wss on every transport and protocol when it trusts the CA", async () => {
    const results = await runClient(`https://localhost:${server.port}/hub`, { NODE_EXTRA_CA_CERTS: files.ca });
    assert.equal(results.length, 5);
    for (const result of results) {
      assert.equal(result.error, undefined, `${result.transport}/${result.protocol}: ${result.error}`);
      assert.equal(result.echoed, `${result.transport}/${result.protocol}`);
    }
  });

  it("refuses a server whose certificate it cannot verify", async () => {
    const results = await runClient(`https://localhost:${server.port}/hub`, { NODE_EXTRA_CA_CERTS: "" });
    assert.equal(results.length, 5);
    for (const result of results) {
      assert.ok(result.error, `${result.transport}/${result.protocol} connected without trusting the CA`);
    }
  });

  it("does not answer plain http on the TLS port", async () => {
    const results = await runClient(`http://localhost:${server.port}/hub`, { NODE_EXTRA_CA_CERTS: files.ca });
    for (const result of results) assert.ok(result.error, `${result.transport}/${result.protocol} connected over http`);
  });
});
