"""Plain JSON over MQTT for simple devices: one topic per tag.

Configuration (a :class:`~batchline.gateway.readings.Connection` with protocol ``mqtt-json``):
``endpoint`` is the broker, ``mqtt://host:port``; each tag's ``tag`` is its topic, exactly (no
wildcards); ``options`` may set ``keepalive_s`` (default 10) and ``reconnect_min_ms`` /
``reconnect_max_ms`` (backoff; default 500 / 30000).

A message is read in one of these forms:

- a bare JSON number or boolean: ``21.4``, ``true`` -- a good value, with no device time;
- an object ``{"value": 21.4, "timestamp": "2026-12-07T09:30:00.250Z", "quality": "good"}``, where
  ``value`` is a number, boolean, string or null, ``timestamp`` (optional) is ISO 8601 with its
  time zone or milliseconds since the epoch (UTC), and ``quality`` (optional, default ``good``) is
  ``good``, ``uncertain`` or ``bad``. A ``bad`` quality or a null value is a Bad reading without a
  value.

Anything else (not JSON, another shape, a timestamp without a time zone, an unknown quality) is
refused: a sentence in the log and a Bad reading for the tag whose status says why, so the loss is
recorded rather than passed over. Losing the broker makes every tag STALE. A message the broker
kept (retained) is read like any other and flagged ``retained``: it is the device's last word, of
whatever age. Without a device timestamp a reading's key is the gateway's receipt time, so only
timestamped messages are stored once when seen twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import uuid
from urllib.parse import urlsplit

import aiomqtt

from batchline.gateway.readings import (
    ConfigurationError,
    Connection,
    ConnectionState,
    Emit,
    Protocol,
    Quality,
    Reading,
    Source,
    TagSpec,
    Value,
    now,
)

log = logging.getLogger(__name__)

QUALITIES = {"good": Quality.GOOD, "uncertain": Quality.UNCERTAIN, "bad": Quality.BAD}


class Refused(ValueError):
    """A payload none of the accepted forms; the text says why, for the log and the reading."""


def read_payload(data: bytes) -> tuple[Value | None, Quality, dt.datetime | None]:
    """(value, quality, device time) of one message, or :class:`Refused`."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(f"the payload is not JSON ({exc})") from exc
    if isinstance(body, dict):
        unknown = set(body) - {"value", "timestamp", "quality"}
        if "value" not in body or unknown:
            raise Refused(
                "a JSON object needs a 'value' and may carry only 'timestamp' and 'quality' beside it"
            )
        value = _value(body["value"], allow_text=True)
        when = _timestamp(body["timestamp"]) if body.get("timestamp") is not None else None
        said = body.get("quality", "good")
        if not isinstance(said, str) or said.lower() not in QUALITIES:
            raise Refused(f"the quality {said!r} is none of good, uncertain, bad")
        quality = QUALITIES[said.lower()]
        if value is None or quality is Quality.BAD:
            return None, Quality.BAD, when
        return value, quality, when
    if not isinstance(body, bool | int | float):
        raise Refused("a bare payload must be a number or a boolean")
    return _value(body, allow_text=False), Quality.GOOD, None


def _value(raw: object, *, allow_text: bool) -> Value | None:
    if raw is None or isinstance(raw, bool | int):
        return raw
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise Refused("the value is not a finite number")
        return raw
    if isinstance(raw, str) and allow_text:
        return raw
    raise Refused(f"the value {raw!r} is not a number, boolean{', string' if allow_text else ''} or null")


