// Shared helpers for the real-client conformance tests: build and start the conformance hub
// (examples/conformance/main.rs), connect official @microsoft/signalr clients to it, collect
// pushes, and speak raw HTTP/WebSocket where the official client can't reach.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { request as httpRequest } from "node:http";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  HttpTransportType,
  HubConnectionBuilder,
  JsonHubProtocol,
  LogLevel,
  MessageType,
  NullLogger,
} from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

export const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
export const BINARY = `${resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target")}/debug/conformance`;
export const PROTOCOLS = ["json", "messagepack"];

let built = false;

/**
 * Builds the conformance binary once per test process
 * (set CONFORMANCE_NO_BUILD=1 to use target/debug/conformance as it is).
 */
export function buildServer() {
  if (built || process.env.CONFORMANCE_NO_BUILD) return;
  const result = spawnSync("cargo", ["build", "-q", "-p", "hub-examples", "--bin", "conformance"], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`cargo build failed with status ${result.status}`);
  built = true;
}

// Never leave a server behind, even if the test process ends without running `after`
// (an uncaught error, the runner's timeout, Ctrl-C).
const running = new Set();
let guarded = false;
function guardExit() {
  if (guarded) return;
  guarded = true;
  const killAll = () => {
    for (const child of running) child.kill("SIGKILL");
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

/**
 * Starts a conformance server on a free port with extra environment variables.
 * Returns { port, url(path), stop() }; always stop it in `after`/`finally`.
 */
export async function startServer(env = {}) {
  buildServer();
  const child = spawn(BINARY, [], {
    cwd: ROOT,
    env: { ...process.env, PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  child.once("exit", () => running.delete(child));
  guardExit();
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = once(child, "exit");
  const port = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error("server did not report its port within 20 s")), 20_000);
    function fail(error) {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${error.message}\nstdout: ${out}\nstderr: ${stderr}`));
    }
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /listening on (\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once("exit", (code, signal) => fail(new Error(`server exited early (${code ?? signal})`)));
    child.once("error", fail);
  });
  let stopped = false;
  return {
    port,
    child,
    url: (path = "/hub") => `http://127.0.0.1:${port}${path}`,
    stderr: () => stderr,
    /** Resolves once the process has exited (whether by stop() or on its own). */
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null && !stopped) {
        stopped = true;
        child.kill("SIGKILL");
      }
      await exited;
    },
  };
}

/**
 * Builds a HubConnection with the official builder. Options:
 * protocol ("json" | "messagepack"), handlers ({ name: fn }, registered before start),
 * reconnect (array of delays / true), logLevel, start (default true),
 * serverTimeoutInMilliseconds, keepAliveIntervalInMilliseconds, record (an array that receives
 * every hub message the client parses from the server, pings included), and any
 * IHttpConnectionOptions (accessTokenFactory, headers, skipNegotiation, transport, httpClient…).
 */
export async function connect(url, options = {}) {
  const {
    protocol = "json",
    handlers = {},
    reconnect,
    logLevel = LogLevel.None,
    start = true,
    serverTimeoutInMilliseconds,
    keepAliveIntervalInMilliseconds,
    record,
    ...httpOptions
  } = options;
  const hubProtocol = protocol === "messagepack" ? new MessagePackHubProtocol() : new JsonHubProtocol();
  if (record) {
    const parse = hubProtocol.parseMessages.bind(hubProtocol);
    hubProtocol.parseMessages = (input, logger) => {
      const messages = parse(input, logger);
      record.push(...messages);
      return messages;
    };
  }
  let builder = new HubConnectionBuilder()
    .withUrl(url, { transport: HttpTransportType.WebSockets, ...httpOptions })
    .withHubProtocol(hubProtocol)
    .configureLogging(logLevel);
  if (reconnect === true) builder = builder.withAutomaticReconnect();
  else if (Array.isArray(reconnect)) builder = builder.withAutomaticReconnect(reconnect);
  const connection = builder.build();
  if (serverTimeoutInMilliseconds !== undefined) connection.serverTimeoutInMilliseconds = serverTimeoutInMilliseconds;
  if (keepAliveIntervalInMilliseconds !== undefined) {
    connection.keepAliveIntervalInMilliseconds = keepAliveIntervalInMilliseconds;
  }
  for (const [name, handler] of Object.entries(handlers)) connection.on(name, handler);
  if (start) await connection.start();
  return connection;
}

/** Stops every given connection, ignoring failures (for `finally`/`after`). */
export async function stopAll(...connections) {
  await Promise.all(connections.flat().filter(Boolean).map((c) => c.stop().catch(() => {})));
}

/** Resolves with the first event of a HubConnection callback (onclose/onreconnecting/…). */
export function nextEvent(connection, kind, timeoutMs = 5_000) {
  return withTimeout(
    new Promise((resolve) => connection[kind]((arg) => resolve({ arg }))),
    timeoutMs,
    `${kind} did not fire within ${timeoutMs} ms`,
  );
}

export function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` (sync or async) until it returns truthy or the timeout elapses. */
export async function waitUntil(check, timeoutMs = 3_000, message = "condition not met") {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${message} within ${timeoutMs} ms`);
    await delay(20);
  }
}

