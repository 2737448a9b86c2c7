"""Shared fixtures for the Python client tests: start the real `sluice` binary on a temporary
data dir and a free range of loopback ports, and show its log when a test fails.

The binary comes from $SLUICE_BIN (default: target/debug/sluice under the repository root).
"""

import os
import random
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0
# Below the Linux ephemeral range (32768-60999), so client sockets never take our ports.
PORT_LOW, PORT_HIGH = 20000, 32000


def sluice_bin():
    path = Path(os.environ.get("SLUICE_BIN", "target/debug/sluice"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    # A missing broker binary is a failure, never a skip.
    assert path.is_file(), f"sluice binary not found at {path} (build it or set SLUICE_BIN)"
    return path


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_range(count):
    rng = random.Random(os.getpid() ^ time.time_ns())
    for _ in range(1000):
        base = rng.randrange(PORT_LOW, PORT_HIGH - count)
        if all(_port_free(p) for p in range(base, base + count)):
            return base
    raise RuntimeError(f"no free range of {count} ports")


def _can_connect(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    """A `sluice serve` process with a data dir that survives restarts."""

    def __init__(self, workdir, cores=1, config=None, listeners=1):
        """`listeners` > 1: config values may name listener i's bootstrap port as `{Li}`; each
        listener takes its port and one per shard after it, all from one free range."""
        self.listeners = listeners
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cores = cores
        self.config = dict(config or {})
        self.base_port = None
        self.proc = None
        self.starts = 0

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.base_port}"

    def shard_port(self, core):
        return self.base_port + 1 + core

    def listener_port(self, index):
        """Bootstrap port of listener `index` (0 is the one `--port` sets)."""
        return self.base_port + index * (self.cores + 1)

    def _config_text(self):
        ports = {f"L{i}": self.listener_port(i) for i in range(self.listeners)}
        return "".join(f"{k}={str(v).format(**ports) if self.listeners > 1 else v}\n"
                       for k, v in self.config.items())

    def log_path(self, start):
        return self.workdir / f"sluice-stderr-{start}.log"

    def command(self):
        cmd = [str(sluice_bin()), "serve", "--data-dir", str(self.data_dir),
               "--host", "127.0.0.1", "--port", str(self.base_port),
               "--cores", str(self.cores)]
        if self.config:
            path = self.workdir / "server.properties"
            path.write_text(self._config_text())
            cmd += ["--config", str(path)]
        return cmd

    def start(self):
        """Starts on fresh ports, retrying when another process takes one first."""
        last_error = None
        for _ in range(3):
            self.base_port = free_port_range(self.listeners * (self.cores + 1))
            try:
                self._spawn_and_wait()
                return self
            except RuntimeError as e:
                last_error = e
                self.kill()
        raise RuntimeError(f"broker did not start: {last_error}\n{self.logs()}")

    def restart(self):
        """Starts again on the same data dir and ports."""
        assert self.proc is None, "stop the broker first"
        self._spawn_and_wait()

    def _spawn_and_wait(self):
        self.starts += 1
        with open(self.log_path(self.starts), "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + READY_TIMEOUT_S
        for port in range(self.base_port, self.base_port + self.listeners * (self.cores + 1)):
            while not _can_connect(port):
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    self.proc = None
                    raise RuntimeError(f"broker exited during start-up with {code}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"port {port} not accepting after {READY_TIMEOUT_S}s")
                time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM):
        """Graceful stop; returns the exit code."""
        proc, self.proc = self.proc, None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"broker did not stop within {STOP_TIMEOUT_S}s of {sig}")

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def logs(self):
        parts = []
        for start in range(1, self.starts + 1):
            path = self.log_path(start)
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"===== sluice log, start {start} ({path}) =====\n{text[-20000:]}")
        return "\n".join(parts)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Remember each phase's outcome on the test item, so fixtures can print logs on failure.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def _failed(request):
    nodes = [request.node]
    return any(getattr(n, "rep_call", None) is not None and n.rep_call.failed for n in nodes)


@pytest.fixture
def broker_factory(tmp_path, request):
    """Call with (cores=..., config={...}) to get a started broker; all are killed at the end."""
    brokers = []

    def make(cores=1, config=None, listeners=1):
        b = Broker(tmp_path / f"broker-{len(brokers)}", cores=cores, config=config,
                   listeners=listeners)
        brokers.append(b)
        return b.start()

    yield make
    for b in brokers:
        if _failed(request):
            print(b.logs())
        b.kill()


@pytest.fixture
def broker(broker_factory):
    """A fresh two-shard broker with default settings."""
    return broker_factory(cores=2)


@pytest.fixture
def topic():
    """A topic name no other test uses."""
    return f"py-{uuid.uuid4().hex[:12]}"
