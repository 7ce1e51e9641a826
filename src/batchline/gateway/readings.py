"""What a protocol adapter hands the gateway: one value of one tag, with where and when it came from.

Plain data, no Django. Every adapter (``batchline.gateway.protocols``) produces :class:`Reading`
objects and passes them to an ``emit`` coroutine; the gateway stores them (idempotently, by
:attr:`Reading.key`), judges them against a running step's limits and shows them.

Rules every adapter keeps (an inspector tests them):

- a value is kept as it came: its device timestamp (``source_time``) untouched, the gateway's own
  receipt time beside it, the protocol's own status text (an OPC UA status code's name, a Sparkplug
  ``is_null``/``STALE``, a Modbus exception) in ``status``;
- a Bad value has ``value=None``: it is never used as a value, only recorded as a loss;
- an Uncertain value keeps its value and its quality, so every place that shows it can flag it;
- when a source goes silent or dies (Sparkplug NDEATH/DDEATH, a broker or PLC connection lost), the
  adapter emits a ``STALE`` reading for each of its tags, with ``value=None``;
- the same observation seen twice (a replay after a restart, a Sparkplug historical metric sent
  again) has the same ``key``, so storing it twice is impossible.
"""

from __future__ import annotations

import datetime as dt
import enum
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

Value = float | int | bool | str


class ConfigurationError(ValueError):
    """A connection or tag an adapter cannot serve as configured; the message says what to write."""


class Quality(enum.StrEnum):
    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"  # the device said so: no value
    STALE = "stale"  # the source died or went silent: no value until it is born again


class Protocol(enum.StrEnum):
    OPCUA = "opcua"
    SPARKPLUG = "sparkplug"  # MQTT with Sparkplug B 3.0
    MQTT_JSON = "mqtt-json"  # plain JSON topics for simple devices
    MODBUS = "modbus"  # Modbus TCP


@dataclass(frozen=True)
class Source:
    """Where a value came from: the equipment unit it belongs to and the address that produced it."""

    unit: str  # the equipment unit's code in Batchline's master data, e.g. "GRAN-01"
    protocol: Protocol
    endpoint: str  # opc.tcp://host:4840, mqtt://host:1883/group/edge[/device], modbus://host:502/unit
    tag: str  # the node id, the Sparkplug metric name, the JSON topic/field, the register address


@dataclass(frozen=True)
class Reading:
    source: Source
    value: Value | None  # None whenever quality is BAD or STALE
    quality: Quality
    source_time: dt.datetime | None  # the device's timestamp, tz-aware UTC, as sent; None if none sent
    gateway_time: dt.datetime  # when the gateway received it, tz-aware UTC
    unit_of_measure: str = ""  # as configured for the tag ("°C", "kN", "%"); pint-readable
    status: str = ""  # the protocol's own words for the quality
    # Distinguishes observations of one tag with the same source_time (a Sparkplug seq, an OPC UA
    # sequence); empty where the source time alone identifies the observation.
    sequence: str = ""
    historical: bool = False  # Sparkplug's is_historical: stored, never judged as the value now
    flags: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.quality in (Quality.BAD, Quality.STALE) and self.value is not None:
            raise ValueError(f"a {self.quality} reading carries no value")
        for name in ("source_time", "gateway_time"):
            moment = getattr(self, name)
            if moment is not None and moment.utcoffset() is None:
                raise ValueError(f"{name} must carry its time zone")

    @property
    def key(self) -> str:
        """The observation's identity: the same value seen again has the same key, a new one another."""
        s = self.source
        when = (self.source_time or self.gateway_time).astimezone(dt.UTC).isoformat(timespec="microseconds")
        return "|".join((s.protocol, s.endpoint, s.tag, when, self.sequence, self.quality))


Emit = Callable[[Reading], Awaitable[None]]


@dataclass(frozen=True)
class TagSpec:
    """One configured tag: which equipment unit's which parameter it carries, in which unit."""

    unit: str  # equipment unit code
    tag: str  # the protocol's address of the value (see Source.tag)
    name: str = ""  # the parameter it carries, as recipes name it ("inlet temperature")
    unit_of_measure: str = ""
    sampling_ms: int = 1000  # OPC UA sampling interval / Modbus poll period
    deadband: float = 0.0  # absolute; OPC UA's DataChangeFilter, the others filter the same way
    options: Mapping[str, str] = field(default_factory=dict)  # e.g. Modbus "type": "float32"


@dataclass(frozen=True)
class Connection:
    """One endpoint the gateway keeps a connection to, and the tags it reads there."""

    protocol: Protocol
    endpoint: str
    tags: tuple[TagSpec, ...]
    options: Mapping[str, str] = field(default_factory=dict)  # protocol settings (timeouts, group id)


@dataclass
class ConnectionState:
    """What an adapter says about its connection, for the engineers' page and the logs."""

    connected: bool = False
    since: dt.datetime | None = None
    last_error: str = ""
    received: int = 0  # readings emitted since the gateway started
    reconnects: int = 0


class Adapter(typing.Protocol):
    """A protocol adapter: ``run`` keeps the connection (reconnecting and resubscribing on its own)
    and emits readings until it is cancelled; ``state`` is read at any time."""

    connection: Connection
    state: ConnectionState

    async def run(self, emit: Emit) -> None: ...


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
