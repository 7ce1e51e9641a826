"""A simulated scale on a real TCP port, a client on it, and a raw line-by-line peer."""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Iterator

import pytest

from batchline.devices import MtSicsScale
from batchline.devices.mtsics import LineSplitter, encode_line
from batchline.devices.scale_sim import ScaleSimulator

# Tens of milliseconds: long enough to see a dynamic reading, short enough to keep the suite fast.
SETTLE = 0.05
STABLE_TIMEOUT = 0.2


@pytest.fixture
def sim() -> Iterator[ScaleSimulator]:
    scale = ScaleSimulator(
        serial="SIM-0001",
        model="Batchline SIM",
        capacity=6200,
        unit="g",
        decimals=2,
        settle_time=SETTLE,
        stable_timeout=STABLE_TIMEOUT,
        stream_interval=0.01,
    )
    with scale.running() as running:
        yield running


@pytest.fixture
def scale(sim: ScaleSimulator) -> Iterator[MtSicsScale]:
    with MtSicsScale("127.0.0.1", sim.port, timeout=1.0) as client:
        yield client


class Peer:
    """Speaks lines over a socket with no client logic in between: what the scale really sends."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
        self.splitter = LineSplitter()
        self.lines: deque[bytes] = deque()

    def send(self, line: str) -> None:
        self.sock.sendall(encode_line(line))

    def line(self) -> str:
        while not self.lines:
            data = self.sock.recv(4096)
            assert data, "connection closed"
            self.lines.extend(self.splitter.feed(data))
        return self.lines.popleft().decode("ascii")

    def ask(self, line: str) -> str:
        self.send(line)
        return self.line()

    def quiet_for(self, seconds: float) -> bool:
        """True when nothing at all arrives for ``seconds`` (neither a line nor the end)."""
        self.sock.settimeout(seconds)
        try:
            self.sock.recv(4096)
        except TimeoutError:
            return not self.lines
        finally:
            self.sock.settimeout(1.0)
        return False


@pytest.fixture
def peer(sim: ScaleSimulator) -> Iterator[Peer]:
    p = Peer(sim.port)
    yield p
    p.sock.close()
