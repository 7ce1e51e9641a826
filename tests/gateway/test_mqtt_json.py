"""Plain JSON topics for simple devices, against the real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

import aiomqtt
import pytest

from batchline.gateway.protocols.mqtt_json import MqttJsonAdapter, Refused, read_payload
from batchline.gateway.readings import Connection, Protocol, Quality, TagSpec
from tests.conftest import run_async
from tests.gateway.mqtt_peers import BROKER, Readings, eventually, own_mosquitto, running, unique

PORT = BROKER[1]
T = dt.datetime(2026, 12, 7, 9, 30, 0, 250000, tzinfo=dt.UTC)


@pytest.mark.req("S95-06", "DI-03", "DI-04")
@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"21.4", (21.4, Quality.GOOD, None)),
        (b"true", (True, Quality.GOOD, None)),
        (b'{"value": 7}', (7, Quality.GOOD, None)),
        (b'{"value": 21.4, "timestamp": "2026-12-07T09:30:00.250Z"}', (21.4, Quality.GOOD, T)),
        (b'{"value": 21.4, "timestamp": "2026-12-07T10:30:00.250+01:00"}', (21.4, Quality.GOOD, T)),
        (b'{"value": 21.4, "timestamp": 1796635800250}', (21.4, Quality.GOOD, T)),
        (b'{"value": "RUNNING", "quality": "uncertain"}', ("RUNNING", Quality.UNCERTAIN, None)),
        (b'{"value": 21.4, "quality": "bad"}', (None, Quality.BAD, None)),
        (b'{"value": null, "timestamp": "2026-12-07T09:30:00.250Z"}', (None, Quality.BAD, T)),
    ],
)
def test_the_accepted_forms_of_a_message(payload: bytes, expected: tuple) -> None:
    assert read_payload(payload) == expected


@pytest.mark.req("S95-06", "DI-05")
@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"21,4", "not JSON"),
        (b'"21.4"', "must be a number or a boolean"),
        (b'{"temperature": 21.4}', "needs a 'value'"),
        (b'{"value": 21.4, "unit": "C"}', "needs a 'value'"),
        (b'{"value": 21.4, "timestamp": "2026-12-07T09:30:00"}', "names no time zone"),
        (b'{"value": 21.4, "timestamp": "yesterday"}', "not ISO 8601"),
        (b'{"value": 21.4, "quality": "fine"}', "none of good, uncertain, bad"),
        (b'{"value": [1, 2]}', "not a number"),
        (b'{"value": NaN}', "not a finite number"),
        (b'{"value": 1, "timestamp": 1e30}', "no moment a calendar holds"),
    ],
)
def test_a_malformed_message_is_refused_with_a_reason(payload: bytes, why: str) -> None:
    with pytest.raises(Refused, match=why):
        read_payload(payload)


def scale_connection(prefix: str, port: int = PORT, **options: str) -> Connection:
    return Connection(
        protocol=Protocol.MQTT_JSON,
        endpoint=f"mqtt://127.0.0.1:{port}",
        tags=(
            TagSpec(unit="HUM-01", tag=f"{prefix}/room/humidity", unit_of_measure="%"),
            TagSpec(unit="HUM-01", tag=f"{prefix}/room/temperature", unit_of_measure="°C"),
        ),
        options=options,
    )


@pytest.mark.req("S95-06", "DI-01", "DI-03", "DI-06")
def test_messages_on_the_tags_topics_become_readings_and_a_malformed_one_a_bad_reading() -> None:
    async def scenario() -> list:
        prefix = unique("json")
        readings = Readings()
        async with (
            running(MqttJsonAdapter(scale_connection(prefix)), readings),
            aiomqtt.Client("127.0.0.1", PORT, identifier=unique("device")) as device,
        ):
            await device.publish(
                f"{prefix}/room/humidity", b'{"value": 41.5, "timestamp": "2026-12-07T09:30:00.250Z"}'
            )
            await device.publish(f"{prefix}/room/temperature", b"21.4")
            await device.publish(f"{prefix}/room/temperature", b"twenty-one")
            await device.publish(f"{prefix}/room/pressure", b"1013")  # not a tag of Batchline's
            return await readings.count(3)

    humidity, temperature, refused = run_async(scenario())
    assert (humidity.value, humidity.quality, humidity.source_time, humidity.unit_of_measure) == (
        41.5,
        Quality.GOOD,
        T,
        "%",
    )
    assert humidity.source.unit == "HUM-01" and humidity.source.protocol == Protocol.MQTT_JSON
    assert humidity.source.endpoint == f"mqtt://127.0.0.1:{PORT}"
    assert (temperature.value, temperature.source_time) == (21.4, None)
    assert (refused.value, refused.quality) == (None, Quality.BAD)
    assert refused.status.startswith("refused: the payload is not JSON")


@pytest.mark.req("S95-06")
def test_a_retained_message_is_read_and_flagged_as_retained() -> None:
    async def scenario() -> list:
        prefix = unique("json")
        async with aiomqtt.Client("127.0.0.1", PORT, identifier=unique("device")) as device:
            await device.publish(f"{prefix}/room/humidity", b"40.0", qos=1, retain=True)
        readings = Readings()
        try:
            async with running(MqttJsonAdapter(scale_connection(prefix)), readings):
                return await readings.count(1)
        finally:
            async with aiomqtt.Client("127.0.0.1", PORT, identifier=unique("device")) as device:
                await device.publish(f"{prefix}/room/humidity", b"", qos=1, retain=True)  # clears it

    (kept,) = run_async(scenario())
    assert (kept.value, kept.flags) == (40.0, frozenset({"retained"}))


@pytest.mark.req("S95-06", "DI-06")
def test_losing_the_broker_makes_every_tag_stale_and_the_adapter_resubscribes() -> None:
    async def scenario(broker) -> tuple:
        prefix = unique("json")
        readings = Readings()
        adapter = MqttJsonAdapter(scale_connection(prefix, port=broker.port, reconnect_min_ms="100"))
        async with running(adapter, readings):
            with contextlib.suppress(aiomqtt.MqttError):
                async with aiomqtt.Client("127.0.0.1", broker.port, identifier=unique("device")) as device:
                    await device.publish(f"{prefix}/room/humidity", b"41.0")
                    await readings.count(1)
                    broker.kill()
                    stale = await readings.count(2, Quality.STALE)
            broker.start()
            await eventually(lambda: adapter.state.connected)
            async with aiomqtt.Client("127.0.0.1", broker.port, identifier=unique("device")) as device:
                await device.publish(f"{prefix}/room/humidity", b"42.0")
                back = (await readings.count(4))[3]
        return stale, back

    with own_mosquitto() as broker:
        stale, back = run_async(scenario(broker))
    assert {(r.source.tag.rsplit("/", 1)[1], r.value, r.status) for r in stale} == {
        ("humidity", None, "broker connection lost"),
        ("temperature", None, "broker connection lost"),
    }
    assert (back.value, back.quality) == (42.0, Quality.GOOD)


@pytest.mark.req("S95-06", "DI-06")
def test_when_the_gateway_cannot_take_a_reading_the_adapter_stops_with_that_error() -> None:
    async def refuse(reading: object) -> None:
        raise RuntimeError("the store is full")

    async def scenario() -> None:
        prefix = unique("json")
        adapter = MqttJsonAdapter(scale_connection(prefix))
        task = asyncio.create_task(adapter.run(refuse))
        await eventually(lambda: adapter.state.connected)
        async with aiomqtt.Client("127.0.0.1", PORT, identifier=unique("device")) as device:
            await device.publish(f"{prefix}/room/humidity", b"41.0")
            with pytest.raises(RuntimeError, match="the store is full"):
                await asyncio.wait_for(task, 10)

    run_async(scenario())


@pytest.mark.req("S95-06")
@pytest.mark.parametrize(
    ("endpoint", "topics", "why"),
    [
        ("tcp://127.0.0.1:1883", ("a/b",), "not an MQTT broker"),
        ("mqtt://127.0.0.1:1883/room", ("a/b",), "not an MQTT broker"),
        ("mqtt://127.0.0.1:1883", ("room/+/humidity",), "without wildcards"),
        ("mqtt://127.0.0.1:1883", (), "names no tag"),
    ],
)
def test_a_connection_written_wrongly_is_refused_with_a_sentence(
    endpoint: str, topics: tuple, why: str
) -> None:
    tags = tuple(TagSpec(unit="HUM-01", tag=t) for t in topics)
    with pytest.raises(ValueError, match=why):
        MqttJsonAdapter(Connection(protocol=Protocol.MQTT_JSON, endpoint=endpoint, tags=tags))