/**
 * Collects `receive(label, text)` pushes per named client. `inbox.handler(name)` gives the
 * handler to register (as lowercase `receive`, while the server calls `Receive`).
 *
 * `inbox.expect(caller, expected)` makes `caller` broadcast a barrier with `SendToAll`, waits
 * until every client saw it (a connection's pushes arrive in order, so everything sent before
 * has arrived too), then asserts that each client got exactly `expected[name]` (in any order;
 * a client left out must have got nothing) and clears the inbox.
 */
export class Inbox {
  constructor() {
    this.clients = new Map();
    this.barriers = 0;
  }

  handler(name) {
    const entry = { messages: [], barriers: new Set() };
    this.clients.set(name, entry);
    return (label, text) => {
      if (label === "all" && typeof text === "string" && text.startsWith("barrier:")) entry.barriers.add(text);
      else entry.messages.push([label, text]);
    };
  }

  /** Forget a client (e.g. after stopping it), so barriers no longer wait for it. */
  remove(name) {
    this.clients.delete(name);
  }

  messagesOf(name) {
    return this.clients.get(name).messages;
  }

  async settle(caller, timeoutMs = 3_000) {
    const token = `barrier:${++this.barriers}`;
    await caller.invoke("SendToAll", token);
    await waitUntil(
      () => [...this.clients.values()].every((entry) => entry.barriers.has(token)),
      timeoutMs,
      `barrier ${token} did not reach every client`,
    );
  }

  async expect(caller, expected) {
    for (const name of Object.keys(expected)) {
      if (!this.clients.has(name)) throw new Error(`unknown client ${name}`);
    }
    await this.settle(caller);
    const sort = (list) => [...list].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
    const got = {};
    const want = {};
    for (const [name, entry] of this.clients) {
      got[name] = sort(entry.messages);
      want[name] = sort(expected[name] ?? []);
      entry.messages.length = 0;
    }
    assert.deepEqual(got, want);
  }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP / WebSocket helpers (Node 20 has no global WebSocket; no extra dependency).

/**
 * Sends a WebSocket upgrade request by hand. Resolves with
 * { status, headers, body } if the server answered without upgrading, or
 * { status: 101, headers, socket, head } on upgrade.
 */
export function rawUpgrade(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
        ...headers,
      },
    });
    req.on("upgrade", (res, socket, head) => resolve({ status: res.statusCode, headers: res.headers, socket, head }));
    req.on("response", async (res) => {
      let body = "";
      res.setEncoding("utf8");
      for await (const chunk of res) body += chunk;
      resolve({ status: res.statusCode, headers: res.headers, body });
    });
    req.on("error", reject);
    req.end();
  });
}

/** Encodes one masked client WebSocket frame (FIN set). opcode 1 = text, 2 = binary, 8 = close. */
export function encodeFrame(payload, opcode = 1) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, "utf8");
  const mask = randomBytes(4);
  let header;
  if (data.length < 126) {
    header = Buffer.from([0x80 | opcode, 0x80 | data.length]);
  } else if (data.length < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(data.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(data.length), 2);
  }
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ mask[i % 4];
  return Buffer.concat([header, mask, masked]);
}

