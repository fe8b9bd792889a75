// Builds hub-core/tests/vectors/official.json with the official SignalR classes.
// Run as a script (`npm run vectors`) it writes the file; imported, it only exports `generate`.
import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { VERSION as SIGNALR_VERSION } from "@microsoft/signalr";
import { VERSION as MSGPACK_VERSION } from "@microsoft/signalr-protocol-msgpack";
import { cases, handshakeRequests, handshakeResponses } from "./cases.mjs";
import { describe, toBase64 } from "./canonical.mjs";
import {
  PROTOCOLS, concatBytes, readHandshakeRequest, readHandshakeResponse, readMessages, writeHandshakeRequest,
  writeMessage, writeRawFrame,
} from "./wire.mjs";

export const OFFICIAL_PATH = fileURLToPath(new URL("../../../hub-core/tests/vectors/official.json", import.meta.url));

/** One hub vector; throws if the official parser does not read back what was written. */
function hubVector(testCase, protocol) {
  const { name, messages, frames } = testCase;
  const label = `${name} (${protocol})`;
  const chunks = frames?.[protocol]
    ? frames[protocol].map((payload) => writeRawFrame(protocol, payload))
    : messages.map((message) => writeMessage(protocol, message));
  const bytes = concatBytes(chunks);

  // The description is what the official parser reads; it must match what we meant to write.
  const read = readMessages(protocol, bytes).map((message) => describe(message, protocol));
  deepStrictEqual(read, messages.map((message) => describe(message, protocol)), `${label} does not round-trip`);
  return { name, protocol, bytes: toBase64(bytes), messages: read };
}

export function generate() {
  strictEqual(SIGNALR_VERSION, MSGPACK_VERSION, "the two SignalR packages must have the same version");
  const seen = new Set();
  const hub = [];
  for (const testCase of cases) {
    for (const protocol of PROTOCOLS.filter((p) => testCase.protocols.includes(p))) {
      const key = `${testCase.name} (${protocol})`;
      if (seen.has(key)) throw new Error(`duplicate case ${key}`);
      seen.add(key);
      hub.push(hubVector(testCase, protocol));
    }
  }

  return {
    generator: "tests/node/vectors/generate.mjs",
    versions: { "@microsoft/signalr": SIGNALR_VERSION, "@microsoft/signalr-protocol-msgpack": MSGPACK_VERSION },
    hub,
    handshakeRequests: handshakeRequests.map(({ name, protocol, version }) => {
      const bytes = writeHandshakeRequest(protocol, version);
      deepStrictEqual(readHandshakeRequest(bytes), { protocol, version }, `handshake request ${name}`);
      return { name, bytes: toBase64(bytes), protocol, version };
    }),
    handshakeResponses: handshakeResponses.map(({ name, text }) => {
      const bytes = new TextEncoder().encode(`${text}\x1e`);
      const error = readHandshakeResponse(bytes);
      strictEqual(error, JSON.parse(text).error ?? null, `handshake response ${name}`);
      return { name, bytes: toBase64(bytes), error };
    }),
  };
}

/** The exact file text: two-space indentation, trailing newline. */
export function serialize(vectors) {
  return `${JSON.stringify(vectors, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const vectors = generate();
  writeFileSync(OFFICIAL_PATH, serialize(vectors));
  const count = (protocol) => vectors.hub.filter((v) => v.protocol === protocol).length;
  console.log(`wrote ${OFFICIAL_PATH}: ${count("json")} json + ${count("messagepack")} messagepack hub cases, ` +
    `${vectors.handshakeRequests.length} handshake requests, ${vectors.handshakeResponses.length} handshake responses`);
}
