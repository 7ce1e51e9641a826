"""The gateway bench's live parts in miniature: their peers start, and their counts of what was sent
and what was stored agree (no figure is judged here; benchmarks are not tests)."""

from __future__ import annotations

import argparse

import pytest
from bench.gateway_live import opcua_bare, opcua_gateway, p99, sparkplug_bare, sparkplug_gateway
from bench.gateway_peers import PrivateMosquitto, free_port

from tests.conftest import run_async


@pytest.fixture
def async_unsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    # The bench counts rows from its event loop's thread, once the gateway has stopped.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.mark.usefixtures("live_db", "async_unsafe")
@pytest.mark.req("S95-06")
def test_the_opcua_bench_counts_every_change_the_server_wrote_and_the_gateway_stored() -> None:
    for phase in (opcua_bare, opcua_gateway):
        port = free_port()
        figures = run_async(phase(f"opc.tcp://127.0.0.1:{port}/bench/", 20, 200.0, 1.0, port))
        assert figures["written"] == figures["changes"] == 200
        assert figures["lost"] == 0 and figures["p99_s"] is not None
    assert figures["rows"] == 200 and figures["duplicated"] == 0


@pytest.mark.usefixtures("live_db", "async_unsafe")
@pytest.mark.req("S95-06")
def test_the_sparkplug_bench_counts_every_message_decoded_and_every_value_stored() -> None:
    args = argparse.Namespace(messages=60, devices=3, metrics=2)
    broker = PrivateMosquitto()
    broker.start()
    try:
        bare = run_async(sparkplug_bare(broker.port, args))
        stored = run_async(sparkplug_gateway(broker.port, args))
    finally:
        broker.close()
    assert bare["messages"] == 60
    assert (stored["rows"], stored["lost"], stored["duplicated"]) == (120, 0, 0)


def test_p99_is_the_value_below_which_99_in_100_fall() -> None:
    assert p99([]) is None
    assert p99([float(i) for i in range(1, 101)]) == 100.0
    assert p99([float(i) for i in range(1, 1001)]) == 991.0
