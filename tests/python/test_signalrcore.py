"""Real-client compatibility tests: the Python `signalrcore` client against our conformance hub.

signalrcore (1.0, its own sockets and urllib, callbacks on its own threads) negotiates without
`negotiateVersion` (v0), sends the handshake with the negotiate version as the protocol
version (`{"protocol":"json","version":0}`), puts its HTTP headers (`Content-Type`, and
`Authorization` with `access_token_factory`) in every hub message's `headers`, and routes error
completions (of invocations and streams) to the global `on_error` callback only.

Its `stop()` sends nothing on WebSockets and Server-Sent Events: it closes its socket while its
receive thread is blocked reading, so the socket really closes (with a reset, as unread bytes
remain) only once the server's next frame arrives, the keep-alive ping. With the default 15 s
keep-alive a stop takes ~15 s, so these tests run the server with `KEEP_ALIVE_MS=200`.

Transports × protocols tested: WebSockets with JSON and MessagePack, Server-Sent Events and long
polling with JSON. Not tested, because signalrcore cannot do them:
- SSE with MessagePack: SSE is text only (the negotiate response says so, and the server answers
  the handshake with an error); signalrcore swallows that error and never opens.
- Long polling with MessagePack: signalrcore always uses its text long-polling client (and its
  binary one fails in its constructor); it splits poll responses on the JSON record separator,
  which MessagePack frames do not carry, so no message is ever delivered.
- Long polling with `access_token_factory`: the poll requests carry no `Authorization` header,
  so the server refuses them (403, another user than the one negotiated) and signalrcore retries
  them in a busy loop.
- Client results: signalrcore ignores the return value of `on()` handlers.
signalrcore's long-polling client also hands on only the first record of each poll response
(the rest waits in its buffer for the next response), so its long-polling tests run with
`POLL_TIMEOUT_MS=100`: an idle poll returns every 100 ms and delivers the next buffered record.

Run with `tests/python/run` (standard library `unittest` only).
"""

import queue
import threading
import time
import unittest
import urllib.error
import uuid

from signalrcore.hub_connection_builder import HubConnectionBuilder
from signalrcore.protocol.messagepack_protocol import MessagePackHubProtocol
from signalrcore.types import HttpTransportType

from conformance import TIMEOUT, TEST_TIMEOUT, ConformanceServer, bounded, build_once, get

GENERIC_THROW = "An unexpected error occurred invoking 'Throw' on the server."
STREAM_BROKE = "An error occurred on the server while streaming results. HubException: the stream broke"


def setUpModule():
    build_once()


class Connection:
    """A signalrcore connection with bounded, blocking helpers (its callbacks run on its own
    threads and hand results over through queues and a condition)."""

    def __init__(self, url, transport, protocol=None, token=None):
        options = {"transport": transport}
        if token is not None:
            options["access_token_factory"] = lambda: token
        builder = HubConnectionBuilder().with_url(url, options=options)
        if protocol is not None:
            builder = builder.with_hub_protocol(protocol)
        self.hub = builder.build()
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.errors = []  # every message signalrcore gave on_error
        self.received = {}  # client method name -> queue.Queue of argument lists
        self._outcomes = {}  # invocation id -> ("result" | "error" | "complete", message)
        self._changed = threading.Condition()
        self._started = False
        self._stopped = False
        # signalrcore's stream() sends the StreamInvocation before it returns the handler to
        # subscribe to, so a fast first item could find no callback yet. Messages are dispatched
        # under this lock (start() binds `self.hub.on_message`), and stream() subscribes under it.
        self._dispatch = threading.RLock()
        original = self.hub.on_message

        def on_message(messages):
            with self._dispatch:
                return original(messages)

        self.hub.on_message = on_message
        self.hub.on_open(self.opened.set)
        self.hub.on_close(self.closed.set)
        self.hub.on_error(self._on_error)

    def _settle(self, invocation_id, kind, message):
        with self._changed:
            self._outcomes.setdefault(invocation_id, (kind, message))
            self._changed.notify_all()

    def _on_error(self, message):
        self.errors.append(message)
        invocation_id = getattr(message, "invocation_id", None)
        if invocation_id is not None:
            self._settle(invocation_id, "error", message)

    def _outcome(self, invocation_id, what):
        with self._changed:
            if not self._changed.wait_for(lambda: invocation_id in self._outcomes, TIMEOUT):
                raise AssertionError(f"no completion of {what} within {TIMEOUT} s")
            return self._outcomes[invocation_id]

    def queue(self, name):
        """A queue of the argument lists of every server call of the client method `name`
        (register before start(), or at least before the server calls it)."""
        if name not in self.received:
            self.received[name] = queue.Queue()
            self.hub.on(name, self.received[name].put)
        return self.received[name]

    def start(self):
        self._started = True
        bounded(self.hub.start, what="signalrcore start()")
        if not self.opened.wait(TIMEOUT):
            raise AssertionError(f"signalrcore did not open within {TIMEOUT} s")
        return self

    def invoke(self, method, *args):
        """Invokes `method`; returns ("result", completion) from `on_invocation`, or
        ("error", completion) from `on_error`."""
        invocation_id = str(uuid.uuid4())

        def on_invocation(message):
            self._settle(invocation_id, "result", message)

        bounded(lambda: self.hub.send(method, list(args), on_invocation, invocation_id), what=f"send {method}")
        return self._outcome(invocation_id, method)

    def call(self, method, *args):
        """Invokes `method` and returns its result, failing on an error completion."""
        kind, message = self.invoke(method, *args)
        if kind != "result":
            raise AssertionError(f"{method} failed: {message.error}")
        return message.result

    def stream(self, method, *args):
        """Runs a server-to-client stream; returns (items, kind, completion message) where kind
        is "complete" (the subscription's complete callback) or "error" (the global on_error)."""
        items = []
        with self._dispatch:
            handler = bounded(lambda: self.hub.stream(method, list(args)), what=f"stream {method}")
            invocation_id = handler.invocation_id
            handler.subscribe(
                {
                    "next": items.append,
                    "complete": lambda message: self._settle(invocation_id, "complete", message),
                    "error": lambda message: self._settle(invocation_id, "cancelled", message),
                }
            )
        kind, message = self._outcome(invocation_id, f"the stream {method}")
        return items, kind, message

    def stop(self):
        """Stops the connection; returns how long signalrcore's stop() took."""
        if not self._started or self._stopped:
            return 0.0
        self._stopped = True
        if not self.opened.is_set():  # never connected: nothing to wait for
            bounded(self.hub.stop, what="signalrcore stop()")
            return 0.0
        began = time.monotonic()
        bounded(self.hub.stop, what="signalrcore stop()")
        took = time.monotonic() - began
        if not self.closed.wait(TIMEOUT):
            raise AssertionError(f"signalrcore did not report its close within {TIMEOUT} s")
        return took


