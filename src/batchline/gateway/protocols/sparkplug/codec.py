"""Sparkplug B 3.0 on the wire: topics, payloads, metric values and the host's STATE message.

Plain functions over the generated protobuf classes; no I/O. Sections named are those of the
Sparkplug 3.0.0 specification (Eclipse Foundation).
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from dataclasses import dataclass

from batchline.gateway.protocols.sparkplug import sparkplug_b_pb2 as pb
from batchline.gateway.readings import Value

NAMESPACE = "spBv1.0"
REBIRTH = "Node Control/Rebirth"
BDSEQ = "bdSeq"

# Message types of the topic namespace; the host reads the edge node's, never the commands.
NODE_TYPES = frozenset({"NBIRTH", "NDEATH", "NDATA"})
DEVICE_TYPES = frozenset({"DBIRTH", "DDEATH", "DDATA"})
COMMAND_TYPES = frozenset({"NCMD", "DCMD"})

# The datatypes a reading can carry ('Datatypes'): integers signed at their width, floats, booleans, text.
SIGNED_BITS: dict[int, int] = {pb.Int8: 8, pb.Int16: 16, pb.Int32: 32, pb.Int64: 64}
UNSIGNED: frozenset[int] = frozenset({pb.UInt8, pb.UInt16, pb.UInt32, pb.UInt64})
FLOATS: frozenset[int] = frozenset({pb.Float, pb.Double})
TEXTS: frozenset[int] = frozenset({pb.String, pb.Text, pb.UUID})

# The "Quality" property of a metric ('Quality Codes'): 0 bad, 192 good, 500 stale.
QUALITY_PROPERTY = "Quality"
QUALITY_CODES = {0: "bad", 192: "good", 500: "stale"}


class MalformedMessage(ValueError):
    """A topic or payload that is not Sparkplug B; its text says what was wrong, for the log."""


@dataclass(frozen=True)
class Topic:
    group: str
    kind: str  # NBIRTH, DDATA, STATE, ...
    edge: str  # the edge node id; the host id for STATE
    device: str | None = None

    @property
    def node(self) -> tuple[str, str]:
        return (self.group, self.edge)


def parse_topic(topic: str) -> Topic:
    """``spBv1.0/group/TYPE/edge[/device]`` or ``spBv1.0/STATE/host_id`` ('Topic Namespace Elements')."""
    parts = topic.split("/")
    if len(parts) == 3 and parts[:2] == [NAMESPACE, "STATE"]:
        return Topic(group="", kind="STATE", edge=parts[2])
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
        raise MalformedMessage(f"the topic {topic!r} is not in the Sparkplug B namespace")
    kind = parts[2]
    if kind in NODE_TYPES | {"NCMD"} and len(parts) == 4:
        return Topic(group=parts[1], kind=kind, edge=parts[3])
    if kind in DEVICE_TYPES | {"DCMD"} and len(parts) == 5:
        return Topic(group=parts[1], kind=kind, edge=parts[3], device=parts[4])
    raise MalformedMessage(f"the topic {topic!r} names no Sparkplug message type Batchline knows")


def node_topic(group: str, kind: str, edge: str, device: str | None = None) -> str:
    return "/".join((NAMESPACE, group, kind, edge, *((device,) if device else ())))


def state_topic(host_id: str) -> str:
    return f"{NAMESPACE}/STATE/{host_id}"


def decode(data: bytes) -> pb.Payload:
    payload = pb.Payload()
    try:
        payload.ParseFromString(data)
    except Exception as exc:  # protobuf raises its own DecodeError, and others on truncated input
        raise MalformedMessage(f"the payload is not a Sparkplug B protobuf ({exc})") from exc
    return payload


def moment(milliseconds: int) -> dt.datetime | None:
    """A Sparkplug timestamp (milliseconds since the epoch, UTC) as a time-zone-aware datetime; None
    for one no calendar holds (a uint64 can say the year 584 million)."""
    try:
        return dt.datetime.fromtimestamp(milliseconds / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def milliseconds(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


class UnsupportedValue(ValueError):
    """A metric whose datatype a reading cannot carry (DataSet, Template, bytes, arrays)."""


def metric_value(metric: pb.Payload.Metric, datatype: int) -> Value:
    """The metric's value as Python, read by its datatype (the birth's, as data messages omit it)."""
    field = metric.WhichOneof("value")
    if datatype in SIGNED_BITS and field in ("int_value", "long_value"):
        bits = SIGNED_BITS[datatype]
        # Signed integers travel in unsigned fields; edge nodes differ in whether they sign-extend
        # to the field's width, so only the datatype's own width is read.
        raw = getattr(metric, field) & ((1 << bits) - 1)
        return raw - (1 << bits) if raw >> (bits - 1) else raw
    if datatype in UNSIGNED and field in ("int_value", "long_value"):
        return int(getattr(metric, field))
    if datatype in FLOATS and field in ("float_value", "double_value"):
        if field == "float_value":
            # A float32 read into a Python float shows binary noise (21.4 -> 21.399999618530273);
            # the shortest decimal that round-trips through float32 is what the device meant.
            return _shortest_float32(metric.float_value)
        return float(metric.double_value)
    if datatype == pb.Boolean and field == "boolean_value":
        return bool(metric.boolean_value)
    if datatype in TEXTS and field == "string_value":
        return str(metric.string_value)
    if datatype == pb.DateTime and field == "long_value":
        when = moment(metric.long_value)
        if when is not None:
            return when.isoformat(timespec="milliseconds")
    name = pb.DataType.Name(datatype) if datatype in pb.DataType.values() else str(datatype)
    raise UnsupportedValue(f"a {name} metric carrying {field or 'no value'} is not a value Batchline reads")


def _shortest_float32(value: float) -> float:
    packed = struct.pack("<f", value)
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == packed:
            return candidate
    return value


def quality_property(metric: pb.Payload.Metric) -> str | None:
    """The metric's own "Quality" property, if it sent one: "bad", "good" or "stale"."""
    if not metric.HasField("properties"):
        return None
    props = metric.properties
    for key, prop in zip(props.keys, props.values, strict=False):
        if key == QUALITY_PROPERTY and prop.WhichOneof("value") in ("int_value", "long_value"):
            return QUALITY_CODES.get(int(getattr(prop, prop.WhichOneof("value") or "int_value")))
    return None


def bdseq(payload: pb.Payload) -> int | None:
    for metric in payload.metrics:
        if metric.name == BDSEQ and metric.WhichOneof("value") in ("long_value", "int_value"):
            return int(getattr(metric, metric.WhichOneof("value") or "long_value"))
    return None


def rebirth_request(now: dt.datetime) -> bytes:
    """An NCMD asking an edge node for a new birth sequence ('Commands'): 'Node Control/Rebirth' =
    true, a payload timestamp, no seq."""
    payload = pb.Payload(timestamp=milliseconds(now))
    payload.metrics.add(name=REBIRTH, timestamp=milliseconds(now), datatype=pb.Boolean, boolean_value=True)
    return payload.SerializeToString()


def state_payload(*, online: bool, timestamp: int) -> bytes:
    """The host's birth or death certificate (JSON UTF-8, 'Sparkplug Host Application')."""
    return json.dumps({"online": online, "timestamp": timestamp}).encode()


def read_state(data: bytes) -> tuple[bool, int] | None:
    try:
        body = json.loads(data)
        return bool(body["online"]), int(body["timestamp"])
    except (ValueError, TypeError, KeyError):
        return None
