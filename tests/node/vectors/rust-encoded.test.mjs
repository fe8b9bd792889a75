// The official SignalR classes must read every vector the Rust encoder wrote
// (hub-core/tests/vectors/rust-encoded.json, produced by hub-core/tests/official_vectors.rs).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { describe, fromBase64 } from "./canonical.mjs";
import { readHandshakeRequest, readHandshakeResponse, readMessages } from "./wire.mjs";

const path = new URL("../../../hub-core/tests/vectors/rust-encoded.json", import.meta.url);
const vectors = JSON.parse(readFileSync(path, "utf8"));

test("rust-encoded.json has hub cases for both protocols", () => {
  for (const protocol of ["json", "messagepack"]) {
    assert.ok(vectors.hub.some((v) => v.protocol === protocol), `no ${protocol} case`);
  }
});

for (const { name, protocol, bytes, messages } of vectors.hub) {
  test(`hub ${name} (${protocol})`, () => {
    const parsed = readMessages(protocol, fromBase64(bytes));
    assert.equal(parsed.length, messages.length, "number of messages");
    parsed.forEach((message, i) => assert.deepEqual(describe(message, protocol), messages[i], `message ${i}`));
  });
}

for (const { name, bytes, protocol, version } of vectors.handshakeRequests ?? []) {
  test(`handshake request ${name}`, () => {
    assert.deepEqual(readHandshakeRequest(fromBase64(bytes)), { protocol, version });
  });
}

for (const { name, bytes, error } of vectors.handshakeResponses ?? []) {
  test(`handshake response ${name}`, () => {
    assert.equal(readHandshakeResponse(fromBase64(bytes)), error);
  });
}
