"""The Sparkplug B host against the real Mosquitto and an edge node written for the tests.

One test per host-side rule of the Sparkplug 3.0.0 specification that the gateway relies on; the
rule's section is named in each docstring.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap

import aiomqtt
import pytest

from batchline.gateway.protocols.sparkplug import SparkplugHost
from batchline.gateway.protocols.sparkplug import sparkplug_b_pb2 as pb
from batchline.gateway.readings import Connection, Protocol, Quality, TagSpec
from tests.conftest import run_async
from tests.gateway.mqtt_peers import (
    BROKER,
    EdgeNode,
    Readings,
    at,
    eventually,
    first,
    metric,
    own_mosquitto,
    retained,
    running,
    unique,
)

PORT = BROKER[1]


def dryer_connection(group: str, port: int = PORT, **options: str) -> Connection:
    """Node DRY-EDGE's own temperature and offset, and its device Dryer's inlet temperature, fan
    state and recipe name, as a dryer's master data would configure them."""
    node = {"node": f"{group}/DRY-EDGE"}
    device = {"node": f"{group}/DRY-EDGE/Dryer"}
    return Connection(
        protocol=Protocol.SPARKPLUG,
        endpoint=f"mqtt://127.0.0.1:{port}",
        tags=(
            TagSpec(unit="DRY-01", tag="Cabinet temperature", unit_of_measure="°C", options=node),
            TagSpec(unit="DRY-01", tag="Offset", unit_of_measure="K", options=node),
            TagSpec(unit="DRY-01", tag="Inlet temperature", unit_of_measure="°C", options=device),
            TagSpec(unit="DRY-01", tag="Fan running", options=device),
            TagSpec(unit="DRY-01", tag="Product", options=device),
        ),
        options={"host_id": unique("host"), **options},
    )


NODE_BIRTH = (
    metric("Cabinet temperature", 24.5, pb.Double, alias=1, when=at(0)),
    metric("Offset", -3, pb.Int8, alias=2, when=at(0)),
    metric("Uptime", 7, pb.UInt32, alias=3, when=at(0)),  # born, but no tag of Batchline's
)
DEVICE_BIRTH = (
    metric("Inlet temperature", 61.2, pb.Float, alias=10, when=at(0)),
    metric("Fan running", True, pb.Boolean, alias=11, when=at(0)),
    metric("Product", "Granulate A", pb.String, alias=12, when=at(0)),
)


async def born(edge: EdgeNode, readings: Readings) -> None:
    await edge.nbirth(*NODE_BIRTH)
    await edge.send("DBIRTH", *DEVICE_BIRTH, device="Dryer")
    await readings.count(5)


def by_tag(readings: list) -> dict:
    return {r.source.tag: r for r in readings}


