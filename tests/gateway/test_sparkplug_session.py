"""The host's session logic and codec without a broker: the cases the broker tests do not reach."""

from __future__ import annotations

import datetime as dt

import pytest

from batchline.gateway.protocols.sparkplug import codec
from batchline.gateway.protocols.sparkplug import sparkplug_b_pb2 as pb
from batchline.gateway.protocols.sparkplug.session import EdgeNode
from batchline.gateway.readings import TagSpec
from tests.gateway.mqtt_peers import at, metric


def node() -> EdgeNode:
    tags = {None: {"Temperature": TagSpec(unit="DRY-01", tag="Temperature")}}
    return EdgeNode(
        "g", "e", broker="mqtt://127.0.0.1:1883", tags=tags, rebirth_interval=dt.timedelta(seconds=5)
    )


def payload(seq: int | None, *metrics: pb.Payload.Metric) -> pb.Payload:
    p = pb.Payload(timestamp=0)
    if seq is not None:
        p.seq = seq
    p.metrics.extend(metrics)
    return p


NBIRTH = codec.Topic("g", "NBIRTH", "e")
NDATA = codec.Topic("g", "NDATA", "e")


@pytest.mark.req("DI-07")
def test_an_alias_the_birth_did_not_define_asks_for_one_rebirth_per_interval() -> None:
    edge = node()
    edge.receive(NBIRTH, payload(0, metric("Temperature", 20.0, alias=1)), at(0))
    first = edge.receive(NDATA, payload(1, metric(alias=9, value=1.0, birth=False)), at(1))
    again = edge.receive(NDATA, payload(2, metric(alias=9, value=1.0, birth=False)), at(2))
    later = edge.receive(NDATA, payload(3, metric(alias=9, value=1.0, birth=False)), at(7))
    assert (first.rebirth, again.rebirth, later.rebirth) == (True, False, True)
    assert first.readings == again.readings == later.readings == []


@pytest.mark.req("DI-07")
def test_data_without_a_seq_asks_for_a_rebirth() -> None:
    edge = node()
    edge.receive(NBIRTH, payload(0, metric("Temperature", 20.0, alias=1)), at(0))
    outcome = edge.receive(NDATA, payload(None, metric(alias=1, value=21.0, birth=False)), at(1))
    assert outcome.rebirth and outcome.readings == []


@pytest.mark.req("DI-04")
@pytest.mark.parametrize("raw", [0xFF, 0xFFFFFFFF])
def test_a_negative_int8_is_read_whichever_way_the_node_extends_its_sign(raw: int) -> None:
    assert codec.metric_value(pb.Payload.Metric(int_value=raw), pb.Int8) == -1


@pytest.mark.req("DI-04")
def test_a_float_is_read_as_the_decimal_the_device_meant() -> None:
    assert codec.metric_value(pb.Payload.Metric(float_value=21.4), pb.Float) == 21.4
    assert codec.metric_value(pb.Payload.Metric(double_value=0.1), pb.Double) == 0.1


@pytest.mark.req("DI-04")
def test_a_value_a_reading_cannot_carry_is_refused_with_its_datatype() -> None:
    with pytest.raises(codec.UnsupportedValue, match="a Bytes metric carrying bytes_value"):
        codec.metric_value(pb.Payload.Metric(bytes_value=b"\x00"), pb.Bytes)
