"""The gateway's Sparkplug B 3.0 host application on aiomqtt.

Configuration (a :class:`~batchline.gateway.readings.Connection` with protocol ``sparkplug``):

- ``endpoint``: the broker, ``mqtt://host:port``, optionally followed by ``/group/edge[/device]``,
  the node every tag belongs to unless the tag says otherwise;
- each tag's ``tag`` is the metric name as the birth declares it ("Dryer/Inlet temperature"), and its
  ``options["node"]`` (``group/edge`` or ``group/edge/device``) where the endpoint names none;
- ``options``: ``host_id`` (the Sparkplug host id, unique on the broker; default
  ``batchline-gateway``), ``reorder_timeout_ms`` (default 2000), ``rebirth_interval_ms`` (the least
  time between two rebirth requests to one node; default 5000), ``keepalive_s`` (default 10),
  ``reconnect_min_ms`` / ``reconnect_max_ms`` (backoff; default 500 / 30000).

The host subscribes to the configured nodes only (``spBv1.0/group/+/edge`` and ``.../+``), not to the
whole namespace: it asks rebirths of nodes it was not told about from no one. Each MQTT session
registers a retained ``STATE`` death (``{"online": false, "timestamp": t}``, QoS 1) as its will and
publishes the matching birth once subscribed; an intentional stop publishes the death before it
disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

import aiomqtt

from batchline.gateway.protocols.sparkplug import codec
from batchline.gateway.protocols.sparkplug.session import Device, EdgeNode, Outcome
from batchline.gateway.readings import (
    ConfigurationError,
    Connection,
    ConnectionState,
    Emit,
    Protocol,
    TagSpec,
    now,
)

log = logging.getLogger(__name__)

DEFAULTS = {
    "host_id": "batchline-gateway",
    "reorder_timeout_ms": "2000",
    "rebirth_interval_ms": "5000",
    "keepalive_s": "10",
    "reconnect_min_ms": "500",
    "reconnect_max_ms": "30000",
}


def broker_of(endpoint: str) -> tuple[str, int, tuple[str, ...]]:
    """``mqtt://host:port/a/b`` -> (host, port, ("a", "b"))."""
    parts = urlsplit(endpoint)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ConfigurationError(
            f"The endpoint {endpoint!r} is not an MQTT broker address (mqtt://host:port/...)."
        )
    path = tuple(p for p in parts.path.split("/") if p)
    return parts.hostname, parts.port or 1883, path


def _node_of(path: tuple[str, ...], what: str) -> tuple[str, str, Device]:
    if len(path) not in (2, 3) or any(c in p for p in path for c in "+#"):
        raise ConfigurationError(f"{what} must name a Sparkplug node as group/edge or group/edge/device.")
    return path[0], path[1], (path[2] if len(path) == 3 else None)


