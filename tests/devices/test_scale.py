"""The MT-SICS client against the simulator, over real TCP sockets."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal as D

import pytest

from batchline.devices import (
    AsyncMtSicsScale,
    Identity,
    MtSicsScale,
    Reading,
    ScaleDisconnected,
    ScaleError,
    ScaleNoAnswer,
    ScaleNotReady,
    ScaleOverload,
    ScaleProtocolError,
    ScaleRefusal,
    ScaleTimeout,
    ScaleUnderload,
    ScaleWrongDevice,
)
from batchline.devices.scale_sim import Fault, ScaleSimulator

from .conftest import STABLE_TIMEOUT

# -- weighing -------------------------------------------------------------------


@pytest.mark.req("WD-01", "DI-01", "DI-04")
def test_a_stable_load_is_read_with_the_raw_line_and_the_serial_of_the_scale(sim, scale) -> None:
    sim.place("512.34")
    reading = scale.stable_weight()
    assert (reading.value, reading.unit, reading.stable) == (D("512.34"), "g", True)
    assert reading.raw == "S S     512.34 g"
    assert reading.serial == "SIM-0001"


@pytest.mark.req("WD-01")
def test_right_after_a_load_change_the_reading_is_dynamic_then_stable(sim, scale) -> None:
    sim.settle_time = 0.3  # long enough to be sure to catch it moving on a busy machine
    sim.place("100")
    moving = scale.immediate_weight()
    assert not moving.stable and moving.raw.startswith("S D")
    assert D(0) <= moving.value < D(100)
    time.sleep(0.3)
    settled = scale.immediate_weight()
    assert (settled.value, settled.stable, settled.raw) == (D("100.00"), True, "S S     100.00 g")


@pytest.mark.req("WD-01")
def test_a_stable_weight_waits_for_the_load_to_settle(sim, scale) -> None:
    sim.place("250")
    assert scale.stable_weight().value == D("250.00")


@pytest.mark.req("WD-01", "DI-06")
def test_a_load_that_never_settles_gives_S_I_after_the_scale_timeout_never_a_weight(sim, scale) -> None:
    sim.place("250")
    sim.drift("0.5")
    started = time.monotonic()
    with pytest.raises(ScaleNotReady) as caught:
        scale.stable_weight()
    assert STABLE_TIMEOUT <= time.monotonic() - started < STABLE_TIMEOUT + 0.5
    assert (caught.value.raw, caught.value.code, caught.value.serial) == (
        "S I",
        "SCALE_NOT_READY",
        "SIM-0001",
    )
    assert "did not settle" in str(caught.value)
    # The immediate reading shows the creeping load, marked dynamic.
    assert not scale.immediate_weight().stable


@pytest.mark.req("WD-01")
def test_overload_and_underload_are_refusals_and_the_capacity_itself_is_a_weight(sim, scale) -> None:
    sim.place("6200.01")
    with pytest.raises(ScaleOverload) as over:
        scale.stable_weight()
    assert over.value.raw == "S +"
    with pytest.raises(ScaleOverload):
        scale.immediate_weight()

    sim.place("6200")
    assert scale.stable_weight().value == D("6200.00")

    sim.place("-200")  # the pan lifted off
    with pytest.raises(ScaleUnderload) as under:
        scale.stable_weight()
    assert under.value.raw == "S -"


# -- tare and zero ----------------------------------------------------------------


@pytest.mark.req("WD-01", "WD-06")
def test_tare_then_net_then_clear_tare(sim, scale) -> None:
    sim.place("250")  # the empty container
    tare = scale.tare()
    assert (tare.value, tare.raw, tare.command) == (D("250.00"), "T S     250.00 g", "T")
    assert scale.stable_weight().value == D("0.00")

    sim.add("100.5")  # product into the container
    assert scale.stable_weight().value == D("100.50")
    assert scale.tare_value().raw == "TA A     250.00 g"

    scale.clear_tare()
    assert scale.tare_value().value == D("0.00")
    assert scale.stable_weight().value == D("350.50")


@pytest.mark.req("WD-06")
def test_a_preset_tare_is_subtracted_and_one_in_another_unit_is_refused(sim, scale) -> None:
    sim.place("300")
    assert scale.preset_tare(D("12.5"), "g").raw == "TA A      12.50 g"
    assert scale.stable_weight().value == D("287.50")
    with pytest.raises(ScaleError) as caught:
        scale.preset_tare(D("12.5"), "kg")
    assert (caught.value.error, caught.value.raw) == ("EL", "TA L")


def test_taring_a_load_above_capacity_or_below_zero_is_refused(sim, scale) -> None:
    sim.place("7000")
    with pytest.raises(ScaleOverload):
        scale.tare()
    sim.place("-1")
    with pytest.raises(ScaleUnderload) as caught:
        scale.tare()
    assert caught.value.raw == "T -"


@pytest.mark.req("WD-01")
def test_zero_takes_a_small_load_as_zero_and_clears_the_tare(sim, scale) -> None:
    sim.place("0.37")  # dust on the pan
    scale.tare()
    scale.zero()
    assert scale.tare_value().value == D("0.00")
    assert scale.stable_weight().value == D("0.00")
    sim.add("50")
    assert scale.stable_weight().value == D("50.00")


def test_zero_outside_the_zero_range_is_refused(sim, scale) -> None:
    sim.place("1000")  # far above 2 % of 6200 g
    with pytest.raises(ScaleOverload) as caught:
        scale.zero()
    assert caught.value.raw == "Z +"
    assert scale.stable_weight().value == D("1000.00")


@pytest.mark.req("WD-01")
def test_reset_clears_the_tare_and_names_the_scale(sim, scale) -> None:
    sim.place("40")
    scale.tare()
    assert scale.reset() == "SIM-0001"
    assert scale.stable_weight().value == D("40.00")


# -- identity ------------------------------------------------------------------


@pytest.mark.req("DI-01", "P11-08")
def test_identify_reads_the_balance_data_and_the_serial_number(scale) -> None:
    assert scale.serial is None
    assert scale.identify() == Identity(serial="SIM-0001", model="Batchline SIM 6200.00 g")
    assert scale.serial == "SIM-0001"


@pytest.mark.req("P11-08", "DI-01")
def test_a_scale_other_than_the_registered_one_gives_no_reading(sim) -> None:
    wrong = MtSicsScale("127.0.0.1", sim.port, timeout=1.0, expected_serial="B123456789")
    with wrong as scale, pytest.raises(ScaleWrongDevice) as caught:
        scale.stable_weight()
    assert caught.value.serial == "SIM-0001"
    assert "not B123456789" in str(caught.value)
    with MtSicsScale("127.0.0.1", sim.port, timeout=1.0, expected_serial="SIM-0001") as scale:
        assert scale.stable_weight().serial == "SIM-0001"


# -- the protocol, as the scale speaks it ---------------------------------------------


@pytest.mark.req("DI-05")
@pytest.mark.parametrize("line", ["XYZ", "s", "SX", "S 5", "TAC 1", "I4 now", ""])
def test_unknown_commands_are_answered_ES(peer, line) -> None:
    assert peer.ask(line) == "ES"


def test_corrupted_characters_are_answered_ET_and_the_conversation_goes_on(peer) -> None:
    peer.sock.sendall(b"S\xff\r\n")
    assert peer.line() == "ET"
    peer.sock.sendall(b"S" * 300 + b"\r\n")
    assert peer.line() == "ET"
    assert peer.ask("SI") == "S S       0.00 g"


def test_the_simulator_answers_each_command_in_mt_sics(peer, sim) -> None:
    assert peer.ask("I4") == 'I4 A "SIM-0001"'
    assert peer.ask("I2") == 'I2 A "Batchline SIM 6200.00 g"'
    assert peer.ask("XLOAD 12.345") == "XLOAD A"
    assert peer.ask("S") == "S S      12.35 g"
    assert peer.ask("T") == "T S      12.35 g"
    assert peer.ask("TA") == "TA A      12.35 g"
    assert peer.ask("TAC") == "TAC A"
    assert peer.ask("Z") == "Z A"
    assert peer.ask("SI") == "S S       0.00 g"
    assert peer.ask("@") == 'I4 A "SIM-0001"'


def test_simulator_commands_refuse_bad_values(peer) -> None:
    assert peer.ask("XLOAD heavy") == "XLOAD L"
    assert peer.ask("XFAULT SMOKE") == "XFAULT L"
    assert peer.ask("XFAULT ET 2") == "XFAULT A"
    assert peer.ask("XFAULT NONE") == "XFAULT A"
    assert peer.ask("XSTATE") == 'XSTATE A "gross=0.00 net=0.00 tare=0.00 zero=0.00 stable=yes"'


@pytest.mark.req("WD-01")
def test_a_sir_stream_runs_until_at_cancels_it(sim, peer) -> None:
    sim.place("100")
    peer.send("SIR")
    stream = [peer.line() for _ in range(5)]
    assert all(line.startswith(("S D", "S S")) for line in stream)
    peer.send("@")
    while (line := peer.line()).startswith("S "):
        pass  # readings already on their way
    assert line == 'I4 A "SIM-0001"'
    assert peer.quiet_for(0.1)


def test_at_cancels_a_wait_for_stability_without_answering_it(sim, peer) -> None:
    sim.drift("1")
    peer.send("S")
    peer.send("@")
    assert peer.line() == 'I4 A "SIM-0001"'
    assert peer.quiet_for(STABLE_TIMEOUT + 0.05)


@pytest.mark.req("WD-01")
def test_the_client_streams_readings_and_passes_an_overload_as_an_item(sim, scale) -> None:
    sim.place("100")
    with contextlib.closing(scale.readings()) as readings:
        first = next(readings)
        sim.place("7000")
        items = [next(readings) for _ in range(40)]
    assert isinstance(first, Reading)
    assert any(isinstance(item, ScaleOverload) for item in items)
    # The stream is over and the conversation in step: the next answer is the answer.
    sim.place("10")
    assert scale.stable_weight().value == D("10.00")


# -- faults: never a weight, never a hang -------------------------------------------


@pytest.mark.req("WD-01", "DI-06")
@pytest.mark.parametrize(
    ("fault", "code"), [("ET", "SCALE_TRANSMISSION_ERROR"), ("EL", "SCALE_LOGICAL_ERROR")]
)
def test_injected_scale_errors_are_refusals_and_the_next_command_works(sim, scale, fault, code) -> None:
    scale.identify()
    sim.inject(fault)
    with pytest.raises(ScaleError) as caught:
        scale.stable_weight()
    assert (caught.value.error, caught.value.code, caught.value.raw) == (fault, code, fault)
    assert scale.stable_weight().value == D("0.00")


@pytest.mark.req("WD-01", "DI-05")
def test_an_unreadable_answer_is_a_protocol_error_and_the_connection_starts_afresh(sim, scale) -> None:
    scale.identify()
    sim.inject(Fault.GARBAGE)
    with pytest.raises(ScaleProtocolError) as caught:
        scale.stable_weight()
    assert caught.value.raw == "S S   12.3.4 g"
    assert scale.serial is None  # dropped: nothing more is read from that conversation
    assert scale.stable_weight().value == D("0.00")


@pytest.mark.req("DI-04")
def test_an_answer_arriving_in_pieces_is_read_whole(sim, scale) -> None:
    sim.place("512.34")
    scale.stable_weight()
    sim.inject(Fault.SPLIT, 3)
    assert scale.stable_weight().raw == "S S     512.34 g"
    assert scale.tare().raw == "T S     512.34 g"
    assert scale.tare_value().raw == "TA A     512.34 g"


@pytest.mark.req("S95-06", "WD-01")
def test_silence_is_a_timeout_in_bounded_time_and_the_next_call_reconnects(sim) -> None:
    with MtSicsScale("127.0.0.1", sim.port, timeout=0.3) as scale:
        scale.identify()
        sim.inject(Fault.SILENCE)
        started = time.monotonic()
        with pytest.raises(ScaleTimeout) as caught:
            scale.stable_weight()
        assert 0.3 <= time.monotonic() - started < 0.8
        assert isinstance(caught.value, ScaleNoAnswer)
        assert "did not answer S within 0.3 s" in str(caught.value)
        assert caught.value.raw is None
        assert scale.stable_weight().value == D("0.00")


@pytest.mark.req("S95-06", "WD-01")
def test_a_dropped_connection_is_a_clear_refusal_and_the_next_call_reconnects(sim, scale) -> None:
    scale.identify()
    sim.inject(Fault.DISCONNECT)
    with pytest.raises(ScaleDisconnected) as caught:
        scale.stable_weight()
    assert isinstance(caught.value, ScaleNoAnswer)
    assert "closed" in str(caught.value)
    assert scale.stable_weight().value == D("0.00")


@pytest.mark.req("S95-06")
def test_no_scale_at_the_address_is_a_clear_refusal() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with MtSicsScale("127.0.0.1", port, timeout=0.3) as scale, pytest.raises(ScaleDisconnected) as caught:
        scale.stable_weight()
    assert f"127.0.0.1:{port}" in str(caught.value)


@contextlib.contextmanager
def trickling_peer() -> Iterator[int]:
    """A peer that accepts and then sends one byte every 50 ms, never ending a line."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = server.accept()
        with conn:
            while not stop.wait(0.05):
                with contextlib.suppress(OSError):
                    conn.sendall(b"I")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