class SignalrcoreTestCase(unittest.TestCase):
    TRANSPORT = HttpTransportType.web_sockets
    PROTOCOL = None  # signalrcore's default: JSON
    TRANSPORT_NAME = "WebSockets"  # what the hub's `Transport` method answers
    SERVER_ENV = {"KEEP_ALIVE_MS": "200"}
    # Whether signalrcore's stop() ends the transport cleanly (a DELETE, or an ended request).
    CLEAN_STOP = True
    AUTH = True  # whether access_token_factory works on this transport

    def setUp(self):
        self.server = ConformanceServer(**self.SERVER_ENV)
        self.addCleanup(self.server.stop)

    def connect(self, path="/hub", token=None, receive=()):
        protocol = self.PROTOCOL() if self.PROTOCOL else None
        connection = Connection(self.server.url(path), self.TRANSPORT, protocol, token)
        for name in receive:
            connection.queue(name)
        self.addCleanup(connection.stop)
        return connection.start()

    def run_bounded(self, scenario):
        bounded(scenario, TEST_TIMEOUT, what="the test")


class Scenarios:
    """The signalrcore scenarios, run once per transport × protocol by the subclasses below."""

    def test_echo(self):
        text = "héllo wörld ✓ 日本語 🎉 \"quoted\" \\ tab\t"
        value = {"list": [1, 2.5, None, True, "x"], "nested": {"k": "v"}}

        def scenario():
            connection = self.connect()
            kind, completion = connection.invoke("Echo", text)
            self.assertEqual(kind, "result")
            self.assertIsNone(completion.error)
            self.assertEqual(completion.result, text)
            self.assertEqual(connection.call("EchoValue", value), value)
            self.assertEqual(connection.call("Add", 2, 3), 5)
            self.assertEqual(connection.call("Transport"), self.TRANSPORT_NAME)
            self.assertEqual(connection.errors, [])

        self.run_bounded(scenario)

    def test_push_to_caller(self):
        def scenario():
            connection = self.connect(receive=["Receive"])
            kind, completion = connection.invoke("SendToCaller", "ping ✓")
            self.assertEqual(kind, "result")
            self.assertIsNone(completion.error)
            self.assertIsNone(completion.result)
            self.assertEqual(get(connection.received["Receive"], what="Receive push"), ["caller", "ping ✓"])
            self.assertTrue(connection.received["Receive"].empty())

        self.run_bounded(scenario)

    def test_push_from_another_connection(self):
        def scenario():
            first = self.connect(receive=["Receive"])
            second = self.connect(receive=["Receive"])
            first_id = first.call("ConnectionId")
            # Arrives while the first connection is idle (on an open poll or event stream).
            second.call("SendToConnection", first_id, "for you ✓")
            self.assertEqual(get(first.received["Receive"], what="connection push"), ["connection", "for you ✓"])
            second.call("SendToAll", "everyone")
            self.assertEqual(get(first.received["Receive"], what="all push"), ["all", "everyone"])
            self.assertEqual(get(second.received["Receive"], what="all push"), ["all", "everyone"])
            self.assertEqual(first.call("ConnectionCount"), 2)

        self.run_bounded(scenario)

    def test_server_stream(self):
        def scenario():
            connection = self.connect()
            items, kind, completion = connection.stream("Counter", 4, 20)
            self.assertEqual(kind, "complete")
            self.assertEqual(items, [0, 1, 2, 3])
            self.assertIsNone(completion.error)
            self.assertEqual(connection.errors, [])

        self.run_bounded(scenario)

    def test_server_stream_error(self):
        def scenario():
            connection = self.connect()
            items, kind, completion = connection.stream("FailingStream", 2)
            self.assertEqual(kind, "error")  # signalrcore: the global on_error, not the stream's
            self.assertEqual(items, [0, 1])
            self.assertEqual(completion.error, STREAM_BROKE)
            self.assertEqual(connection.call("Add", 1, 2), 3)

        self.run_bounded(scenario)

    def test_throw_reports_generic_error(self):
        def scenario():
            connection = self.connect()
            kind, completion = connection.invoke("Throw")
            self.assertEqual(kind, "error")  # on_error only; on_invocation is not called
            self.assertEqual(completion.error, GENERIC_THROW)
            kind, completion = connection.invoke("ThrowHub", "nope ✓")
            self.assertEqual(kind, "error")
            self.assertEqual(
                completion.error,
                "An unexpected error occurred invoking 'ThrowHub' on the server. HubException: nope ✓",
            )
            self.assertEqual([m.error for m in connection.errors], [GENERIC_THROW, completion.error])
            # The connection survives failed invocations.
            self.assertEqual(connection.call("Add", 40, 2), 42)

        self.run_bounded(scenario)

    def test_clean_stop(self):
        def scenario():
            connection = self.connect()
            connection_id = connection.call("ConnectionId")
            took = connection.stop()
            # ~15 s with the default keep-alive; one keep-alive interval (200 ms) here.
            self.assertLess(took, 2.0)

            observer = self.connect()
            deadline = time.monotonic() + TIMEOUT
            while True:
                disconnections = observer.call("Disconnections")
                mine = [entry for entry in disconnections if entry[0] == connection_id]
                if mine:
                    break
                if time.monotonic() > deadline:
                    self.fail(f"server never saw {connection_id} disconnect: {disconnections}")
                time.sleep(0.02)
            self.assertEqual(len(mine), 1)
            if self.CLEAN_STOP:
                self.assertEqual(mine, [[connection_id, None]])
            else:
                # signalrcore's WebSocket stop sends no close frame and resets the socket; the
                # server may record that as a transport failure.
                error = mine[0][1]
                self.assertTrue(error is None or error.startswith("The transport failed"), error)
            self.assertEqual(observer.call("ConnectionCount"), 1)

        self.run_bounded(scenario)

    def test_access_token_factory(self):
        if not self.AUTH:
            self.skipTest("signalrcore sends no Authorization header on this transport's requests")

        def scenario():
            secure = self.connect(path="/secure", token="alice")
            self.assertEqual(secure.call("Echo", "secret ✓"), "secret ✓")
            alice = self.connect(token="alice")
            self.assertEqual(alice.call("UserId"), "alice")
            self.assertEqual(alice.call("UserConnections", "alice"), [alice.call("ConnectionId")])
            for path, token in [("/secure", None), ("/secure", "reject"), ("/hub", "reject")]:
                with self.assertRaises(urllib.error.HTTPError) as refused:
                    self.connect(path=path, token=token)
                self.assertEqual(refused.exception.code, 401, (path, token))

        self.run_bounded(scenario)


class SignalrcoreWebSocketsJsonTests(Scenarios, SignalrcoreTestCase):
    CLEAN_STOP = False


class SignalrcoreWebSocketsMessagepackTests(Scenarios, SignalrcoreTestCase):
    PROTOCOL = MessagePackHubProtocol
    CLEAN_STOP = False


class SignalrcoreServerSentEventsJsonTests(Scenarios, SignalrcoreTestCase):
    TRANSPORT = HttpTransportType.server_sent_events
    TRANSPORT_NAME = "ServerSentEvents"


class SignalrcoreLongPollingJsonTests(Scenarios, SignalrcoreTestCase):
    TRANSPORT = HttpTransportType.long_polling
    TRANSPORT_NAME = "LongPolling"
    SERVER_ENV = {"KEEP_ALIVE_MS": "200", "POLL_TIMEOUT_MS": "100"}
    AUTH = False


if __name__ == "__main__":
    unittest.main()