class SparkplugHost:
    """A Sparkplug host application for the tags of one :class:`Connection` (see the module)."""

    def __init__(self, connection: Connection) -> None:
        if connection.protocol != Protocol.SPARKPLUG:
            raise ConfigurationError(f"A Sparkplug host cannot serve a {connection.protocol} connection.")
        self.connection = connection
        self.state = ConnectionState()
        options = {**DEFAULTS, **connection.options}
        self.host_id = options["host_id"]
        if not self.host_id or any(c in self.host_id for c in "/+#"):
            raise ConfigurationError(f"The Sparkplug host id {self.host_id!r} must be a single topic level.")
        try:
            self.reorder_timeout = int(options["reorder_timeout_ms"]) / 1000
            rebirth_interval = dt.timedelta(milliseconds=int(options["rebirth_interval_ms"]))
            self.keepalive = int(options["keepalive_s"])
            self.reconnect_min = int(options["reconnect_min_ms"]) / 1000
            self.reconnect_max = int(options["reconnect_max_ms"]) / 1000
        except ValueError as exc:
            raise ConfigurationError(f"A Sparkplug timing option is not a whole number: {exc}.") from exc
        self.hostname, self.port, default = broker_of(connection.endpoint)
        broker = f"mqtt://{self.hostname}:{self.port}"
        tags: dict[tuple[str, str], dict[Device, dict[str, TagSpec]]] = defaultdict(lambda: defaultdict(dict))
        for spec in connection.tags:
            node = spec.options.get("node")
            path = tuple(node.split("/")) if node else default
            group, edge, device = _node_of(path, f"The tag {spec.tag!r} (its node option or the endpoint)")
            tags[(group, edge)][device][spec.tag] = spec
        self.nodes = {
            key: EdgeNode(*key, broker=broker, tags=specs, rebirth_interval=rebirth_interval)
            for key, specs in tags.items()
        }
        self.state_timestamp = 0  # of this MQTT session's STATE birth and will
        # A node's running reorder timer, by node; its token tells a current expiry from a stale one.
        self._timers: dict[tuple[str, str], tuple[object, asyncio.TimerHandle]] = {}
        self._inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()  # the session's, see _session

    @property
    def state_topic(self) -> str:
        return codec.state_topic(self.host_id)

    async def run(self, emit: Emit) -> None:
        delay = self.reconnect_min
        stale_told = False
        while True:
            self.state_timestamp = codec.milliseconds(now())
            will = aiomqtt.Will(
                self.state_topic,
                codec.state_payload(online=False, timestamp=self.state_timestamp),
                qos=1,
                retain=True,
            )
            client = aiomqtt.Client(
                self.hostname,
                self.port,
                # The host id names the STATE topic; the client id only has to be unique, so two
                # gateways misconfigured with one host id do not throw each other off in turn.
                identifier=f"{self.host_id}-{uuid.uuid4().hex[:8]}",
                will=will,
                clean_session=True,  # 'Host Application Session Establishment'
                keepalive=self.keepalive,
            )
            try:
                async with client:
                    await self._establish(client)
                    delay, stale_told = self.reconnect_min, False
                    try:
                        await self._session(client, emit)
                    except asyncio.CancelledError:
                        await self._say_offline(client)
                        raise
            except aiomqtt.MqttError as exc:
                self.state.last_error = (
                    f"The connection to the MQTT broker {self.hostname}:{self.port} failed: {exc}."
                )
                log.warning("%s", self.state.last_error)
            finally:
                for _, handle in self._timers.values():
                    handle.cancel()
                self._timers.clear()
            if self.state.connected or not stale_told:
                # 'All metric data ... MUST be updated to a STALE data quality if the Host
                # Application loses connection to the MQTT Server.'
                await self._lost(emit, "broker connection lost")
                stale_told = True
            self.state.connected = False
            self.state.since = now()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max)
            self.state.reconnects += 1

    async def _session(self, client: aiomqtt.Client, emit: Emit) -> None:
        """Takes the broker's messages and the reorder timers' expiries one at a time, in one task, so
        that a failing ``emit`` stops ``run()`` with its error wherever it failed."""
        inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._inbox = inbox

        async def pump() -> None:
            # The connection's end (aiomqtt's MqttError) or anything else goes to the loop, which raises it.
            try:
                async for message in client.messages:
                    inbox.put_nowait(("message", message))
                raise aiomqtt.MqttError("the broker's message stream ended")
            except Exception as exc:
                inbox.put_nowait(("end", exc))

        pumping = asyncio.create_task(pump())
        try:
            while True:
                kind, item = await inbox.get()
                if kind == "end":
                    raise item
                if kind == "expired":
                    key, token = item
                    if key in self._timers and self._timers[key][0] is token:
                        del self._timers[key]
                        node = self.nodes[key]
                        await self._apply(client, node, node.expire(now()), emit)
                    continue
                await self._on_message(client, item, emit)
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping

    async def _establish(self, client: aiomqtt.Client) -> None:
        # Subscriptions first, then the STATE birth ('Host Application Session Establishment').
        topics = [(codec.state_topic(self.host_id), 1)]
        for group, edge in self.nodes:
            topics += [
                (f"{codec.NAMESPACE}/{group}/+/{edge}", 1),
                (f"{codec.NAMESPACE}/{group}/+/{edge}/+", 1),
            ]
        await client.subscribe(topics)
        await self._say_online(client)
        self.state.connected, self.state.since, self.state.last_error = True, now(), ""
        log.info("Sparkplug host %s online at %s:%d.", self.host_id, self.hostname, self.port)

    async def _say_online(self, client: aiomqtt.Client) -> None:
        birth = codec.state_payload(online=True, timestamp=self.state_timestamp)
        await client.publish(self.state_topic, birth, qos=1, retain=True)

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        death = codec.state_payload(online=False, timestamp=self.state_timestamp)
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            await asyncio.wait_for(client.publish(self.state_topic, death, qos=1, retain=True), timeout=2)

    async def _on_message(self, client: aiomqtt.Client, message: aiomqtt.Message, emit: Emit) -> None:
        received = now()
        data = message.payload if isinstance(message.payload, bytes | bytearray) else b""
        try:
            topic = codec.parse_topic(message.topic.value)
        except codec.MalformedMessage as exc:
            log.warning("%s; ignored.", exc)
            return
        if topic.kind == "STATE":
            said = codec.read_state(bytes(data))
            if topic.edge == self.host_id and said is not None and not said[0]:
                # A death of ours (an old will, or someone else's doing) must not stand while we
                # are online: publish the birth again, with this session's timestamp.
                await self._say_online(client)
            return
        node = self.nodes.get(topic.node)
        if node is None or topic.kind in codec.COMMAND_TYPES:
            return
        try:
            payload = codec.decode(bytes(data))
        except codec.MalformedMessage as exc:
            log.warning(
                "Sparkplug node %s sent a %s that could not be read: %s; ignored.", node, topic.kind, exc
            )
            return
        try:
            outcome = node.receive(topic, payload, received)
        except Exception:
            # A message the session logic could not take must not stop the host for every other
            # node; the log keeps the trace, and a rebirth starts the node afresh.
            log.exception(
                "Sparkplug node %s: a %s could not be processed; asking for a rebirth.", node, topic.kind
            )
            outcome = node.ask_rebirth(received)
        await self._apply(client, node, outcome, emit)

    async def _apply(self, client: aiomqtt.Client, node: EdgeNode, outcome: Outcome, emit: Emit) -> None:
        for reading in outcome.readings:
            await emit(reading)
            self.state.received += 1
        if outcome.rebirth:
            await client.publish(
                codec.node_topic(node.group, "NCMD", node.edge), codec.rebirth_request(now())
            )
        timer = self._timers.get(node.key)
        if node.held and timer is None:
            token = object()
            handle = asyncio.get_running_loop().call_later(
                self.reorder_timeout, self._inbox.put_nowait, ("expired", (node.key, token))
            )
            self._timers[node.key] = (token, handle)
        elif not node.held and timer is not None:
            # The gap filled in time ('the timer MUST be terminated').
            timer[1].cancel()
            del self._timers[node.key]

    async def _lost(self, emit: Emit, why: str) -> None:
        moment = now()
        for node in self.nodes.values():
            for reading in node.lost(moment, why):
                await emit(reading)
                self.state.received += 1