@pytest.mark.req("S95-06", "DI-01", "DI-03", "DI-04")
def test_births_and_data_become_readings_with_source_value_device_time_and_quality() -> None:
    async def scenario() -> None:
        group = unique("g")
        readings = Readings()
        async with (
            running(SparkplugHost(dryer_connection(group)), readings),
            EdgeNode(PORT, group, "DRY-EDGE").online() as edge,
        ):
            await edge.nbirth(*NODE_BIRTH)
            await edge.send("DBIRTH", *DEVICE_BIRTH, device="Dryer")
            births = by_tag(await readings.count(5))
            await edge.send("NDATA", metric("Cabinet temperature", 25.0, when=at(5), birth=False))
            await edge.send(
                "DDATA", metric("Inlet temperature", 62.5, pb.Float, when=at(6), birth=False), device="Dryer"
            )
            later = (await readings.count(7))[5:]

        assert {tag: r.value for tag, r in births.items()} == {
            "Cabinet temperature": 24.5,
            "Offset": -3,  # an Int8 travels in an unsigned field
            "Inlet temperature": 61.2,  # a Float, read as the device meant it
            "Fan running": True,
            "Product": "Granulate A",
        }
        inlet = births["Inlet temperature"]
        assert inlet.source.unit == "DRY-01"
        assert inlet.source.protocol == Protocol.SPARKPLUG
        assert inlet.source.endpoint == f"mqtt://127.0.0.1:{PORT}/{group}/DRY-EDGE/Dryer"
        assert births["Offset"].source.endpoint == f"mqtt://127.0.0.1:{PORT}/{group}/DRY-EDGE"
        assert inlet.unit_of_measure == "°C"
        assert all(r.quality == Quality.GOOD and r.source_time == at(0) for r in births.values())
        assert [(r.source.tag, r.value, r.source_time) for r in later] == [
            ("Cabinet temperature", 25.0, at(5)),
            ("Inlet temperature", 62.5, at(6)),
        ]
        # The same observation has one key; another observation of the tag, another.
        assert births["Cabinet temperature"].key != later[0].key

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-04")
def test_data_carrying_only_an_alias_is_read_as_the_metric_its_birth_named() -> None:
    """'Payloads: alias': NDATA and DDATA may carry the alias alone, defined by the birth."""

    async def scenario() -> None:
        group = unique("g")
        readings = Readings()
        async with (
            running(SparkplugHost(dryer_connection(group)), readings),
            EdgeNode(PORT, group, "DRY-EDGE").online() as edge,
        ):
            await born(edge, readings)
            await edge.send("NDATA", metric(alias=2, value=-7, datatype=pb.Int8, when=at(1), birth=False))
            await edge.send(
                "DDATA",
                metric(alias=11, value=False, datatype=pb.Boolean, when=at(2), birth=False),
                metric(alias=12, value="Granulate B", datatype=pb.String, when=at(2), birth=False),
                device="Dryer",
            )
            data = (await readings.count(8))[5:]
        assert [(r.source.tag, r.value) for r in data] == [
            ("Offset", -7),
            ("Fan running", False),
            ("Product", "Granulate B"),
        ]

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-06")
def test_an_ndeath_with_another_sessions_bdseq_is_ignored() -> None:
    """'Edge Node Session Establishment': the will of the node's previous MQTT session (bdSeq 4),
    delivered after its new NBIRTH (bdSeq 5), must not kill the new session."""

    async def scenario() -> None:
        group = unique("g")
        readings = Readings()
        async with (
            running(SparkplugHost(dryer_connection(group)), readings),
            EdgeNode(PORT, group, "DRY-EDGE", bdseq=5).online() as edge,
        ):
            await born(edge, readings)
            await edge.ndeath(bdseq=4)
            await edge.send("NDATA", metric("Cabinet temperature", 26.0, when=at(3), birth=False))
            after = (await readings.count(6))[5:]
            await edge.ndeath(bdseq=5)
            await readings.count(5, Quality.STALE)
        assert [(r.source.tag, r.quality, r.value) for r in after] == [
            ("Cabinet temperature", Quality.GOOD, 26.0)
        ]
        assert len(readings.seen) == 6 + 5  # no STALE came between

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-06")
def test_the_will_of_the_nodes_previous_connection_arriving_after_its_new_nbirth_is_ignored() -> None:
    """The NBIRTH-right-after-NDEATH race, with the broker's own will: the node comes back on a new
    connection (bdSeq 5) before the broker has noticed its old one (bdSeq 4) is gone; the will the
    broker then delivers must not make the new session's metrics STALE."""

    async def scenario() -> None:
        group = unique("g")
        readings = Readings()
        old, new = EdgeNode(PORT, group, "DRY-EDGE", bdseq=4), EdgeNode(PORT, group, "DRY-EDGE", bdseq=5)
        async with (
            running(SparkplugHost(dryer_connection(group)), readings),
            aiomqtt.Client("127.0.0.1", PORT, identifier=unique("watch")) as watcher,
        ):
            await watcher.subscribe(old.topic("NDEATH"), qos=1)
            with contextlib.suppress(aiomqtt.MqttError):
                async with old.online():
                    await old.nbirth(*NODE_BIRTH)
                    await readings.count(2)
                    async with new.online():
                        await new.nbirth(*NODE_BIRTH[:1], seq=0)
                        await readings.count(3)
                        old.drop()
                        will = pb.Payload()
                        will.ParseFromString(await first(watcher))
                        await new.send("NDATA", metric(alias=1, value=26.5, when=at(4), birth=False))
                        await readings.count(4)
        assert [(m.name, m.long_value) for m in will.metrics] == [("bdSeq", 4)]
        assert [(r.source.tag, r.value, r.quality) for r in readings.seen[2:]] == [
            ("Cabinet temperature", 24.5, Quality.GOOD),  # the new session's birth
            ("Cabinet temperature", 26.5, Quality.GOOD),  # and its data: no STALE between
        ]

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-06")
def test_an_ndeath_makes_every_metric_of_the_node_and_its_devices_stale() -> None:
    """'Edge Node Session Termination': all metrics of the NBIRTH and of every DBIRTH are STALE,
    at the host's time of receipt."""

    async def scenario() -> None:
        group = unique("g")
        readings = Readings()
        async with (
            running(SparkplugHost(dryer_connection(group)), readings),
            EdgeNode(PORT, group, "DRY-EDGE", bdseq=3).online() as edge,
        ):
            await born(edge, readings)
            await edge.ndeath(bdseq=3)
            stale = await readings.count(5, Quality.STALE)
        assert {r.source.tag for r in stale} == {
            "Cabinet temperature",
            "Offset",
            "Inlet temperature",
            "Fan running",
            "Product",
        }
        assert all(r.value is None and r.status == "NDEATH" and r.source_time is None for r in stale)

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-06")
def test_a_ddeath_makes_only_that_devices_metrics_stale_at_the_ddeaths_time() -> None:
    """'Device Session Termination': the DDEATH's own timestamp is the time the metrics went stale."""

    async def scenario() -> None:
        group = unique("g")
        readings = Readings()
        async with (
            running(SparkplugHost(dryer_connection(group)), readings),
            EdgeNode(PORT, group, "DRY-EDGE").online() as edge,
        ):
            await born(edge, readings)
            await edge.send("DDEATH", device="Dryer", when=at(9))
            stale = await readings.count(3, Quality.STALE)
            await edge.send("NDATA", metric(alias=1, value=23.0, when=at(10), birth=False))
            await readings.count(9)
        assert {r.source.tag for r in stale} == {"Inlet temperature", "Fan running", "Product"}
        assert all(r.source_time == at(9) and r.status == "DDEATH" for r in stale)
        assert readings.seen[-1].source.tag == "Cabinet temperature"  # the node lives on

    run_async(scenario())


