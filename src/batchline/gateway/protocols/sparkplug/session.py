"""One edge node's Sparkplug session as the host sees it: births, deaths, seq order, aliases.

No I/O and no clock: :class:`EdgeNode` is handed each message with the time it arrived and answers
with the readings to emit and whether to ask the node for a rebirth; the host (``host.py``) does the
MQTT side and runs the reorder timer. Sections named are those of the Sparkplug 3.0.0 specification.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from batchline.gateway.protocols.sparkplug import codec
from batchline.gateway.protocols.sparkplug import sparkplug_b_pb2 as pb
from batchline.gateway.readings import Protocol, Quality, Reading, Source, TagSpec

log = logging.getLogger(__name__)

SEQ_MODULUS = 256
# A seq this far ahead of the expected one or less is a message that overtook others; further
# "ahead" it is one that was already passed over (a late or duplicate message), seen modulo 256.
AHEAD_WINDOW = SEQ_MODULUS // 2

Device = str | None  # None: the edge node's own metrics


@dataclass(frozen=True)
class BornMetric:
    name: str
    datatype: int


@dataclass
class Scope:
    """The metrics one birth (NBIRTH or a DBIRTH) declared, by name and by alias."""

    by_name: dict[str, BornMetric] = field(default_factory=dict)
    by_alias: dict[int, BornMetric] = field(default_factory=dict)


@dataclass
class Outcome:
    readings: list[Reading] = field(default_factory=list)
    rebirth: bool = False  # send an NCMD 'Node Control/Rebirth' to the edge node

    def add(self, other: Outcome) -> None:
        self.readings += other.readings
        self.rebirth = self.rebirth or other.rebirth


@dataclass
class Held:
    topic: codec.Topic
    payload: pb.Payload
    received: dt.datetime


class EdgeNode:
    """The host's view of one edge node (``group/edge``) and its devices.

    ``tags`` holds the configured tags by device (None for the node's own metrics) and metric
    name; only they produce readings, but every born metric is tracked so aliases resolve.
    """

    def __init__(
        self,
        group: str,
        edge: str,
        *,
        broker: str,
        tags: Mapping[Device, Mapping[str, TagSpec]],
        rebirth_interval: dt.timedelta,
    ) -> None:
        self.group, self.edge, self.broker = group, edge, broker
        self.tags = tags
        self.rebirth_interval = rebirth_interval
        self.born = False
        self.bdseq: int | None = None
        self.expected = 0  # the seq the next message must carry
        self.held: dict[int, Held] = {}  # messages that arrived ahead of a gap, by seq
        self.node = Scope()
        self.devices: dict[str, Scope] = {}  # born devices
        self.stale: set[tuple[Device, str]] = set()  # configured tags whose last reading was STALE
        self.rebirth_asked: dt.datetime | None = None
        self._sources: dict[tuple[Device, str], Source] = {}

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.edge)

    def __str__(self) -> str:
        return f"{self.group}/{self.edge}"

    # -- messages -------------------------------------------------------------------------------

    def receive(self, topic: codec.Topic, payload: pb.Payload, received: dt.datetime) -> Outcome:
        """One message of this node (any type but the commands), as it arrived."""
        if topic.kind == "NBIRTH":
            return self._nbirth(payload, received)
        if topic.kind == "NDEATH":
            return self._ndeath(payload, received)
        if not self.born:
            # DBIRTH, data or DDEATH with no NBIRTH in this session: nothing to check its seq or
            # aliases against (a host started after the node; 'Sparkplug Host Application Receive
            # Data').
            log.info("Sparkplug node %s sent %s before its NBIRTH; asking for a rebirth.", self, topic.kind)
            return self.ask_rebirth(received)
        if not payload.HasField("seq") or payload.seq >= SEQ_MODULUS:
            log.warning(
                "Sparkplug node %s sent %s without a seq of 0–255; asking for a rebirth.", self, topic.kind
            )
            return self.ask_rebirth(received)
        seq = int(payload.seq)
        if seq == self.expected:
            outcome = self._in_order(topic, payload, received)
            outcome.add(self._drain())
            return outcome
        ahead = (seq - self.expected) % SEQ_MODULUS
        if ahead < AHEAD_WINDOW:
            # Overtook a message still under way ('Sparkplug Host Application Message Ordering'):
            # held until the gap fills or the reorder timeout elapses (the host runs the timer).
            self.held.setdefault(seq, Held(topic, payload, received))
            return Outcome()
        return self._late(topic, payload, received)

    def expire(self, now: dt.datetime) -> Outcome:
        """The reorder timeout elapsed with messages still held: the missing ones are taken as lost.

        The held messages are processed in seq order (each is a real observation with its own
        timestamps) and the node is asked for a rebirth, which restores its current values.
        """
        if not self.held:
            return Outcome()
        log.warning(
            "Sparkplug node %s: seq %d did not arrive within the reorder timeout; asking for a rebirth.",
            self,
            self.expected,
        )
        outcome = Outcome()
        for seq in sorted(self.held, key=lambda s: (s - self.expected) % SEQ_MODULUS):
            held = self.held.pop(seq)
            outcome.add(self._in_order(held.topic, held.payload, held.received))
        outcome.add(self.ask_rebirth(now))
        return outcome

    def lost(self, now: dt.datetime, why: str) -> list[Reading]:
        """The host lost its broker: every tag of the node and its devices is STALE ('Host Application
        Session Establishment')."""
        self._forget()
        return self._stale(None, devices=True, now=now, source_time=None, status=why)

    # -- births and deaths ------------------------------------------------------------------------

    def _nbirth(self, payload: pb.Payload, received: dt.datetime) -> Outcome:
        seq = int(payload.seq) if payload.HasField("seq") else None
        if seq is None or seq >= SEQ_MODULUS:
            log.warning("Sparkplug node %s sent an NBIRTH without a seq of 0–255; ignored.", self)
            return Outcome()
        self._forget()
        self.born = True
        self.bdseq = codec.bdseq(payload)
        self.expected = (seq + 1) % SEQ_MODULUS
        self.rebirth_asked = None
        # A new session may declare other metrics and devices than the last: a device is known
        # again only once its DBIRTH of this session arrives.
        self.node = self._scope(payload)
        return Outcome(self._values(None, self.node, payload, received))

    def _ndeath(self, payload: pb.Payload, received: dt.datetime) -> Outcome:
        bdseq = codec.bdseq(payload)
        if not self.born:
            return Outcome()
        # An NDEATH without a bdSeq cannot be told from the session's own: taken as its death, the
        # side on which no stale value passes for a current one.
        if bdseq is not None and self.bdseq is not None and bdseq != self.bdseq:
            # The will of an earlier MQTT session, delivered after the node was born again ('Edge Node
            # Session Establishment', bdSeq): it says nothing about the session now.
            log.info(
                "Sparkplug node %s: NDEATH with bdSeq %d ignored (the session's is %d).",
                self,
                bdseq,
                self.bdseq,
            )
            return Outcome()
        self._forget()
        # A will's payload timestamp is when it was registered, not when the node died: the host's
        # receipt time is the time of death ('Edge Node Session Termination').
        return Outcome(self._stale(None, devices=True, now=received, source_time=None, status="NDEATH"))

    def _in_order(self, topic: codec.Topic, payload: pb.Payload, received: dt.datetime) -> Outcome:
        self.expected = (int(payload.seq) + 1) % SEQ_MODULUS
        device = topic.device
        if topic.kind == "DBIRTH" and device is not None:
            self.devices[device] = self._scope(payload)
            return Outcome(self._values(device, self.devices[device], payload, received))
        if topic.kind == "DDEATH" and device is not None:
            self.devices.pop(device, None)
            # An edge node sends a DDEATH itself, so its timestamp is the device's time of death
            # ('Device Session Termination').
            when = codec.moment(payload.timestamp) if payload.HasField("timestamp") else None
            return Outcome(
                self._stale(device, devices=False, now=received, source_time=when, status="DDEATH")
            )
        scope = self.node if device is None else self.devices.get(device)
        if scope is None:
            log.info(
                "Sparkplug node %s sent DDATA for device %s before its DBIRTH; asking for a rebirth.",
                self,
                device,
            )
            return self.ask_rebirth(received)
        return self._data(device, scope, payload, received, late=False)

    def _drain(self) -> Outcome:
        outcome = Outcome()
        while self.expected in self.held:
            held = self.held.pop(self.expected)
            outcome.add(self._in_order(held.topic, held.payload, held.received))
        return outcome

    def _late(self, topic: codec.Topic, payload: pb.Payload, received: dt.datetime) -> Outcome:
        """A message whose seq was already passed over: stored as history, never as the value now."""
        scope = self.node if topic.device is None else self.devices.get(topic.device)
        if topic.kind not in ("NDATA", "DDATA") or scope is None:
            log.warning("Sparkplug node %s: a late %s (seq %d) ignored.", self, topic.kind, payload.seq)
            return Outcome()
        log.info(
            "Sparkplug node %s: a late %s (seq %d) kept as historical values.", self, topic.kind, payload.seq
        )
        return self._data(topic.device, scope, payload, received, late=True)

    def _forget(self) -> None:
        self.born = False
        self.held.clear()
        self.node = Scope()
        self.devices.clear()

    def ask_rebirth(self, now: dt.datetime) -> Outcome:
        """A rebirth request, unless one went out less than ``rebirth_interval`` ago: a node that
        ignores it, or whose birth is under way, is not flooded with commands."""
        if self.rebirth_asked is not None and now - self.rebirth_asked < self.rebirth_interval:
            return Outcome()
        self.rebirth_asked = now
        return Outcome(rebirth=True)

    # -- metrics to readings ----------------------------------------------------------------------

    def _scope(self, payload: pb.Payload) -> Scope:
        scope = Scope()
        for metric in payload.metrics:
            if not metric.name:
                log.warning("Sparkplug node %s: a birth metric without a name ignored.", self)
                continue
            born = BornMetric(metric.name, int(metric.datatype))
            scope.by_name[metric.name] = born
            if metric.HasField("alias"):
                scope.by_alias[int(metric.alias)] = born
        return scope

    def _values(
        self, device: Device, scope: Scope, payload: pb.Payload, received: dt.datetime
    ) -> list[Reading]:
        wanted = self.tags.get(device, {})
        for name in wanted:
            if name not in scope.by_name:
                where = f"device {device} of node {self}" if device else f"node {self}"
                log.warning("The tag %r is not among the metrics %s declared in its birth.", name, where)
        return self._data(device, scope, payload, received, late=False).readings

    def _data(
        self, device: Device, scope: Scope, payload: pb.Payload, received: dt.datetime, *, late: bool
    ) -> Outcome:
        outcome = Outcome()
        for metric in payload.metrics:
            born = scope.by_name.get(metric.name) if metric.name else None
            if born is None and metric.HasField("alias"):
                born = scope.by_alias.get(int(metric.alias))
            if born is None:
                # A metric its birth did not declare: the host's picture of the node is wrong.
                log.warning(
                    "Sparkplug node %s sent a metric its birth did not declare (name %r, alias %s); asking for a rebirth.",
                    self,
                    metric.name,
                    metric.alias if metric.HasField("alias") else "none",
                )
                outcome.add(self.ask_rebirth(received))
                continue
            reading = self._reading(device, born, metric, payload, received, late=late)
            if reading is not None:
                outcome.readings.append(reading)
        return outcome

    def _reading(
        self,
        device: Device,
        born: BornMetric,
        metric: pb.Payload.Metric,
        payload: pb.Payload,
        received: dt.datetime,
        *,
        late: bool,
    ) -> Reading | None:
        spec = self.tags.get(device, {}).get(born.name)
        if spec is None:
            return None
        if metric.HasField("timestamp"):
            source_time: dt.datetime | None = codec.moment(metric.timestamp)
        elif payload.HasField("timestamp"):
            source_time = codec.moment(payload.timestamp)
        else:
            source_time = None
        datatype = int(metric.datatype) if metric.HasField("datatype") else born.datatype
        value = None
        quality, status = Quality.GOOD, ""
        if metric.is_null:
            quality, status = Quality.BAD, "is_null"
        else:
            try:
                value = codec.metric_value(metric, datatype)
            except codec.UnsupportedValue as exc:
                quality, status = Quality.BAD, str(exc)
            said = codec.quality_property(metric)
            if said == "bad":
                value, quality, status = None, Quality.BAD, "Quality property 0 (bad)"
            elif said == "stale":
                value, quality, status = None, Quality.STALE, "Quality property 500 (stale)"
        if late:
            status = f"{status}; late (seq {payload.seq})" if status else f"late (seq {payload.seq})"
        historical = bool(metric.is_historical) or late
        if not historical:
            if quality is Quality.STALE:
                self.stale.add((device, born.name))
            else:
                self.stale.discard((device, born.name))
        return Reading(
            source=self._source(device, spec),
            value=value,
            quality=quality,
            source_time=source_time,
            gateway_time=received,
            unit_of_measure=spec.unit_of_measure,
            status=status,
            historical=historical,
            flags=frozenset({"transient"}) if metric.is_transient else frozenset(),
        )

    def _stale(
        self, device: Device, *, devices: bool, now: dt.datetime, source_time: dt.datetime | None, status: str
    ) -> list[Reading]:
        readings = []
        for where, specs in self.tags.items():
            if where != device and not (devices and where is not None):
                continue
            for name, spec in specs.items():
                if (where, name) in self.stale:
                    continue
                self.stale.add((where, name))
                readings.append(
                    Reading(
                        source=self._source(where, spec),
                        value=None,
                        quality=Quality.STALE,
                        source_time=source_time,
                        gateway_time=now,
                        unit_of_measure=spec.unit_of_measure,
                        status=status,
                    )
                )
        return readings

    def _source(self, device: Device, spec: TagSpec) -> Source:
        # One Source per tag, made once: a busy node's readings share it.
        source = self._sources.get((device, spec.tag))
        if source is None:
            path = f"{self.group}/{self.edge}" + (f"/{device}" if device else "")
            source = Source(
                unit=spec.unit, protocol=Protocol.SPARKPLUG, endpoint=f"{self.broker}/{path}", tag=spec.tag
            )
            self._sources[(device, spec.tag)] = source
        return source