/** Reads unmasked server frames from an upgraded socket; `next()` resolves with { opcode, payload }. */
export class FrameReader {
  constructor(socket, head = Buffer.alloc(0)) {
    this.buffer = Buffer.from(head);
    this.frames = [];
    this.waiters = [];
    this.ended = false;
    socket.on("data", (chunk) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    socket.on("close", () => {
      this.ended = true;
      for (const waiter of this.waiters.splice(0)) waiter.reject(new Error("socket closed"));
    });
    this.parse();
  }

  parse() {
    for (;;) {
      const b = this.buffer;
      if (b.length < 2) return;
      let length = b[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      if (b[1] & 0x80) offset += 4; // servers don't mask, but be lenient
      if (b.length < offset + length) return;
      let frame = { opcode: b[0] & 0x0f, fin: Boolean(b[0] & 0x80), payload: b.subarray(offset, offset + length) };
      this.buffer = b.subarray(offset + length);
      // Reassemble fragmented data messages (control frames are never fragmented).
      if (frame.opcode === 0 && this.partial) {
        this.partial.payload = Buffer.concat([this.partial.payload, frame.payload]);
        if (!frame.fin) continue;
        frame = { ...this.partial, fin: true, fragmented: true };
        this.partial = undefined;
      } else if (!frame.fin && frame.opcode < 8) {
        this.partial = frame;
        continue;
      }
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(frame);
      else this.frames.push(frame);
    }
  }

  next(timeoutMs = 3_000) {
    if (this.frames.length) return Promise.resolve(this.frames.shift());
    if (this.ended) return Promise.reject(new Error("socket closed"));
    return withTimeout(
      new Promise((resolve, reject) => this.waiters.push({ resolve, reject })),
      timeoutMs,
      `no WebSocket frame within ${timeoutMs} ms`,
    );
  }
}

/**
 * A hub client over a hand-made WebSocket, for what the official client can't do (negotiate v0
 * ids, raw frame types). Opens `url` (http://…), sends the handshake for `protocol` as a text
 * frame and checks the `{}␞` reply. `send(message)` writes one hub message with the official
 * protocol class; `receive()` resolves with the next parsed hub message; `frames` records
 * { opcode, payload } of every data frame after the handshake.
 */
export async function rawHub(url, protocol = "json", headers = {}) {
  const upgrade = await rawUpgrade(url, headers);
  if (upgrade.status !== 101) {
    throw new Error(`upgrade failed: ${upgrade.status} ${upgrade.body ?? ""}`);
  }
  const { socket } = upgrade;
  const reader = new FrameReader(socket, upgrade.head);
  const hubProtocol = protocol === "messagepack" ? new MessagePackHubProtocol() : new JsonHubProtocol();
  socket.write(encodeFrame(`${JSON.stringify({ protocol, version: 1 })}\u001e`, 1));
  const handshake = await reader.next();
  const pending = [];
  const frames = [];
  // The handshake reply may share its frame with hub messages.
  const text = handshake.payload.toString("latin1");
  const end = text.indexOf("\u001e");
  const reply = text.slice(0, end + 1);
  const rest = handshake.payload.subarray(end + 1);
  const parse = (payload) =>
    hubProtocol.parseMessages(
      protocol === "messagepack" ? new Uint8Array(payload).buffer : payload.toString("utf8"),
      NullLogger.instance,
    );
  if (rest.length) pending.push(...parse(rest));
  return {
    socket,
    reader,
    handshake: { opcode: handshake.opcode, reply },
    frames,
    send(message) {
      const data = hubProtocol.writeMessage(message);
      socket.write(
        typeof data === "string" ? encodeFrame(data, 1) : encodeFrame(Buffer.from(data), 2),
      );
    },
    async receive(timeoutMs = 3_000) {
      while (!pending.length) {
        const frame = await reader.next(timeoutMs);
        if (frame.opcode === 8) throw new Error(`WebSocket closed (code ${frame.payload.readUInt16BE?.(0)})`);
        if (frame.opcode !== 1 && frame.opcode !== 2) continue;
        frames.push({ opcode: frame.opcode, payload: Buffer.from(frame.payload) });
        pending.push(...parse(frame.payload));
      }
      return pending.shift();
    },
    close() {
      socket.destroy();
    },
  };
}

/**
 * Opens a raw hub connection and reads every hub message (pings dropped) into `messages` in the
 * background. `waitFor(predicate)` resolves with the first matching message.
 */
export async function openRaw(url, protocol) {
  const raw = await rawHub(url, protocol);
  const messages = [];
  (async () => {
    for (;;) {
      let message;
      try {
        message = await raw.receive(60_000);
      } catch {
        return; // closed (or, in theory, a minute of silence)
      }
      if (message.type !== MessageType.Ping) messages.push(message);
    }
  })();
  return {
    raw,
    messages,
    send: (message) => raw.send({ headers: {}, ...message }),
    waitFor: (predicate, timeoutMs = 3_000, what = "message") =>
      waitUntil(() => messages.find(predicate), timeoutMs, `no ${what}`),
    close: () => raw.close(),
  };
}
