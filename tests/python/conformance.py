"""The harness the Python client tests share: the conformance server and bounded waits.

The server is `examples/conformance/main.rs` (hubs `/hub`, `/secure`, …), built once per run and
started fresh for every test on a free port (`PORT=0`; it prints `listening on <port>`), with
extra environment variables per test class (`KEEP_ALIVE_MS`, `POLL_TIMEOUT_MS`, …).
Set CONFORMANCE_NO_BUILD=1 to use `target/debug/conformance` as it is, and
PYTHON_CLIENT_DEBUG=1 to see the clients' debug logs.
"""

import logging
import os
import queue
import re
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "conformance"
TIMEOUT = 5.0  # seconds, for any single step of a test
TEST_TIMEOUT = 20.0  # seconds, for a whole test: a hang fails the test instead of stalling CI

# The clients log a warning for every reconnect and close, and signalrcore an error for the
# failures some tests provoke on purpose; keep the test output readable.
if os.environ.get("PYTHON_CLIENT_DEBUG"):
    logging.basicConfig(level=logging.DEBUG)
else:
    logging.getLogger("pysignalr").setLevel(logging.CRITICAL)
    logging.getLogger("SignalRCoreClient").setLevel(logging.CRITICAL)

_built = False


def build_once():
    """Builds the conformance binary once per run (unless CONFORMANCE_NO_BUILD is set)."""
    global _built
    if _built or os.environ.get("CONFORMANCE_NO_BUILD"):
        return
    subprocess.run(
        ["cargo", "build", "-q", "-p", "hub-examples", "--bin", "conformance"],
        cwd=ROOT,
        check=True,
    )
    _built = True


class ConformanceServer:
    """A conformance hub process on a free port; `stop()` kills it."""

    def __init__(self, **env):
        self.process = subprocess.Popen(
            [str(BINARY)],
            cwd=ROOT,
            env=dict(os.environ, PORT="0", **env),
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


def bounded(function, timeout=TIMEOUT, what=None):
    """Runs a blocking `function` on a daemon thread and returns its result or raises its
    exception; fails if it has not returned after `timeout` seconds (the thread is left behind,
    and ends when the test's server is killed)."""
    outcome = queue.Queue()

    def run():
        try:
            outcome.put((True, function()))
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            outcome.put((False, error))

    threading.Thread(target=run, daemon=True).start()
    try:
        ok, value = outcome.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"{what or function} did not return within {timeout} s") from None
    if ok:
        return value
    raise value


def get(q, timeout=TIMEOUT, what="a message"):
    """The next item of a `queue.Queue`, failing after `timeout` seconds."""
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no {what} within {timeout} s") from None
