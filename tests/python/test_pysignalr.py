"""Real-client compatibility tests: the Python `pysignalr` client against our conformance hub.

pysignalr (spec §10): WebSockets only, negotiates without `negotiateVersion` (v0, so the
connection id doubles as the token), JSON or MessagePack handshake v1, UUID invocation ids,
server-to-client streams, client results (a handler's return value), and headers on the
negotiate request and the WebSocket upgrade. Every scenario runs with both protocols.

What pysignalr cannot do, so is not tested here: long polling and Server-Sent Events; a result
from its public `client_stream()` (it sends the upload invocation without an `invocationId`, so
the server answers nothing; `test_upload_stream` sends the same message with an id);
cancelling a stream; and `access_token_factory` on a first connection: pysignalr calls the
factory only after the WebSocket is open (in its handshake step), so neither the negotiate
request nor the upgrade carries the token and `/secure` answers 401 — the auth tests pass the
bearer token as a header instead.

Run with `tests/python/run` (standard library `unittest` only).
"""

import asyncio
import unittest
import uuid

from pysignalr.client import ClientStream, SignalRClient
from pysignalr.exceptions import AuthorizationError
from pysignalr.messages import InvocationClientStreamMessage
from pysignalr.protocol.json import JSONProtocol
from pysignalr.protocol.messagepack import MessagepackProtocol

from conformance import TIMEOUT, TEST_TIMEOUT, ConformanceServer, build_once

GENERIC_THROW = "An unexpected error occurred invoking 'Throw' on the server."


def setUpModule():
    build_once()


