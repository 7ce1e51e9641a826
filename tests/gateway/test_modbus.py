"""The Modbus TCP adapter against a real pymodbus server started in the test."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.simulator import DataType, SimData, SimDevice

from batchline.gateway.protocols.modbus import ModbusAdapter, parse_address
from batchline.gateway.readings import Connection, Protocol, Quality, TagSpec
from tests.conftest import free_port, run_async
from tests.gateway.peers import Recorder, modbus_server, running

FAST = {"timeout_s": "0.5", "reconnect_delay_s": "0.1", "reconnect_max_delay_s": "0.5"}


def words(fmt: str, value: float) -> list[int]:
    """The registers a device holds for ``value`` packed big-endian as ``fmt``."""
    raw = struct.pack(">" + fmt, value)
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def granulator() -> SimDevice:
    """A legacy granulator controller: protocol addresses from 0, as the Modbus frame carries them."""
    return SimDevice(
        id=1,
        simdata=(
            [SimData(0, values=[True, False], datatype=DataType.BITS)],  # coils 1, 2
            [SimData(0, values=[False, True], datatype=DataType.BITS)],  # discrete inputs 10001, 10002
            [  # holding registers 40001 …
                SimData(0, values=-123, datatype=DataType.INT16),
                SimData(1, values=12.5, datatype=DataType.FLOAT32),
                SimData(3, values=-70000, datatype=DataType.INT32),
                SimData(5, values=list(reversed(words("f", 61.25))), datatype=DataType.REGISTERS),
                SimData(7, values=2345, datatype=DataType.UINT16),
                SimData(8, values=100, datatype=DataType.UINT16),
            ],
            [  # input registers 30001 …
                SimData(0, values=421, datatype=DataType.UINT16),
                SimData(1, values=-3.5, datatype=DataType.FLOAT32),
            ],
        ),
    )


def connection(port: int, tags: list[TagSpec]) -> Connection:
    return Connection(
        protocol=Protocol.MODBUS, endpoint=f"modbus://127.0.0.1:{port}/1", tags=tuple(tags), options=FAST
    )


def tag(address: str, **options: str) -> TagSpec:
    return TagSpec(unit="GRAN-01", tag=address, sampling_ms=20, options=options)


async def write(port: int, address: int, value: int) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, reconnect_delay=0)
    await client.connect()
    try:
        assert not (await client.write_register(address, value, device_id=1)).isError()
    finally:
        client.close()


@pytest.mark.req("S95-06", "DI-01", "DI-04")
def test_each_table_and_data_type_is_read_and_decoded_as_the_tag_says():
    tags = [
        tag("coil:1"),
        tag("coil:2"),
        tag("discrete:10002"),
        tag("holding:40001", type="int16"),
        tag("holding:40002", type="float32"),
        tag("holding:40004", type="int32"),
        tag("holding:40006", type="float32", word_order="little"),
        tag("holding:40008", type="uint16", scale="0.1"),
        tag("input:30001"),
        tag("input:300002", type="float32"),
    ]

    async def scenario() -> None:
        port = free_port()
        server = await modbus_server(port, granulator())
        adapter = ModbusAdapter(connection(port, tags))
        got = Recorder()
        try:
            async with running(adapter.run(got)):
                await got.until(lambda rs: len(rs) == len(tags))
                assert adapter.state.connected
                # Polling goes on; an unchanged register is not reported again.
                await write(port, 7, 2400)
                await got.until(lambda rs: len(rs) == len(tags) + 1)
        finally:
            await server.shutdown()
        values = {r.source.tag: r.value for r in got.readings[: len(tags)]}
        assert values == {
            "coil:1": True,
            "coil:2": False,
            "discrete:10002": True,
            "holding:40001": -123,
            "holding:40002": 12.5,
            "holding:40004": -70000,
            "holding:40006": 61.25,
            "holding:40008": pytest.approx(234.5),
            "input:30001": 421,
            "input:300002": -3.5,
        }
        changed = got.readings[-1]
        assert (changed.source.tag, changed.value) == ("holding:40008", pytest.approx(240.0))
        for reading in got.readings:
            assert reading.quality == Quality.GOOD and reading.status == ""
            assert reading.source_time is None  # Modbus sends no timestamp, and none is made up
            assert reading.source.endpoint == f"modbus://127.0.0.1:{port}/1"

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-06")
def test_the_deadband_holds_back_small_moves_measured_from_the_last_value_reported():
    async def scenario() -> None:
        port = free_port()
        server = await modbus_server(port, granulator())
        damped = TagSpec(unit="GRAN-01", tag="holding:40009", sampling_ms=20, deadband=5)
        raw = TagSpec(unit="GRAN-01", tag="holding:400009", sampling_ms=20)  # the same register, no deadband
        got = Recorder()
        try:
            async with running(ModbusAdapter(connection(port, [damped, raw])).run(got)):
                await got.until(lambda rs: len(rs) == 2)
                for value in (103, 104, 106, 108, 120):
                    await write(port, 8, value)
                    # Both tags are read in the same poll, the damped one first: once the raw tag
                    # shows the value, the damped tag has seen it too.
                    await got.until(
                        lambda rs, v=value: any(r.source.tag == raw.tag and r.value == v for r in rs)
                    )
        finally:
            await server.shutdown()
        assert [r.value for r in got.of(raw.tag)] == [100, 103, 104, 106, 108, 120]
        assert [r.value for r in got.of(damped.tag)] == [100, 106, 120]

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-06")
def test_a_modbus_exception_is_a_bad_reading_with_the_exception_and_the_other_tags_go_on():
    async def scenario() -> None:
        port = free_port()
        server = await modbus_server(port, granulator())
        tags = [tag("holding:40100"), tag("input:30001")]
        adapter = ModbusAdapter(connection(port, tags))
        got = Recorder()
        try:
            async with running(adapter.run(got)):
                await got.until(lambda rs: len(rs) == 2)
                assert adapter.state.connected
        finally:
            await server.shutdown()
        bad = got.of("holding:40100")
        assert [(r.quality, r.value, r.status) for r in bad] == [
            (Quality.BAD, None, "Modbus exception 02 ILLEGAL_ADDRESS")
        ]
        assert got.of("input:30001")[0].value == 421

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-06")
def test_a_server_that_goes_away_makes_every_tag_stale_and_values_return_when_it_is_back():
    async def scenario() -> None:
        port = free_port()
        server = await modbus_server(port, granulator())
        tags = [tag("holding:40001", type="int16"), tag("coil:1")]
        adapter = ModbusAdapter(connection(port, tags))
        got = Recorder()
        async with running(adapter.run(got)):
            await got.until(lambda rs: len(rs) == 2)
            await server.shutdown()
            await got.until(lambda rs: sum(r.quality == Quality.STALE for r in rs) == 2)
            assert not adapter.state.connected and adapter.state.last_error
            server = await modbus_server(port, granulator())
            try:
                await got.until(lambda rs: len(rs) == 6)
                assert adapter.state.connected and adapter.state.reconnects >= 1
            finally:
                await server.shutdown()
        for spec in tags:
            assert [r.quality for r in got.of(spec.tag)] == [Quality.GOOD, Quality.STALE, Quality.GOOD]
            stale = got.of(spec.tag)[1]
            assert stale.value is None and stale.status.startswith("connection lost")
        assert [r.value for r in got.of("holding:40001")] == [-123, None, -123]

    run_async(scenario())


@pytest.mark.req("S95-06")
def test_plant_references_map_to_zero_based_protocol_addresses():
    assert parse_address("coil:1") == ("coil", 0)
    assert parse_address("discrete:10001") == ("discrete", 0)
    assert parse_address("input:30010") == ("input", 9)
    assert parse_address("holding:40001") == ("holding", 0)
    assert parse_address("holding:465536") == ("holding", 65535)


@pytest.mark.req("S95-06")
@pytest.mark.parametrize(
    ("address", "options", "refusal"),
    [
        ("holding:30001", {}, "holding reference in 'holding:30001' must be written 40001"),
        ("holding:1", {}, "must be written 40001–49999 or 400001–465536"),
        ("register:40001", {}, "must start with coil:, discrete:, input: or holding:"),
        ("coil:0", {}, "between 1 and 65536"),
        ("coil:1", {"type": "int16"}, "its type can only be bool"),
        ("holding:40001", {"type": "float64"}, "registers are int16, uint16, int32, uint32 or float32"),
        ("holding:40001", {"scale": "ten"}, "must be a number"),
        ("holding:40001", {"word_order": "middle"}, "big or little"),
        ("holding:49999", {"type": "float32"}, None),
        ("holding:465536", {"type": "int32"}, "runs past the last address"),
    ],
)
def test_a_tag_written_wrongly_is_refused_with_a_sentence_when_configured(address, options, refusal):
    make = lambda: ModbusAdapter(connection(502, [tag(address, **options)]))  # noqa: E731
    if refusal is None:
        make()
    else:
        with pytest.raises(ValueError, match=refusal):
            make()


@pytest.mark.req("S95-06")
def test_an_endpoint_that_is_not_modbus_tcp_is_refused():
    with pytest.raises(ValueError, match=r"modbus://host\[:port\]\[/device\]"):
        ModbusAdapter(Connection(protocol=Protocol.MODBUS, endpoint="tcp://plc:502", tags=(tag("coil:1"),)))


@pytest.mark.req("S95-06", "DI-06")
def test_when_the_gateway_cannot_take_a_reading_the_adapter_stops_with_that_error():
    async def refuse(reading: object) -> None:
        raise RuntimeError("the store is full")

    async def scenario() -> None:
        port = free_port()
        server = await modbus_server(port, granulator())
        try:
            with pytest.raises(RuntimeError, match="the store is full"):
                await ModbusAdapter(connection(port, [tag("coil:1")])).run(refuse)
        finally:
            await server.shutdown()

    run_async(scenario())


@pytest.mark.req("S95-06")
def test_the_opcua_and_modbus_adapters_load_without_django():
    # The gateway is its own asyncio process (STACK.md): its adapters must not pull in the web tier.
    code = (
        "import sys, batchline.gateway.protocols.opcua, batchline.gateway.protocols.modbus, batchline.gateway.opcua_sim; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