def _timestamp(raw: object) -> dt.datetime:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        try:
            return dt.datetime.fromtimestamp(raw / 1000, tz=dt.UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise Refused(f"the timestamp {raw!r} is no moment a calendar holds") from exc
    if isinstance(raw, str):
        try:
            when = dt.datetime.fromisoformat(raw)
        except ValueError as exc:
            raise Refused(f"the timestamp {raw!r} is not ISO 8601") from exc
        if when.utcoffset() is None:
            raise Refused(f"the timestamp {raw!r} names no time zone")
        return when.astimezone(dt.UTC)
    raise Refused(f"the timestamp {raw!r} is neither ISO 8601 text nor milliseconds since the epoch")


class MqttJsonAdapter:
    """Subscribes to each configured tag's topic and emits a reading per message (see the module)."""

    def __init__(self, connection: Connection) -> None:
        if connection.protocol != Protocol.MQTT_JSON:
            raise ConfigurationError(
                f"The MQTT JSON adapter cannot serve a {connection.protocol} connection."
            )
        parts = urlsplit(connection.endpoint)
        if parts.scheme != "mqtt" or not parts.hostname or parts.path.strip("/"):
            raise ConfigurationError(
                f"The endpoint {connection.endpoint!r} is not an MQTT broker (mqtt://host:port)."
            )
        self.connection = connection
        self.state = ConnectionState()
        self.hostname, self.port = parts.hostname, parts.port or 1883
        self.endpoint = f"mqtt://{self.hostname}:{self.port}"
        if not connection.tags:
            raise ConfigurationError(
                f"The MQTT JSON connection to {connection.endpoint} names no tag (topic) to read."
            )
        self.tags: dict[str, TagSpec] = {}
        for spec in connection.tags:
            if not spec.tag or "+" in spec.tag or "#" in spec.tag:
                raise ConfigurationError(f"The tag {spec.tag!r} must be one MQTT topic, without wildcards.")
            self.tags[spec.tag] = spec
        options = connection.options
        try:
            self.keepalive = int(options.get("keepalive_s", "10"))
            self.reconnect_min = int(options.get("reconnect_min_ms", "500")) / 1000
            self.reconnect_max = int(options.get("reconnect_max_ms", "30000")) / 1000
        except ValueError as exc:
            raise ConfigurationError(f"An MQTT timing option is not a whole number: {exc}.") from exc
        self._stale: set[str] = set()

    async def run(self, emit: Emit) -> None:
        delay = self.reconnect_min
        stale_told = False
        while True:
            client = aiomqtt.Client(
                self.hostname,
                self.port,
                identifier=f"batchline-json-{uuid.uuid4().hex[:8]}",
                clean_session=True,
                keepalive=self.keepalive,
            )
            try:
                async with client:
                    await client.subscribe([(topic, 1) for topic in self.tags])
                    self.state.connected, self.state.since, self.state.last_error = True, now(), ""
                    delay, stale_told = self.reconnect_min, False
                    async for message in client.messages:
                        await self._on_message(message, emit)
            except aiomqtt.MqttError as exc:
                self.state.last_error = f"The MQTT broker {self.hostname}:{self.port} is unreachable: {exc}."
                log.warning("%s", self.state.last_error)
            if self.state.connected or not stale_told:
                await self._all_stale(emit)
                stale_told = True
            self.state.connected, self.state.since = False, now()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max)
            self.state.reconnects += 1

    async def _on_message(self, message: aiomqtt.Message, emit: Emit) -> None:
        received = now()
        spec = self.tags.get(message.topic.value)
        if spec is None:
            return
        data = message.payload if isinstance(message.payload, bytes | bytearray) else b""
        status = ""
        try:
            value, quality, when = read_payload(bytes(data))
        except Refused as exc:
            log.warning("The message on %s was refused: %s.", message.topic.value, exc)
            value, quality, when, status = None, Quality.BAD, None, f"refused: {exc}"
        await self._emit(emit, spec, value, quality, when, received, status, retained=bool(message.retain))

    async def _all_stale(self, emit: Emit) -> None:
        moment = now()
        for spec in self.tags.values():
            if spec.tag not in self._stale:
                await self._emit(emit, spec, None, Quality.STALE, None, moment, "broker connection lost")

    async def _emit(
        self,
        emit: Emit,
        spec: TagSpec,
        value: Value | None,
        quality: Quality,
        when: dt.datetime | None,
        received: dt.datetime,
        status: str,
        *,
        retained: bool = False,
    ) -> None:
        if quality is Quality.STALE:
            self._stale.add(spec.tag)
        else:
            self._stale.discard(spec.tag)
        reading = Reading(
            source=Source(unit=spec.unit, protocol=Protocol.MQTT_JSON, endpoint=self.endpoint, tag=spec.tag),
            value=value,
            quality=quality,
            source_time=when,
            gateway_time=received,
            unit_of_measure=spec.unit_of_measure,
            status=status,
            flags=frozenset({"retained"}) if retained else frozenset(),
        )
        await emit(reading)
        self.state.received += 1