@pytest.mark.req("DI-07", "DI-06")
def test_messages_out_of_seq_order_are_put_back_in_order_within_the_reorder_timeout() -> None:
    """'Host Application Message Ordering', across the wrap from 255 to 0: seq 255, 1, 0 arrive,
    the readings come as 255, 0, 1, and the timer the early seq 1 started is terminated."""

    async def scenario() -> None:
        group = unique("g")
        readings = Readings()
        host = SparkplugHost(dryer_connection(group, reorder_timeout_ms="60000"))
        async with running(host, readings), EdgeNode(PORT, group, "DRY-EDGE").online() as edge:
            await edge.nbirth(*NODE_BIRTH, seq=254)
            await readings.count(2)
            for seq, value in ((255, 1.0), (1, 3.0), (0, 2.0)):
                await edge.send("NDATA", metric(alias=1, value=value, when=at(value), birth=False), seq=seq)
            data = (await readings.count(5))[2:]
            node = host.nodes[(group, "DRY-EDGE")]
            await eventually(lambda: not host._timers)
        assert [r.value for r in data] == [1.0, 2.0, 3.0]
        assert node.expected == 2 and not node.held
        assert edge.commands.empty()

    run_async(scenario())


@pytest.mark.req("DI-07", "DI-06")
def test_a_gap_not_filled_within_the_reorder_timeout_asks_the_node_for_a_rebirth() -> None:
    """'Host Application Message Ordering': seq 2 never comes; after the timeout the held message is
    taken and an NCMD 'Node Control/Rebirth' = true, without seq, reaches the edge node."""

    async def scenario() -> None:
        group = unique("g")
        readings = Readings()
        async with (
            running(SparkplugHost(dryer_connection(group, reorder_timeout_ms="200")), readings),
            EdgeNode(PORT, group, "DRY-EDGE").online() as edge,
        ):
            await born(edge, readings)  # seq 0 and 1
            await edge.send("NDATA", metric(alias=1, value=30.0, when=at(3), birth=False), seq=3)
            command = await edge.command()
            held = (await readings.count(6))[5]
            # Seq 2 turns up after all: kept, but as history, never as the value now.
            await edge.send("NDATA", metric(alias=1, value=29.0, when=at(2), birth=False), seq=2)
            late = (await readings.count(7))[6]
            # The node answers with a new birth, and the host takes it as a new session.
            await edge.nbirth(*NODE_BIRTH, seq=0)
            await readings.count(9)
        assert [(m.name, m.boolean_value, m.datatype) for m in command.metrics] == [
            ("Node Control/Rebirth", True, pb.Boolean)
        ]
        assert not command.HasField("seq") and command.HasField("timestamp")
        assert (held.source.tag, held.value, held.quality) == ("Cabinet temperature", 30.0, Quality.GOOD)
        assert (late.value, late.source_time, late.historical, late.status) == (
            29.0,
            at(2),
            True,
            "late (seq 2)",
        )

    run_async(scenario())


