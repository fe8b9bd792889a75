// Observability with the official client: the conformance server with PROMETHEUS=1 serves
// /metrics (Prometheus text, checked with Debian's `promtool check metrics`) and /stats (admins
// only); the values follow real traffic on every transport — connections by transport, their
// durations by closing status, invocations by method and outcome.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, test } from "node:test";
import { HttpTransportType } from "@microsoft/signalr";
import { connect, startServer, stopAll, waitUntil } from "./server.mjs";

let server;
before(async () => (server = await startServer({ PROMETHEUS: "1" })));
after(() => server?.stop());

/** The samples of a Prometheus text exposition: [{ name, labels, value }]. */
function parse(text) {
  return text
    .split("\n")
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      assert.ok(match, `a sample line: ${line}`);
      const labels = Object.fromEntries([...(match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
      return { name: match[1], labels, value: Number(match[3]) };
    });
}

async function scrape() {
  const response = await fetch(server.url("/metrics"));
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  return response.text();
}

function value(text, name, labels) {
  return parse(text)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

const TRANSPORTS = [
  ["web_sockets", HttpTransportType.WebSockets, "json"],
  ["server_sent_events", HttpTransportType.ServerSentEvents, "json"],
  ["long_polling", HttpTransportType.LongPolling, "messagepack"],
];

test("metrics and the stats view follow the official client's traffic", async () => {
  const clients = [];
  try {
    for (const [, transport, protocol] of TRANSPORTS) {
      const client = await connect(server.url("/hub"), { transport, protocol, accessTokenFactory: () => "alice" });
      clients.push(client);
      assert.equal(await client.invoke("Echo", "a"), "a");
      assert.equal(await client.invoke("Echo", "b"), "b");
      await assert.rejects(client.invoke("Bounded", 9, 5), /HubException: 9 is above 5/);
      await client.invoke("JoinGroup", "watchers");
    }
    const text = await scrape();
    for (const [label] of TRANSPORTS) {
      assert.equal(value(text, "signalr_server_active_connections", { signalr_transport: label, hub: "/hub" }), 1, `${label}\n${text}`);
    }
    assert.equal(value(text, "hubs_invocations_total", { hub: "/hub", method: "Echo", outcome: "ok" }), 6);
    assert.equal(value(text, "hubs_invocations_total", { hub: "/hub", method: "Bounded", outcome: "error" }), 3);
    assert.equal(value(text, "hubs_invocation_duration_seconds_count", { hub: "/hub", method: "Echo" }), 6);
    assert.ok(value(text, "hubs_received_bytes_total", { hub: "/hub" }) > 0);

    // The stats view: admins only.
    assert.equal((await fetch(server.url("/stats"))).status, 401);
    assert.equal((await fetch(server.url("/stats"), { headers: { Authorization: "Bearer bob" } })).status, 403);
    const stats = await (await fetch(server.url("/stats"), { headers: { Authorization: "Bearer root#admin" } })).json();
    const hub = stats.hubs.find((h) => h.path === "/hub");
    assert.equal(hub.connections, 3);
    assert.deepEqual(hub.byTransport, { longPolling: 1, serverSentEvents: 1, webSockets: 1 });
    assert.deepEqual(hub.byProtocol, { json: 2, messagepack: 1 });
    assert.equal(hub.users, 1);
    assert.deepEqual(hub.groups, [{ name: "watchers", members: 3 }]);
    assert.ok(hub.totals.invocations >= 12);
  } finally {
    await stopAll(...clients);
  }

  // Each connection ended normally; none is active. (A scrape reads the gauges before it drains
  // the histograms, so a connection ending in between shows in one and not yet in the other.)
  const text = await waitUntil(async () => {
    const text = await scrape();
    return TRANSPORTS.every(
      ([label]) =>
        value(text, "signalr_server_connection_duration_seconds_count", {
          signalr_connection_status: "normal_closure",
          signalr_transport: label,
          hub: "/hub",
        }) === 1 && value(text, "signalr_server_active_connections", { signalr_transport: label, hub: "/hub" }) === 0,
    ) && text;
  }, 5_000, "three normal closures, none active");
  const promtool = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  assert.equal(promtool.error, undefined, "promtool (Debian's prometheus package) must be installed");
  assert.equal(promtool.status, 0, `promtool: ${promtool.stdout}${promtool.stderr}`);
});