@pytest.mark.req("S95-06")
def test_a_peer_that_trickles_bytes_cannot_stretch_the_deadline() -> None:
    with trickling_peer() as port, MtSicsScale("127.0.0.1", port, timeout=0.3) as scale:
        started = time.monotonic()
        with pytest.raises(ScaleTimeout):
            scale.stable_weight()
        assert time.monotonic() - started < 0.8


def test_every_refusal_says_what_happened_in_words(sim, scale) -> None:
    sim.place("7000")
    with pytest.raises(ScaleRefusal) as caught:
        scale.stable_weight()
    assert str(caught.value).startswith("No weight was taken: the load is above the scale's range")


# -- the asyncio client ------------------------------------------------------------


@pytest.mark.req("WD-01", "DI-01", "DI-04")
def test_the_asyncio_client_reads_identifies_streams_and_times_out(sim: ScaleSimulator) -> None:
    async def session() -> None:
        async with AsyncMtSicsScale("127.0.0.1", sim.port, timeout=0.3) as scale:
            assert (await scale.identify()).serial == "SIM-0001"
            sim.place("75.5")
            reading = await scale.stable_weight()
            assert (reading.value, reading.raw, reading.serial) == (
                D("75.50"),
                "S S      75.50 g",
                "SIM-0001",
            )
            assert (await scale.tare()).value == D("75.50")
            assert (await scale.immediate_weight()).value == D("0.00")
            await scale.clear_tare()
            await scale.zero()
            assert (await scale.tare_value()).value == D("0.00")

            streamed = []
            async with contextlib.aclosing(scale.readings()) as readings:
                async for item in readings:
                    streamed.append(item)
                    if len(streamed) == 3:
                        break
            assert all(not isinstance(item, ScaleRefusal) for item in streamed)
            assert await scale.reset() == "SIM-0001"

            sim.inject(Fault.SILENCE)
            with pytest.raises(ScaleTimeout):
                await scale.stable_weight()
            sim.inject(Fault.DISCONNECT)
            with pytest.raises(ScaleDisconnected):
                await scale.stable_weight()
            assert (await scale.stable_weight()).value == D("0.00")

    # In a thread of its own: sync Playwright, earlier in the same worker, leaves
    # an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, session()).result(timeout=30)
