"""The scale simulators start with the web server on a demo database, and not otherwise: real processes,
real TCP connections to the MT-SICS port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.devices.conftest import Peer
from tests.test_cli import batchline

SEED = """
from decimal import Decimal
from django.db import transaction
from batchline.audit.services import Actor, record_create
from batchline.equipment import services as eq
from batchline.equipment.models import Site
a = Actor(id=None, username="test-setup", name="Test set-up", via="cli")
with transaction.atomic():
    site = record_create(Site(code="t1", name="Test plant"), actor=a)
scales = eq.equipment_class_create(actor=a, code="scale", name="Scale", is_scale=True)
eq.equipment_create(actor=a, site=site, code="SCALE-SIM", name="Bench scale", equipment_class=scales,
    host="127.0.0.1", port={simulated}, capacity=Decimal(6200), readability=Decimal("0.1"),
    minimum_weight=Decimal(20), unit="g", simulated=True)
eq.equipment_create(actor=a, site=site, code="SCALE-REAL", name="Floor scale", equipment_class=scales,
    host="127.0.0.1", port={real}, capacity=Decimal(150), unit="kg")
"""


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """A database (SQLite, its own home) with one scale registered as simulated and one real scale."""
    home = tmp_path_factory.mktemp("sim-home")
    simulated, real = free_port(), free_port()
    migrated = batchline(home, "migrate", "--verbosity", "0")
    assert migrated.returncode == 0, migrated.stderr
    seeded = batchline(home, "shell", "-c", SEED.format(simulated=simulated, real=real))
    assert seeded.returncode == 0, seeded.stderr
    return home, simulated, real


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def serving(home: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], int, list[str]]]:
    """``batchline runserver`` as its own process, until it answers on its port; stopped with Ctrl-C."""
    http = free_port()
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    server = subprocess.Popen(
        [sys.executable, "-m", "batchline.cli", "runserver", f"127.0.0.1:{http}", "--noreload", *args],
        env=environ | {"BATCHLINE_HOME": str(home), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        # Waiting for a process to come up, not timing it: each line it prints until it serves.
        assert server.stdout is not None
        for line in server.stdout:
            output.append(line)
            if "Starting development server" in line:
                break
        assert answers(http), "".join(output)
        yield server, http, output
    finally:
        server.send_signal(signal.SIGINT)
        rest, _ = server.communicate(timeout=60)
        output.append(rest)


@pytest.mark.req("WD-01", "P11-08")
def test_runserver_on_a_database_with_a_simulated_scale_serves_its_simulator_and_stops_it(plant) -> None:
    home, simulated, real = plant
    with serving(home) as (_server, _http, output):
        text = "".join(output)
        assert f"Scale simulator SCALE-SIM (Bench scale) on 127.0.0.1:{simulated}" in text
        peer = Peer(simulated)
        peer.sock.settimeout(10)  # S waits for the load to settle (a second, as on the booth screen)
        assert peer.ask("I4") == 'I4 A "SIM-SCALE-SIM"'
        assert peer.ask("XLOAD 512.34") == "XLOAD A"
        assert peer.ask("S") == "S S      512.3 g"  # its readability, 0.1 g, from the registration
        peer.sock.close()
        assert not answers(real)  # a scale registered as real gets no simulator
    assert not answers(simulated)  # stopped with the server


@pytest.mark.req("WD-01")
def test_a_port_already_taken_is_reported_and_the_server_still_serves(plant) -> None:
    home, simulated, _real = plant
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a scale's driver would
        holder.bind(("127.0.0.1", simulated))
        holder.listen()
        with serving(home) as (_server, http, output):
            health = socket.create_connection(("127.0.0.1", http), timeout=5)
            health.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            assert health.recv(64).startswith(b"HTTP/1.1 200")
            health.close()
    text = "".join(output)
    assert f"Scale simulator SCALE-SIM not started: 127.0.0.1:{simulated} is taken" in text, text