@pytest.mark.req("S95-06")
def test_data_from_a_node_the_host_saw_no_birth_of_asks_for_a_rebirth() -> None:
    """'Sparkplug Host Application Receive Data': a host started after the node asks it to rebirth."""

    async def scenario() -> None:
        group = unique("g")
        readings = Readings()
        async with (
            running(SparkplugHost(dryer_connection(group)), readings),
            EdgeNode(PORT, group, "DRY-EDGE").online() as edge,
        ):
            await edge.send("NDATA", metric(alias=1, value=30.0, birth=False), seq=17)
            command = await edge.command()
        assert command.metrics[0].name == "Node Control/Rebirth" and command.metrics[0].boolean_value
        assert readings.seen == []

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-04")
def test_historical_metrics_are_flagged_and_transient_ones_marked() -> None:
    """'Payloads: is_historical, is_transient': stored, but never judged as the value now."""

    async def scenario() -> None:
        group = unique("g")
        readings = Readings()
        async with (
            running(SparkplugHost(dryer_connection(group)), readings),
            EdgeNode(PORT, group, "DRY-EDGE").online() as edge,
        ):
            await born(edge, readings)
            await edge.send(
                "NDATA",
                metric(alias=1, value=20.5, when=at(-600), birth=False, is_historical=True),
                metric(alias=2, value=1, datatype=pb.Int8, when=at(4), birth=False, is_transient=True),
            )
            old, transient = (await readings.count(7))[5:]
        assert (old.value, old.source_time, old.historical) == (20.5, at(-600), True)
        assert (transient.historical, transient.flags) == (False, frozenset({"transient"}))

    run_async(scenario())


@pytest.mark.req("S95-06", "DI-06")
def test_a_null_metric_or_one_its_node_calls_bad_is_a_bad_reading_without_a_value() -> None:
    async def scenario() -> None:
        group = unique("g")
        readings = Readings()
        async with (
            running(SparkplugHost(dryer_connection(group)), readings),
            EdgeNode(PORT, group, "DRY-EDGE").online() as edge,
        ):
            await born(edge, readings)
            await edge.send(
                "DDATA",
                metric(alias=10, datatype=pb.Float, when=at(8), birth=False, is_null=True),
                device="Dryer",
            )
            null = (await readings.count(6))[5]
            # A value the edge node itself calls bad (its 'Quality' property 0) is no value either.
            said_bad = metric(alias=10, value=60.0, datatype=pb.Float, when=at(9), birth=False)
            said_bad.properties.keys.append("Quality")
            said_bad.properties.values.add(type=pb.Int32, int_value=0)
            await edge.send("DDATA", said_bad, device="Dryer")
            bad = (await readings.count(7))[6]
        assert (null.source.tag, null.quality, null.value, null.status) == (
            "Inlet temperature",
            Quality.BAD,
            None,
            "is_null",
        )
        assert null.source_time == at(8)
        assert (bad.quality, bad.value, bad.source_time) == (Quality.BAD, None, at(9))

    run_async(scenario())


