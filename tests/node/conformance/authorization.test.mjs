// Authorization with the official client: `#[authorize(role = ...)]` and `#[authorize(policy =
// ...)]` methods refuse callers who do not meet them with ASP.NET Core's own text, and a hub
// that requires an authenticated user refuses anonymous clients at negotiate (401) — over every
// transport and both protocols. Tokens are `user#role1,role2` (see examples/conformance/main.rs).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { HttpTransportType } from "@microsoft/signalr";
import { PROTOCOLS, connect, startServer, stopAll } from "./server.mjs";

const unauthorized = (method) => `Failed to invoke '${method}' because user is unauthorized`;

describe("authorization", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  for (const protocol of PROTOCOLS) {
    for (const transport of ["WebSockets", "ServerSentEvents", "LongPolling"]) {
      if (protocol === "messagepack" && transport === "ServerSentEvents") continue;
      const as = (token) =>
        connect(server.url("/hub"), {
          protocol,
          transport: HttpTransportType[transport],
          ...(token ? { accessTokenFactory: () => token } : {}),
        });

      it(`a role-only method: refused to anonymous callers and users without the role, run for the role (${protocol}, ${transport})`, async () => {
        const [anonymous, bob, alice] = await Promise.all([as(), as("bob"), as("alice#ops,admin")]);
        try {
          await assert.rejects(anonymous.invoke("AdminEcho", "x"), { message: unauthorized("AdminEcho") });
          await assert.rejects(bob.invoke("AdminEcho", "x"), { message: unauthorized("AdminEcho") });
          assert.equal(await alice.invoke("AdminEcho", "for admins"), "for admins");
          // Refused calls change nothing else: the connections stay usable.
          assert.equal(await bob.invoke("Echo", "still here"), "still here");
          assert.equal(await anonymous.invoke("Echo", "me too"), "me too");
        } finally {
          await stopAll(anonymous, bob, alice);
        }
      });

      it(`a policy method: decided by the server's policy (${protocol}, ${transport})`, async () => {
        const [even, odd] = await Promise.all([as("ab"), as("abc")]);
        try {
          assert.equal(await even.invoke("EvenEcho", "ok"), "ok");
          await assert.rejects(odd.invoke("EvenEcho", "no"), { message: unauthorized("EvenEcho") });
        } finally {
          await stopAll(even, odd);
        }
      });

      it(`a hub for authenticated users: anonymous clients are refused with 401, users connect (${protocol}, ${transport})`, async () => {
        await assert.rejects(
          connect(server.url("/secure"), { protocol, transport: HttpTransportType[transport] }),
          (error) => {
            // The official client wraps negotiate's HttpError (statusCode 401) in its own error.
            assert.match(`${error.message}`, /401/, `${error}`);
            return true;
          },
        );
        const user = await connect(server.url("/secure"), {
          protocol,
          transport: HttpTransportType[transport],
          accessTokenFactory: () => "carol",
        });
        try {
          assert.equal(await user.invoke("Echo", "inside"), "inside");
        } finally {
          await user.stop();
        }
      });
    }
  }

  it("a hub for authenticated users: skipping negotiation does not get an anonymous WebSocket in", async () => {
    await assert.rejects(
      connect(server.url("/secure"), { skipNegotiation: true, transport: HttpTransportType.WebSockets }),
    );
    const user = await connect(server.url("/secure"), {
      skipNegotiation: true,
      transport: HttpTransportType.WebSockets,
      accessTokenFactory: () => "dave",
    });
    try {
      assert.equal(await user.invoke("Echo", "direct"), "direct");
    } finally {
      await user.stop();
    }
  });

  it("a streaming invocation of a refused method gets the same error", async () => {
    const bob = await connect(server.url("/hub"), { accessTokenFactory: () => "bob" });
    try {
      // AdminEcho is unary: authorization is checked first, as in ASP.NET Core, so the error is
      // the authorization one, not the wrong-invocation-kind one.
      await assert.rejects(
        new Promise((resolve, reject) =>
          bob.stream("AdminEcho", "x").subscribe({ next: () => {}, complete: resolve, error: reject }),
        ),
        { message: unauthorized("AdminEcho") },
      );
    } finally {
      await bob.stop();
    }
  });
});