class Client:
    """A started pysignalr client: `run()` runs as a task until `stop()` cancels it."""

    def __init__(self, url, protocol=None, headers=None, handlers=None):
        self.client = SignalRClient(url, protocol=protocol, headers=headers, retry_count=1)
        self.opened = asyncio.Event()
        self.closed = asyncio.Event()
        self.errors = []
        self.received = {}  # client method name -> asyncio.Queue of argument lists

        async def on_open():
            self.opened.set()

        async def on_close():
            self.closed.set()

        async def on_error(message):
            self.errors.append(message)

        self.client.on_open(on_open)
        self.client.on_close(on_close)
        self.client.on_error(on_error)
        for name, handler in (handlers or {}).items():
            self.client.on(name, handler)
        self.task = None

    def queue(self, name):
        """A queue of the argument lists of every server call of the client method `name`."""
        if name not in self.received:
            received = self.received[name] = asyncio.Queue()

            async def on_call(arguments):
                await received.put(arguments)

            self.client.on(name, on_call)
        return self.received[name]

    async def start(self):
        self.task = asyncio.create_task(self.client.run())
        opened = asyncio.create_task(self.opened.wait())
        done, _ = await asyncio.wait({opened, self.task}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if opened not in done:
            opened.cancel()
            if self.task in done:
                self.task.result()  # raises the connection failure
            raise AssertionError(f"pysignalr did not connect within {TIMEOUT} s")
        return self

    async def invoke(self, method, *args):
        """Invokes `method` and returns the server's CompletionMessage."""
        future = asyncio.get_running_loop().create_future()

        async def on_completion(message):
            if not future.done():
                future.set_result(message)

        await self.client.send(method, list(args), on_completion)
        try:
            return await asyncio.wait_for(future, TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError(f"no completion of {method} within {TIMEOUT} s") from None

    async def stream(self, method, *args):
        """Runs a server-to-client stream; returns (items, completion, error message)."""
        items = []
        done = asyncio.get_running_loop().create_future()

        async def on_next(item):
            items.append(item)

        async def on_complete(message):
            if not done.done():
                done.set_result((message, None))

        async def on_error(message):
            if not done.done():
                done.set_result((None, message))

        await self.client.stream(method, list(args), on_next, on_complete, on_error)
        try:
            completion, error = await asyncio.wait_for(done, TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError(f"the stream {method} did not end within {TIMEOUT} s") from None
        return items, completion, error

    async def stop(self):
        if self.task is None or self.task.done():
            return
        # pysignalr has no stop(): cancelling run() is the way out. Cancelling alone leaves the
        # WebSocket open until the websockets connect() generator is garbage-collected, so close
        # it explicitly too (close frame 1000), after the task can no longer reconnect.
        ws = self.client._transport._ws
        self.task.cancel()
        try:
            await asyncio.wait_for(self.task, TIMEOUT)
        except asyncio.CancelledError:
            pass
        if ws is not None:
            await asyncio.wait_for(ws.close(), TIMEOUT)


async def next_item(q, what):
    try:
        return await asyncio.wait_for(q.get(), TIMEOUT)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {what} within {TIMEOUT} s") from None


class PysignalrTestCase(unittest.TestCase):
    PROTOCOL = JSONProtocol

    def setUp(self):
        self.server = ConformanceServer()
        self.addCleanup(self.server.stop)

    def run_async(self, scenario, path="/hub"):
        async def main():
            clients = []

            async def connect(path=path, **kwargs):
                kwargs.setdefault("protocol", self.PROTOCOL())
                client = await Client(self.server.url(path), **kwargs).start()
                clients.append(client)
                return client

            try:
                await asyncio.wait_for(scenario(connect), TEST_TIMEOUT)
            except BaseException:
                # Report the scenario's failure, not a stop that fails after it (a hung server).
                for client in clients:
                    try:
                        await client.stop()
                    except Exception:  # noqa: BLE001
                        pass
                raise
            for client in clients:
                await client.stop()

        asyncio.run(main())


class Scenarios:
    """The pysignalr scenarios, run once per protocol by the subclasses below."""

    def test_echo_unicode(self):
        text = "héllo wörld ✓ 日本語 🎉 \"quoted\" \\ \u001e tab\t"

        async def scenario(connect):
            client = await connect()
            completion = await client.invoke("Echo", text)
            self.assertIsNone(completion.error)
            self.assertEqual(completion.result, text)
            self.assertEqual((await client.invoke("Transport")).result, "WebSockets")

        self.run_async(scenario)

    def test_add(self):
        async def scenario(connect):
            client = await connect()
            completion = await client.invoke("Add", 2, 3)
            self.assertIsNone(completion.error)
            self.assertEqual(completion.result, 5)

        self.run_async(scenario)

    def test_invocation_ids_are_uuids_and_concurrent_calls_resolve(self):
        async def scenario(connect):
            client = await connect()
            completions = await asyncio.gather(*(client.invoke("Add", i, 1) for i in range(20)))
            self.assertEqual([c.result for c in completions], [i + 1 for i in range(20)])
            ids = [c.invocation_id for c in completions]
            self.assertEqual(len(set(ids)), 20)
            for invocation_id in ids:
                self.assertRegex(invocation_id, r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

        self.run_async(scenario)

    def test_send_to_caller_push(self):
        async def scenario(connect):
            client = await connect()
            received = client.queue("Receive")
            completion = await client.invoke("SendToCaller", "ping ✓")
            self.assertIsNone(completion.error)
            self.assertIsNone(completion.result)  # void method: pysignalr sees no `result`
            arguments = await next_item(received, "Receive push")
            self.assertEqual(arguments, ["caller", "ping ✓"])
            self.assertTrue(received.empty())

        self.run_async(scenario)

    def test_throw_reports_generic_error(self):
        async def scenario(connect):
            client = await connect()
            completion = await client.invoke("Throw")
            self.assertEqual(completion.error, GENERIC_THROW)
            self.assertIsNone(completion.result)
            # pysignalr routes error completions to the global on_error callback as well.
            self.assertEqual([m.error for m in client.errors], [GENERIC_THROW])
            # The connection survives a failed invocation.
            self.assertEqual((await client.invoke("Add", 40, 2)).result, 42)

        self.run_async(scenario)

    def test_detailed_errors(self):
        async def scenario(connect):
            client = await connect(path="/detailed")
            completion = await client.invoke("Throw")
            # /detailed shows the error's text (`/hub` shows only the generic message).
            self.assertEqual(
                completion.error,
                "An unexpected error occurred invoking 'Throw' on the server. Error: the database is down",
            )

        self.run_async(scenario)

    def test_hub_error_text_reaches_the_client(self):
        async def scenario(connect):
            client = await connect()
            completion = await client.invoke("ThrowHub", "no such room ✓")
            self.assertEqual(
                completion.error,
                "An unexpected error occurred invoking 'ThrowHub' on the server. HubException: no such room ✓",
            )
            self.assertIsNone(completion.result)
            self.assertEqual((await client.invoke("Echo", "still here")).result, "still here")

        self.run_async(scenario)

    def test_unknown_method_is_an_error_not_a_disconnect(self):
        async def scenario(connect):
            client = await connect()
            completion = await client.invoke("NoSuchMethod", 1)
            self.assertEqual(
                completion.error,
                "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.",
            )
            self.assertEqual((await client.invoke("Add", 1, 1)).result, 2)

        self.run_async(scenario)

    def test_server_stream(self):
        async def scenario(connect):
            client = await connect()
            items, completion, error = await client.stream("Counter", 5, 2)
            self.assertIsNone(error)
            self.assertEqual(items, [0, 1, 2, 3, 4])
            self.assertIsNone(completion.error)
            self.assertIsNone(completion.result)
            # Two streams at once keep their items apart.
            (a, _, _), (b, _, _) = await asyncio.gather(client.stream("Counter", 3, 5), client.stream("Counter", 4, 1))
            self.assertEqual((a, b), ([0, 1, 2], [0, 1, 2, 3]))
            self.assertEqual(client.errors, [])

        self.run_async(scenario)

    def test_server_stream_error(self):
        async def scenario(connect):
            client = await connect()
            items, completion, error = await client.stream("FailingStream", 2)
            self.assertIsNone(completion)
            self.assertEqual(items, [0, 1])
            self.assertEqual(
                error.error,
                "An error occurred on the server while streaming results. HubException: the stream broke",
            )
            # The stream's own on_error got it, not the global one.
            self.assertEqual(client.errors, [])
            self.assertEqual((await client.invoke("Add", 1, 2)).result, 3)

        self.run_async(scenario)

    def test_upload_stream(self):
        async def scenario(connect):
            client = await connect()
            # pysignalr's client_stream() sends the upload invocation without an invocationId
            # (fire and forget), so its result could never come back: send the same message with
            # an id, then the items and the end of the stream through pysignalr's ClientStream.
            stream = ClientStream(client.client._transport, "Sum")
            invocation_id = str(uuid.uuid4())
            future = asyncio.get_running_loop().create_future()

            async def on_completion(message):
                future.set_result(message)

            client.client._invocation_handlers[invocation_id] = on_completion
            await client.client._transport.send(
                InvocationClientStreamMessage([stream.invocation_id], "Sum", [], invocation_id=invocation_id)
            )
            for number in [1, 2, 3, 4, 5, 100]:
                await stream.send(number)
            await stream.complete()
            completion = await asyncio.wait_for(future, TIMEOUT)
            self.assertIsNone(completion.error)
            self.assertEqual(completion.result, 115)

        self.run_async(scenario)

    def test_client_results(self):
        async def scenario(connect):
            async def get_answer(arguments):
                (question,) = arguments
                return {"question": question, "answer": 42, "list": [1, "two", None]}

            async def refuse(arguments):
                raise ValueError(f"no answer to {arguments[0]}")

            answering = await connect(handlers={"GetAnswer": get_answer})
            completion = await answering.invoke("AskCaller", "life?")
            self.assertIsNone(completion.error)
            self.assertEqual(completion.result, {"question": "life?", "answer": 42, "list": [1, "two", None]})

            # Another connection asks this one, by connection id.
            asker = await connect()
            answering_id = (await answering.invoke("ConnectionId")).result
            completion = await asker.invoke("AskClient", answering_id, "universe?")
            self.assertIsNone(completion.error)
            self.assertEqual(completion.result["question"], "universe?")

            # A handler that raises sends its error back; the server's caller sees it.
            refusing = await connect(handlers={"GetAnswer": refuse})
            completion = await refusing.invoke("AskCaller", "everything?")
            self.assertIsNone(completion.result)
            self.assertEqual(
                completion.error,
                "An unexpected error occurred invoking 'AskCaller' on the server. HubException: no answer to everything?",
            )

        self.run_async(scenario)

    def test_groups(self):
        async def scenario(connect):
            alice, bob, carol = await connect(), await connect(), await connect()
            alice_box, bob_box, carol_box = (c.queue("Receive") for c in (alice, bob, carol))
            for member in (alice, bob):
                self.assertIsNone((await member.invoke("JoinGroup", "room ✓")).error)
            self.assertEqual((await alice.invoke("MyGroups")).result, ["room ✓"])
            members = (await carol.invoke("GroupMembers", "room ✓")).result
            ids = [(await c.invoke("ConnectionId")).result for c in (alice, bob)]
            self.assertEqual(members, sorted(ids))

            # Carol, outside the group, sends to it: both members get it once, she does not.
            self.assertIsNone((await carol.invoke("SendToGroup", "room ✓", "hello room")).error)
            self.assertEqual(await next_item(alice_box, "group push to alice"), ["group", "hello room"])
            self.assertEqual(await next_item(bob_box, "group push to bob"), ["group", "hello room"])
            # A push to herself after the group send arrives first: she got nothing from the group.
            await carol.invoke("SendToCaller", "marker")
            self.assertEqual(await next_item(carol_box, "carol's marker"), ["caller", "marker"])

            # Bob leaves; the next group send reaches only Alice.
            self.assertIsNone((await bob.invoke("LeaveGroup", "room ✓")).error)
            self.assertEqual((await bob.invoke("MyGroups")).result, [])
            await carol.invoke("SendToGroup", "room ✓", "second")
            self.assertEqual(await next_item(alice_box, "second group push"), ["group", "second"])
            await bob.invoke("SendToCaller", "marker")
            self.assertEqual(await next_item(bob_box, "bob's marker"), ["caller", "marker"])

            # Members send to the others in their group.
            await alice.invoke("JoinGroup", "pair")
            await carol.invoke("JoinGroup", "pair")
            await alice.invoke("SendToOthersInGroup", "pair", "psst")
            self.assertEqual(await next_item(carol_box, "others-in-group push"), ["othersInGroup", "psst"])
            await alice.invoke("SendToCaller", "marker")
            self.assertEqual(await next_item(alice_box, "alice's marker"), ["caller", "marker"])
            for box in (alice_box, bob_box, carol_box):
                self.assertTrue(box.empty())

        self.run_async(scenario)

    def test_pushes_to_all_and_others(self):
        async def scenario(connect):
            first, second = await connect(), await connect()
            first_box, second_box = first.queue("Receive"), second.queue("Receive")
            await first.invoke("SendToAll", "everyone")
            self.assertEqual(await next_item(first_box, "all push"), ["all", "everyone"])
            self.assertEqual(await next_item(second_box, "all push"), ["all", "everyone"])
            await first.invoke("SendToOthers", "not me")
            self.assertEqual(await next_item(second_box, "others push"), ["others", "not me"])
            await first.invoke("SendToCaller", "marker")
            self.assertEqual(await next_item(first_box, "marker"), ["caller", "marker"])

        self.run_async(scenario)

    def test_clean_stop(self):
        async def scenario(connect):
            client = await connect()
            connection_id = (await client.invoke("ConnectionId")).result
            self.assertIsInstance(connection_id, str)
            self.assertTrue(connection_id)
            await client.stop()
            self.assertTrue(client.task.cancelled())

            observer = await connect()
            deadline = asyncio.get_running_loop().time() + TIMEOUT
            while True:
                disconnections = (await observer.invoke("Disconnections")).result
                if any(entry[0] == connection_id for entry in disconnections):
                    break
                if asyncio.get_running_loop().time() > deadline:
                    self.fail(f"server never saw {connection_id} disconnect: {disconnections}")
                await asyncio.sleep(0.02)
            # A clean close is not an error on the server side.
            self.assertIn([connection_id, None], disconnections)
            self.assertEqual((await observer.invoke("ConnectionCount")).result, 1)

        self.run_async(scenario)


class PysignalrJsonTests(Scenarios, PysignalrTestCase):
    PROTOCOL = JSONProtocol


class PysignalrMessagepackTests(Scenarios, PysignalrTestCase):
    PROTOCOL = MessagepackProtocol


class PysignalrAuthTests(PysignalrTestCase):
    """The conformance server's bearer token is the user id (`user#role` adds a role); the
    token `reject` gets 401, and `/secure` refuses anonymous connections with 401."""

    def test_bearer_token_becomes_the_user(self):
        async def scenario(connect):
            alice = await connect(headers={"Authorization": "Bearer alice"})
            self.assertEqual((await alice.invoke("UserId")).result, "alice")
            alice_id = (await alice.invoke("ConnectionId")).result
            self.assertEqual((await alice.invoke("UserConnections", "alice")).result, [alice_id])
            # Not an admin: the role-protected method refuses her, the connection stays.
            refused = await alice.invoke("AdminEcho", "x")
            self.assertIsNone(refused.result)
            self.assertEqual(refused.error, "Failed to invoke 'AdminEcho' because user is unauthorized")
            admin = await connect(headers={"Authorization": "Bearer bob#admin"})
            self.assertEqual((await admin.invoke("UserId")).result, "bob")
            self.assertEqual((await admin.invoke("AdminEcho", "sudo ✓")).result, "sudo ✓")
            # A push to a user reaches that user's connection.
            alice_box = alice.queue("Receive")
            await admin.invoke("SendToUser", "alice", "hi alice")
            self.assertEqual(await next_item(alice_box, "user push"), ["user", "hi alice"])
            anonymous = await connect()
            self.assertIsNone((await anonymous.invoke("UserId")).result)

        self.run_async(scenario)

    def test_secure_hub_with_bearer_token(self):
        async def scenario(connect):
            client = await connect(headers={"Authorization": "Bearer alice"})
            self.assertEqual((await client.invoke("Echo", "secret ✓")).result, "secret ✓")

        self.run_async(scenario, path="/secure")

    def test_secure_hub_refuses_anonymous_with_401(self):
        async def scenario(connect):
            # pysignalr raises AuthorizationError exactly when negotiate answers 401.
            with self.assertRaises(AuthorizationError):
                await connect()

        self.run_async(scenario, path="/secure")

    def test_rejected_token_gets_401(self):
        async def scenario(connect):
            with self.assertRaises(AuthorizationError):
                await connect(path="/secure", headers={"Authorization": "Bearer reject"})
            with self.assertRaises(AuthorizationError):
                await connect(path="/hub", headers={"Authorization": "Bearer reject"})

        self.run_async(scenario)


if __name__ == "__main__":
    unittest.main()
