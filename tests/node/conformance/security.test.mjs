// Origin checks and identity binding with the official client (the Rust tests cover every
// transport request with raw HTTP): an upgrade or event stream from a page on another origin is
// refused, the configured origin is accepted, and a connection negotiated as one user cannot be
// opened as another (the official client's token factory answering differently the second time).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { HttpTransportType } from "@microsoft/signalr";
import { connect, startServer } from "./server.mjs";

const ALLOWED = "http://allowed.test"; // CORS_ORIGIN in examples/conformance/main.rs

describe("origin checks and identity binding (official client)", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  for (const transport of ["WebSockets", "ServerSentEvents"]) {
    it(`a client on another origin is refused; the allowed origin connects (${transport})`, async () => {
      await assert.rejects(
        connect(server.url("/hub"), {
          transport: HttpTransportType[transport],
          headers: { Origin: "http://evil.test" },
        }),
      );
      const allowed = await connect(server.url("/hub"), {
        transport: HttpTransportType[transport],
        headers: { Origin: ALLOWED },
      });
      try {
        assert.equal(await allowed.invoke("Echo", "same site"), "same site");
      } finally {
        await allowed.stop();
      }
    });

  }

  // Over WebSockets the official client asks its token factory again for the upgrade (over SSE
  // it reuses negotiate's token), so a factory that answers differently the second time opens
  // the socket as someone else — which the server refuses (403).
  for (const transport of ["WebSockets"]) {
    it(`a connection negotiated as alice cannot be opened as bob (${transport})`, async () => {
      const tokens = ["alice", "bob"];
      await assert.rejects(
        connect(server.url("/hub"), {
          transport: HttpTransportType[transport],
          accessTokenFactory: () => tokens.shift() ?? "bob",
        }),
      );
      // Alice with her own token throughout connects, and is alice.
      const alice = await connect(server.url("/hub"), {
        transport: HttpTransportType[transport],
        accessTokenFactory: () => "alice",
      });
      try {
        assert.equal(await alice.invoke("UserId"), "alice");
      } finally {
        await alice.stop();
      }
    });
  }
});
