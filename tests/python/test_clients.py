"""Real-client compatibility tests: the Python `pysignalr` client against our conformance hub.

The server is `examples/conformance/main.rs` (hub at `/hub`), built once per run and started
fresh for every test on a free port (`PORT=0`; it prints `listening on <port>`).
Set CONFORMANCE_NO_BUILD=1 to use `target/debug/conformance` as it is.

pysignalr (spec §10): WebSockets only, negotiates without `negotiateVersion` (v0, so the
connection id doubles as the token), JSON handshake v1, UUID invocation ids.
Run with `tests/python/run` (standard library `unittest` only).
"""

import asyncio
import logging
import os
import re
import subprocess
import threading
import unittest
from pathlib import Path

from pysignalr.client import SignalRClient

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "conformance"
TIMEOUT = 5.0  # seconds, for any single step of a test

# pysignalr logs a warning for every reconnect and close; keep the test output readable.
logging.getLogger("pysignalr").setLevel(logging.ERROR)


def setUpModule():
    if os.environ.get("CONFORMANCE_NO_BUILD"):
        return
    subprocess.run(
        ["cargo", "build", "-q", "-p", "hub-examples", "--bin", "conformance"],
        cwd=ROOT,
        check=True,
    )


class ConformanceServer:
    """A conformance hub process on a free port; `stop()` kills it."""

    def __init__(self):
        env = dict(os.environ, PORT="0")
        self.process = subprocess.Popen(
            [str(BINARY)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.port = self._read_port(timeout=20.0)

    def _read_port(self, timeout):
        found = {}

        def read():
            for line in self.process.stdout:
                match = re.search(r"listening on (\d+)", line)
                if match:
                    found["port"] = int(match.group(1))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if "port" not in found:
            self.stop()
            raise RuntimeError(f"conformance server did not report its port within {timeout} s")
        # Keep draining stdout so the server can never block on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()
        return found["port"]

    def url(self, path="/hub"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()


class Client:
    """A started pysignalr client: `run()` runs as a task until `stop()` cancels it."""

    def __init__(self, url, handlers=None):
        self.client = SignalRClient(url, retry_count=1)
        self.opened = asyncio.Event()
        self.closed = asyncio.Event()
        self.errors = []

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
        return await asyncio.wait_for(future, TIMEOUT)

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


class PysignalrTests(unittest.TestCase):
    def setUp(self):
        self.server = ConformanceServer()
        self.addCleanup(self.server.stop)

    def run_async(self, scenario):
        async def main():
            clients = []

            async def connect(**kwargs):
                client = await Client(self.server.url(), **kwargs).start()
                clients.append(client)
                return client

            try:
                await asyncio.wait_for(scenario(connect), 15)
            finally:
                for client in clients:
                    await client.stop()

        asyncio.run(main())

    def test_echo_unicode(self):
        text = "héllo wörld ✓ 日本語 🎉 \"quoted\" \\ \u001e tab\t"

        async def scenario(connect):
            client = await connect()
            completion = await client.invoke("Echo", text)
            self.assertIsNone(completion.error)
            self.assertEqual(completion.result, text)

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
            received = asyncio.Queue()

            async def on_receive(arguments):
                await received.put(arguments)

            client = await connect(handlers={"Receive": on_receive})
            completion = await client.invoke("SendToCaller", "ping ✓")
            self.assertIsNone(completion.error)
            self.assertIsNone(completion.result)  # void method: pysignalr sees no `result`
            arguments = await asyncio.wait_for(received.get(), TIMEOUT)
            self.assertEqual(arguments, ["caller", "ping ✓"])
            self.assertTrue(received.empty())

        self.run_async(scenario)

    def test_throw_reports_generic_error(self):
        async def scenario(connect):
            client = await connect()
            completion = await client.invoke("Throw")
            expected = "An unexpected error occurred invoking 'Throw' on the server."
            self.assertEqual(completion.error, expected)
            self.assertIsNone(completion.result)
            # pysignalr routes error completions to the global on_error callback as well.
            self.assertEqual([m.error for m in client.errors], [expected])
            # The connection survives a failed invocation.
            self.assertEqual((await client.invoke("Add", 40, 2)).result, 42)

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


if __name__ == "__main__":
    unittest.main()
