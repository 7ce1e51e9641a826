"""The OPC UA adapter against a real asyncua server started in the test."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from asyncua import ua

from batchline.gateway.protocols.opcua import OpcUaAdapter
from batchline.gateway.readings import Connection, Protocol, Quality, TagSpec
from tests.conftest import free_port, run_async
from tests.gateway.peers import Recorder, node_tag, opcua_server, running

FAST = {"watchdog_s": "0.2", "reconnect_delay_s": "0.1", "reconnect_max_delay_s": "0.5"}


def connection(port: int, tags: list[TagSpec], **options: str) -> Connection:
    return Connection(
        protocol=Protocol.OPCUA,
        endpoint=f"opc.tcp://127.0.0.1:{port}/batchline/",
        tags=tuple(tags),
        options={**FAST, **options},
    )


def data_value(
    value: float, *, code: int = ua.StatusCodes.Good, at: dt.datetime | None = None
) -> ua.DataValue:
    return ua.DataValue(
        ua.Variant(value, ua.VariantType.Double),
        StatusCode=ua.StatusCode(code),
        SourceTimestamp=at or dt.datetime.now(dt.UTC),
    )


@pytest.mark.req("S95-06", "DI-01", "DI-04", "DI-07")
def test_a_value_arrives_with_its_source_its_device_timestamp_and_the_gateways():
    async def scenario() -> None:
        port = free_port()
        server, nodes = await opcua_server(port, {"ImpellerPower": 0.0})
        tag = node_tag(nodes["ImpellerPower"])
        adapter = OpcUaAdapter(
            connection(port, [TagSpec(unit="GRAN-01", tag=tag, unit_of_measure="kW", sampling_ms=50)])
        )
        got = Recorder()
        try:
            async with running(adapter.run(got)):
                await got.until(lambda rs: any(r.value == 0.0 for r in rs))
                measured = dt.datetime(2025, 3, 4, 10, 30, 15, 123456, tzinfo=dt.UTC)
                await nodes["ImpellerPower"].write_value(data_value(7.25, at=measured))
                await got.until(lambda rs: any(r.value == 7.25 for r in rs))
                assert adapter.state.connected and adapter.state.received == len(got.readings)
        finally:
            await server.stop()
        reading = next(r for r in got.readings if r.value == 7.25)
        assert reading.quality == Quality.GOOD
        assert reading.status == "Good"
        assert reading.source_time == measured  # the device's clock, to the microsecond
        assert reading.gateway_time > measured  # the gateway's own receipt time beside it
        assert reading.unit_of_measure == "kW"
        assert (reading.source.unit, reading.source.protocol, reading.source.tag) == ("GRAN-01", "opcua", tag)
        assert reading.source.endpoint == f"opc.tcp://127.0.0.1:{port}/batchline/"
        assert not adapter.state.connected  # cancelled: the session is closed

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-06")
def test_the_servers_deadband_filter_holds_back_changes_smaller_than_the_tags_deadband():
    async def scenario() -> None:
        port = free_port()
        server, nodes = await opcua_server(port, {"InletTemp": 60.0, "Raw": 60.0})
        damped, raw = node_tag(nodes["InletTemp"]), node_tag(nodes["Raw"])
        adapter = OpcUaAdapter(
            connection(
                port,
                [
                    TagSpec(unit="DRY-01", tag=damped, sampling_ms=50, deadband=1.0),
                    TagSpec(unit="DRY-01", tag=raw, sampling_ms=50),
                ],
            )
        )
        got = Recorder()
        try:
            async with running(adapter.run(got)):
                await got.until(lambda rs: len(rs) == 2)
                for value in (60.5, 59.6, 62.0):
                    await nodes["InletTemp"].write_value(data_value(value))
                    await nodes["Raw"].write_value(data_value(value))
                await got.until(lambda rs: any(r.source.tag == damped and r.value == 62.0 for r in rs))
                await got.until(lambda rs: any(r.source.tag == raw and r.value == 62.0 for r in rs))
        finally:
            await server.stop()
        # Notifications of one subscription arrive in order, so the small steps would have come first.
        assert [r.value for r in got.of(damped)] == [60.0, 62.0]
        assert [r.value for r in got.of(raw)] == [60.0, 60.5, 59.6, 62.0]

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-05", "DI-06")
def test_a_bad_value_is_recorded_without_its_value_and_an_uncertain_one_keeps_value_and_flag():
    async def scenario() -> None:
        port = free_port()
        server, nodes = await opcua_server(port, {"Moisture": 4.0})
        tag = node_tag(nodes["Moisture"])
        adapter = OpcUaAdapter(connection(port, [TagSpec(unit="DRY-01", tag=tag, sampling_ms=50)]))
        got = Recorder()
        try:
            async with running(adapter.run(got)):
                await got.until(lambda rs: len(rs) == 1)
                await nodes["Moisture"].write_value(data_value(99.0, code=ua.StatusCodes.BadSensorFailure))
                await nodes["Moisture"].write_value(
                    data_value(3.8, code=ua.StatusCodes.UncertainLastUsableValue)
                )
                await nodes["Moisture"].write_value(data_value(3.7))
                await got.until(lambda rs: any(r.value == 3.7 for r in rs))
        finally:
            await server.stop()
        _, bad, uncertain, good = got.readings
        assert (bad.quality, bad.value, bad.status) == (Quality.BAD, None, "BadSensorFailure")
        assert bad.source_time is not None  # a Bad value is still an observation, kept with its time
        assert (uncertain.quality, uncertain.value, uncertain.status) == (
            Quality.UNCERTAIN,
            3.8,
            "UncertainLastUsableValue",
        )
        assert (good.quality, good.value) == (Quality.GOOD, 3.7)

    run_async(scenario())


@pytest.mark.req("S95-06")
def test_many_tags_are_split_into_subscriptions_of_bounded_size_per_sampling_interval():
    async def scenario() -> None:
        port = free_port()
        server, nodes = await opcua_server(port, {f"T{i:03}": float(i) for i in range(250)})
        tags = [
            TagSpec(unit="PRESS-01", tag=node_tag(node), sampling_ms=100 if i < 150 else 250)
            for i, node in enumerate(nodes.values())
        ]
        adapter = OpcUaAdapter(connection(port, tags, max_items_per_subscription="100"))
        got = Recorder()
        try:
            async with running(adapter.run(got)):
                await got.until(lambda rs: len({r.source.tag for r in rs}) == 250)
                subscriptions = server.iserver.subscription_service.subscriptions.values()
                sizes = sorted(
                    (s.data.RevisedPublishingInterval, len(s.monitored_item_srv._monitored_items))
                    for s in subscriptions
                )
        finally:
            await server.stop()
        assert sizes == [(100.0, 50), (100.0, 100), (250.0, 100)]
        assert {r.value for r in got.readings} == {float(i) for i in range(250)}
        assert all(r.quality == Quality.GOOD for r in got.readings)

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-06")
def test_a_server_restart_makes_every_tag_stale_then_resubscribes_and_values_flow_again():
    async def scenario() -> None:
        port = free_port()
        names = {"ImpellerPower": 5.0, "ChopperSpeed": 1500.0}
        server, nodes = await opcua_server(port, names)
        tags = [TagSpec(unit="GRAN-01", tag=node_tag(n), sampling_ms=50) for n in nodes.values()]
        adapter = OpcUaAdapter(connection(port, tags))
        got = Recorder()
        async with running(adapter.run(got)):
            await got.until(lambda rs: len(rs) == 2)
            await server.stop()
            await got.until(lambda rs: sum(r.quality == Quality.STALE for r in rs) == 2)
            assert not adapter.state.connected
            assert adapter.state.last_error

            server, nodes = await opcua_server(port, {"ImpellerPower": 6.5, "ChopperSpeed": 1450.0})
            await got.until(lambda rs: {r.value for r in rs[4:]} == {6.5, 1450.0})
            await nodes["ImpellerPower"].write_value(data_value(7.0))
            await got.until(lambda rs: rs[-1].value == 7.0)
            assert adapter.state.connected and adapter.state.reconnects == 1
        await server.stop()
        # Both sessions' clients were closed, not left retrying in the background (the server's own
        # session and subscription loops may still be winding down).
        left = [t.get_coro().cr_code.co_filename for t in asyncio.all_tasks()]  # type: ignore[union-attr]
        assert not [f for f in left if "asyncua/client" in f or "gateway/protocols" in f]
        for spec in tags:
            assert [r.quality for r in got.of(spec.tag)][:3] == [Quality.GOOD, Quality.STALE, Quality.GOOD]
            stale = got.of(spec.tag)[1]
            assert stale.value is None and stale.source_time is None and "connection lost" in stale.status
        assert [r.value for r in got.of(tags[0].tag)] == [5.0, None, 6.5, 7.0]
        assert len({r.key for r in got.readings}) == len(got.readings)  # nothing seen twice

    run_async(scenario())


@pytest.mark.req("S95-06")
def test_an_unknown_node_is_reported_bad_with_the_servers_reason_and_the_other_tags_still_run():
    async def scenario() -> None:
        port = free_port()
        server, nodes = await opcua_server(port, {"Known": 1.0})
        tags = [
            TagSpec(unit="GRAN-01", tag=node_tag(nodes["Known"])),
            TagSpec(unit="GRAN-01", tag="ns=2;s=NoSuchTag"),
        ]
        got = Recorder()
        try:
            async with running(OpcUaAdapter(connection(port, tags)).run(got)):
                await got.until(lambda rs: len(rs) == 2)
        finally:
            await server.stop()
        missing = got.of("ns=2;s=NoSuchTag")[0]
        assert (missing.quality, missing.value, missing.status) == (Quality.BAD, None, "BadNodeIdUnknown")
        assert got.of(tags[0].tag)[0].value == 1.0

    run_async(scenario())


@pytest.mark.req("S95-06")
def test_a_tag_that_is_no_node_id_is_refused_when_configured():
    tags = (TagSpec(unit="GRAN-01", tag="Granulator/ImpellerPower"),)
    with pytest.raises(ValueError, match="not an OPC UA node id"):
        OpcUaAdapter(Connection(protocol=Protocol.OPCUA, endpoint="opc.tcp://plc:4840", tags=tags))


@pytest.mark.req("S95-06", "DI-06")
def test_when_the_gateway_cannot_take_a_reading_the_adapter_stops_with_that_error():
    async def refuse(reading: object) -> None:
        raise RuntimeError("the store is full")

    async def scenario() -> None:
        port = free_port()
        server, nodes = await opcua_server(port, {"Known": 1.0})
        try:
            tags = [TagSpec(unit="GRAN-01", tag=node_tag(nodes["Known"]))]
            with pytest.raises(RuntimeError, match="the store is full"):
                await OpcUaAdapter(connection(port, tags)).run(refuse)
        finally:
            await server.stop()
        left = [t.get_coro().cr_code.co_filename for t in asyncio.all_tasks()]  # type: ignore[union-attr]
        assert not [f for f in left if "asyncua/client" in f or "gateway/protocols" in f]

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-06")
def test_a_dropped_connection_gives_stale_then_the_unchanged_value_again_under_the_same_key():
    async def scenario() -> None:
        port = free_port()
        server, nodes = await opcua_server(port, {"InletTemp": 60.0})
        tag = node_tag(nodes["InletTemp"])
        adapter = OpcUaAdapter(connection(port, [TagSpec(unit="DRY-01", tag=tag, sampling_ms=50)]))
        got = Recorder()
        try:
            async with running(adapter.run(got)):
                await got.until(lambda rs: len(rs) == 1)
                # The network drops the session; the server itself stays up with its value unchanged.
                for transport in list(server.iserver.asyncio_transports):
                    transport.close()
                await got.until(lambda rs: len(rs) == 3)
                assert adapter.state.reconnects == 1
        finally:
            await server.stop()
        before, stale, again = got.readings
        assert (stale.quality, again.quality) == (Quality.STALE, Quality.GOOD)
        # The same observation, sent again by the new subscription: the store will keep it once.
        assert again.key == before.key and again.source_time == before.source_time

    run_async(scenario())


@pytest.mark.req("S95-06")
def test_a_server_not_there_at_start_is_stale_until_it_comes_up():
    async def scenario() -> None:
        port = free_port()
        tag = "ns=2;s=ImpellerPower"
        adapter = OpcUaAdapter(connection(port, [TagSpec(unit="GRAN-01", tag=tag, sampling_ms=50)]))
        got = Recorder()
        async with running(adapter.run(got)):
            await got.until(lambda rs: len(rs) == 1)
            assert got.readings[0].quality == Quality.STALE
            assert "cannot connect" in got.readings[0].status
            server, _ = await opcua_server(port, {"ImpellerPower": 3.0})
            try:
                await got.until(lambda rs: len(rs) == 2)
            finally:
                await server.stop()
        assert got.readings[1].value == 3.0 and adapter.state.reconnects == 0

    run_async(scenario())