@pytest.mark.req("S95-06")
def test_the_hosts_state_is_retained_online_and_its_will_says_offline_when_it_dies() -> None:
    """'Host Application Session Establishment': STATE birth retained with QoS 1 and the will's
    timestamp; the will, retained, when the host's connection drops without a DISCONNECT (the
    host's process killed)."""
    host_id = unique("host")
    script = textwrap.dedent(
        f"""
        import asyncio
        from batchline.gateway.protocols.sparkplug import SparkplugHost
        from batchline.gateway.readings import Connection, Protocol

        async def main():
            host = SparkplugHost(Connection(Protocol.SPARKPLUG, "mqtt://127.0.0.1:{PORT}", (),
                                            {{"host_id": "{host_id}"}}))
            async def emit(reading):
                pass
            task = asyncio.create_task(host.run(emit))
            while not host.state.connected:
                await asyncio.sleep(0.01)
            print("online", flush=True)
            await task

        asyncio.run(main())
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=os.environ.copy())
    try:
        assert process.stdout is not None and process.stdout.readline() == b"online\n"
        birth = json.loads(run_async(retained(PORT, f"spBv1.0/STATE/{host_id}")))

        async def watch_death() -> bytes:
            async with aiomqtt.Client("127.0.0.1", PORT, identifier=unique("watch")) as client:
                await client.subscribe(f"spBv1.0/STATE/{host_id}", qos=1)
                async for message in client.messages:
                    body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                    if not body["online"]:
                        return bytes(message.payload)  # type: ignore[arg-type]
                    os.kill(process.pid, signal.SIGKILL)  # after the retained birth: no DISCONNECT sent
            raise AssertionError("unreachable")

        death = json.loads(run_async(asyncio.wait_for(watch_death(), 30)))
    finally:
        process.kill()
        process.wait()
    assert birth["online"] is True and isinstance(birth["timestamp"], int)
    assert death == {"online": False, "timestamp": birth["timestamp"]}
    assert json.loads(run_async(retained(PORT, f"spBv1.0/STATE/{host_id}"))) == death  # retained


@pytest.mark.req("S95-06")
def test_a_host_stopped_on_purpose_says_offline_and_one_told_it_is_offline_says_online_again() -> None:
    """'Host Application Session Termination' (an intentional stop publishes the death first) and
    the rule that a host delivered an offline STATE of its own id republishes its birth."""

    async def scenario() -> tuple[dict, dict, dict]:
        readings = Readings()
        host = SparkplugHost(dryer_connection(unique("g")))
        topic = host.state_topic
        async with (
            running(host, readings),
            aiomqtt.Client("127.0.0.1", PORT, identifier=unique("meddler")) as meddler,
        ):
            await meddler.subscribe(topic, qos=1)
            false = json.dumps({"online": False, "timestamp": 1}).encode()
            await meddler.publish(topic, false, qos=1, retain=True)
            again = json.loads(
                await first(meddler, lambda m: json.loads(m.payload)["online"] and not m.retain)
            )
        return again, json.loads(await retained(PORT, topic)), {"ts": host.state_timestamp}

    again, after_stop, stamp = run_async(scenario())
    assert again == {"online": True, "timestamp": stamp["ts"]}
    assert after_stop == {"online": False, "timestamp": stamp["ts"]}


@pytest.mark.req("S95-06", "DI-06")
def test_losing_the_broker_makes_every_tag_stale_and_the_host_reconnects_and_resubscribes() -> None:
    """'Host Application Session Establishment': all metric data STALE when the host loses the
    broker; back online, the host publishes its STATE again and hears the node's new birth."""

    async def scenario(broker) -> None:
        group = unique("g")
        readings = Readings()
        host = SparkplugHost(dryer_connection(group, port=broker.port, reconnect_min_ms="100"))
        async with running(host, readings):
            first = EdgeNode(broker.port, group, "DRY-EDGE")
            with contextlib.suppress(aiomqtt.MqttError):  # its broker dies under it
                async with first.online():
                    await born(first, readings)
                    broker.kill()
                    stale = await readings.count(5, Quality.STALE)
            assert {r.status for r in stale} == {"broker connection lost"}
            assert not host.state.connected and host.state.last_error
            broker.start()
            await eventually(lambda: host.state.connected)
            state = json.loads(await retained(broker.port, host.state_topic))
            async with EdgeNode(broker.port, group, "DRY-EDGE", bdseq=1).online() as edge:
                await edge.nbirth(*NODE_BIRTH)
                back = (await readings.count(12))[10:]
        assert state == {"online": True, "timestamp": host.state_timestamp}
        assert host.state.reconnects >= 1
        assert {(r.source.tag, r.quality) for r in back} == {
            ("Cabinet temperature", Quality.GOOD),
            ("Offset", Quality.GOOD),
        }

    with own_mosquitto() as broker:
        run_async(scenario(broker))


@pytest.mark.req("S95-06", "DI-06")
def test_when_the_gateway_cannot_take_a_reading_the_host_stops_with_that_error() -> None:
    """Also when the reading comes out of the reorder timer: no silent host, no task left behind."""

    async def scenario() -> None:
        group = unique("g")
        taken = Readings()

        async def emit(reading) -> None:
            if reading.value == 30.0:
                raise RuntimeError("the store is full")
            await taken.emit(reading)

        host = SparkplugHost(dryer_connection(group, reorder_timeout_ms="100"))
        task = asyncio.create_task(host.run(emit))
        await eventually(lambda: host.state.connected)
        async with EdgeNode(PORT, group, "DRY-EDGE").online() as edge:
            await born(edge, taken)
            await edge.send("NDATA", metric(alias=1, value=30.0, when=at(3), birth=False), seq=3)
            with pytest.raises(RuntimeError, match="the store is full"):
                await asyncio.wait_for(task, 10)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not [t for t in left if "gateway/protocols" in t.get_coro().cr_code.co_filename]

    run_async(scenario())


@pytest.mark.req("S95-06")
@pytest.mark.parametrize(
    ("endpoint", "node", "options", "why"),
    [
        ("opc.tcp://127.0.0.1:4840", "g/e", {}, "not an MQTT broker address"),
        ("mqtt://127.0.0.1:1883", None, {}, "must name a Sparkplug node"),
        ("mqtt://127.0.0.1:1883", "g/+", {}, "must name a Sparkplug node"),
        ("mqtt://127.0.0.1:1883", "g/e/d/x", {}, "must name a Sparkplug node"),
        ("mqtt://127.0.0.1:1883", "g/e", {"host_id": "a/b"}, "single topic level"),
        ("mqtt://127.0.0.1:1883", "g/e", {"reorder_timeout_ms": "2s"}, "not a whole number"),
    ],
)
def test_a_connection_written_wrongly_is_refused_with_a_sentence(endpoint, node, options, why) -> None:
    tag = TagSpec(unit="DRY-01", tag="Inlet temperature", options={"node": node} if node else {})
    with pytest.raises(ValueError, match=why):
        SparkplugHost(
            Connection(protocol=Protocol.SPARKPLUG, endpoint=endpoint, tags=(tag,), options=options)
        )


@pytest.mark.req("S95-06")
def test_the_endpoint_may_name_the_node_every_tag_belongs_to() -> None:
    tags = (
        TagSpec(unit="DRY-01", tag="Inlet temperature"),
        TagSpec(unit="DRY-01", tag="Speed", options={"node": "g/other"}),
    )
    host = SparkplugHost(
        Connection(protocol=Protocol.SPARKPLUG, endpoint="mqtt://broker/g/e/Dryer", tags=tags)
    )
    assert set(host.nodes) == {("g", "e"), ("g", "other")}
    assert set(host.nodes[("g", "e")].tags) == {"Dryer"}
    assert (host.hostname, host.port) == ("broker", 1883)
