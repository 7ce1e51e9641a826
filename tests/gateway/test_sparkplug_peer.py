"""Batchline's Sparkplug host against an edge node of another implementation (pysparkplug), so the
host is not only tested against the edge node written beside it.

pysparkplug pins paho-mqtt 1.x, which Batchline's aiomqtt cannot share, so it lives in a virtual
environment of its own: ``./dev test`` makes ``.venv-pysparkplug`` at the repository's root from
tests/gateway/pysparkplug-requirements.txt; BATCHLINE_SPARKPLUG_PEER_PYTHON names another.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from batchline.gateway.protocols.sparkplug import SparkplugHost
from batchline.gateway.readings import Connection, Protocol, Quality, TagSpec
from tests.conftest import CI, run_async
from tests.gateway.mqtt_peers import BROKER, WAIT, Readings, running, unique

ROOT = Path(__file__).resolve().parents[2]
PEER = Path(__file__).with_name("pysparkplug_peer.py")
PEER_PYTHON = Path(
    os.environ.get("BATCHLINE_SPARKPLUG_PEER_PYTHON") or ROOT / ".venv-pysparkplug" / "bin" / "python"
)


@pytest.fixture
def peer_python() -> Path:
    if not PEER_PYTHON.exists():
        message = f"The independent Sparkplug peer needs pysparkplug in {PEER_PYTHON} (see this module's docstring)."
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    return PEER_PYTHON


@pytest.mark.req("S95-06", "DI-01", "DI-06")
def test_a_pysparkplug_edge_node_is_read_and_its_death_makes_its_tags_stale(peer_python: Path) -> None:
    async def scenario() -> Readings:
        group = unique("g")
        node = {"node": f"{group}/PRESS-EDGE"}
        device = {"node": f"{group}/PRESS-EDGE/Press"}
        connection = Connection(
            protocol=Protocol.SPARKPLUG,
            endpoint=f"mqtt://127.0.0.1:{BROKER[1]}",
            tags=(
                TagSpec(unit="TAB-01", tag="Speed", unit_of_measure="rpm", options=node),
                TagSpec(unit="TAB-01", tag="Force", unit_of_measure="kN", options=device),
                TagSpec(unit="TAB-01", tag="Running", options=device),
            ),
            options={"host_id": unique("host")},
        )
        readings = Readings()
        async with running(SparkplugHost(connection), readings):
            peer = await asyncio.create_subprocess_exec(
                str(peer_python),
                str(PEER),
                str(BROKER[1]),
                group,
                "PRESS-EDGE",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert peer.stdin is not None and peer.stdout is not None
            try:
                assert await asyncio.wait_for(peer.stdout.readline(), WAIT) == b"born\n"
                await readings.count(3)
                peer.stdin.write(b"data\n")
                await peer.stdin.drain()
                await readings.count(5)
                # Killed, the peer sends no NDEATH of its own: the broker delivers its will, whose
                # bdSeq is the one its NBIRTH carried.
                peer.kill()
                await readings.count(3, Quality.STALE)
            finally:
                if peer.returncode is None:
                    peer.kill()
                await peer.wait()
        return readings

    readings = run_async(scenario())
    values = [(r.source.tag, r.value, r.quality) for r in readings.seen]
    assert sorted(values[:3]) == [
        ("Force", 8.25, Quality.GOOD),
        ("Running", True, Quality.GOOD),
        ("Speed", 12.5, Quality.GOOD),
    ]
    assert values[3:5] == [("Speed", 13.0, Quality.GOOD), ("Force", 9.5, Quality.GOOD)]
    assert {(tag, quality) for tag, _, quality in values[5:]} == {
        ("Speed", Quality.STALE),
        ("Force", Quality.STALE),
        ("Running", Quality.STALE),
    }
    assert all(r.source_time is not None for r in readings.seen[:5])
