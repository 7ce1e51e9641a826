"""OPC UA adapter: subscriptions on an OPC UA server, one :class:`Reading` per data change.

How it keeps the rules of :mod:`batchline.gateway.readings`:

- Each tag is a monitored item with the tag's sampling interval; a tag with a deadband gets an
  absolute ``DataChangeFilter`` (trigger StatusValue), so the *server* suppresses small changes.
  Tags are grouped by sampling interval and split into subscriptions of at most
  ``max_items_per_subscription`` items (option, default 100); a group's publishing interval is its
  sampling interval.
- ``status`` is the status code's name as the server sent it (``BadSensorFailure``); a Bad code gives
  ``BAD`` with no value, an Uncertain one ``UNCERTAIN`` with its value kept.
- ``source_time`` is the DataValue's SourceTimestamp. A server that sends none gets its
  ServerTimestamp used instead, and the reading carries the flag ``server_timestamp`` so nobody takes
  it for the device's clock. A value that is no number, boolean or text (an array, a structure) is
  kept as its text, flagged ``as_text``.
- A lost connection (socket closed, or the server not answering the client's watchdog read) emits a
  ``STALE`` reading for every tag, then the adapter starts over: a new session and new subscriptions,
  retried with a doubling delay. The server sends each monitored item's current value when it is
  created, so every tag gets its value back after a reconnection even if nothing changed.
  Changes that happened while the connection was down are not recovered (that would need the
  server's history).

Options (``Connection.options``, all numbers): ``max_items_per_subscription`` (100),
``item_queue_size`` (10 changes a monitored item may queue between publishes), ``request_timeout_s``
(4), ``watchdog_s`` (1: how often the client reads the server's state to notice a silent loss),
``session_timeout_s`` (60), ``reconnect_delay_s`` (1) and ``reconnect_max_delay_s`` (30).

The adapter does not use asyncua's own ``auto_reconnect``: that path reuses a surviving session
without sending initial values, which would leave a tag STALE until its value next changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import typing
from collections.abc import Mapping

from asyncua import Client, ua

from batchline.gateway.readings import (
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

# OPC UA's "no time": a DateTime of 0 decodes to 1601-01-01.
_NO_TIME = dt.datetime(1601, 1, 2, tzinfo=dt.UTC)


def _option(options: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"The OPC UA option {name!r} must be a number, not {raw!r}.") from None
    if value < minimum:
        raise ValueError(f"The OPC UA option {name!r} must be at least {minimum:g}, not {raw!r}.")
    return value


def status_name(code: ua.StatusCode) -> str:
    """The status code's symbolic name; the full code in hex when info bits make it unnamed."""
    name, _ = ua.status_codes.get_name_and_doc(code.value & 0xFFFF0000)
    if code.value & 0xFFFF:
        return f"{name} (0x{code.value:08X})"
    return name


def _as_value(raw: object) -> tuple[Value | None, bool]:
    """The value as the Reading carries it, and whether it had to be turned into text."""
    if raw is None or isinstance(raw, bool | int | float | str):
        return raw, False
    if isinstance(raw, ua.LocalizedText):
        return raw.Text or "", False
    return str(raw), True


def _moment(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value < _NO_TIME:
        return None
    return value if value.utcoffset() is not None else value.replace(tzinfo=dt.UTC)


class OpcUaAdapter:
    """Keeps one OPC UA session to ``connection.endpoint`` and emits a Reading per data change."""

    def __init__(self, connection: Connection) -> None:
        if connection.protocol != Protocol.OPCUA:
            raise ValueError(f"The OPC UA adapter cannot serve a {connection.protocol} connection.")
        if not connection.endpoint.startswith("opc.tcp://"):
            raise ValueError(f"An OPC UA endpoint starts with opc.tcp://, not {connection.endpoint!r}.")
        self.connection = connection
        self.state = ConnectionState()
        self._node_ids: list[ua.NodeId] = []
        for spec in connection.tags:
            try:
                self._node_ids.append(ua.NodeId.from_string(spec.tag))
            except Exception:
                raise ValueError(
                    f"The tag {spec.tag!r} of {spec.unit} is not an OPC UA node id "
                    "(write it as ns=2;s=Granulator.ImpellerPower or ns=2;i=1001)."
                ) from None
            if spec.sampling_ms <= 0:
                raise ValueError(f"The tag {spec.tag!r} needs a sampling interval above 0 ms.")
            if spec.deadband < 0:
                raise ValueError(f"The tag {spec.tag!r} has a negative deadband.")
        options = connection.options
        self.max_items_per_subscription = int(_option(options, "max_items_per_subscription", 100, minimum=1))
        self.request_timeout_s = _option(options, "request_timeout_s", 4.0, minimum=0.1)
        self.watchdog_s = _option(options, "watchdog_s", 1.0, minimum=0.05)
        # A session orphaned by a dropped connection lingers on the server (a PLC has few) until
        # it times out; the watchdog's reads keep a live one well inside this.
        self.session_timeout_s = _option(options, "session_timeout_s", 60.0, minimum=1)
        self.reconnect_delay_s = _option(options, "reconnect_delay_s", 1.0, minimum=0.01)
        self.reconnect_max_delay_s = _option(options, "reconnect_max_delay_s", 30.0, minimum=0.01)
        # Per monitored item: how many changes the server may hold between two publishes.
        self.item_queue_size = int(_option(options, "item_queue_size", 10, minimum=1))
        self._inbox: asyncio.Queue[Reading | _Lost | None] = asyncio.Queue()
        self._stale = False  # STALE already emitted for the present outage

    # The plan -------------------------------------------------------------------------------

    def subscription_plan(self) -> list[tuple[int, list[int]]]:
        """(publishing interval ms, tag indexes) per subscription: grouped by sampling interval,
        then cut into chunks of at most ``max_items_per_subscription``."""
        by_interval: dict[int, list[int]] = {}
        for index, spec in enumerate(self.connection.tags):
            by_interval.setdefault(spec.sampling_ms, []).append(index)
        plan = []
        for interval, indexes in sorted(by_interval.items()):
            size = self.max_items_per_subscription
            plan += [(interval, indexes[i : i + size]) for i in range(0, len(indexes), size)]
        return plan

    def _item_request(self, index: int) -> ua.MonitoredItemCreateRequest:
        spec = self.connection.tags[index]
        parameters = ua.MonitoringParameters()
        parameters.ClientHandle = index  # unique per adapter, so it names the tag in notifications
        parameters.SamplingInterval = float(spec.sampling_ms)
        parameters.QueueSize = self.item_queue_size
        parameters.DiscardOldest = True
        if spec.deadband > 0:
            data_filter = ua.DataChangeFilter()
            data_filter.Trigger = ua.DataChangeTrigger.StatusValue
            data_filter.DeadbandType = ua.DeadbandType.Absolute
            data_filter.DeadbandValue = float(spec.deadband)
            parameters.Filter = data_filter
        item = ua.ReadValueId()
        item.NodeId = self._node_ids[index]
        item.AttributeId = ua.AttributeIds.Value
        request = ua.MonitoredItemCreateRequest()
        request.ItemToMonitor = item
        request.MonitoringMode = ua.MonitoringMode.Reporting
        request.RequestedParameters = parameters
        return request

    # Readings -------------------------------------------------------------------------------

    def _source(self, spec: TagSpec) -> Source:
        return Source(
            unit=spec.unit, protocol=Protocol.OPCUA, endpoint=self.connection.endpoint, tag=spec.tag
        )

    def reading(self, index: int, data: ua.DataValue, *, received: dt.datetime) -> Reading:
        """The Reading for one DataValue of the tag at ``index``."""
        spec = self.connection.tags[index]
        code = data.StatusCode or ua.StatusCode()
        flags = set()
        source_time = _moment(data.SourceTimestamp)
        if source_time is None:
            source_time = _moment(data.ServerTimestamp)
            if source_time is not None:
                flags.add("server_timestamp")
        value: Value | None = None
        if code.is_bad():
            quality = Quality.BAD
        else:
            quality = Quality.UNCERTAIN if code.is_uncertain() else Quality.GOOD
            value, as_text = _as_value(data.Value.Value if data.Value is not None else None)
            if as_text:
                flags.add("as_text")
        return Reading(
            source=self._source(spec),
            value=value,
            quality=quality,
            source_time=source_time,
            gateway_time=received,
            unit_of_measure=spec.unit_of_measure,
            status=status_name(code),
            flags=frozenset(flags),
        )

    def stale(self, spec: TagSpec, why: str) -> Reading:
        return Reading(
            source=self._source(spec),
            value=None,
            quality=Quality.STALE,
            source_time=None,
            gateway_time=now(),
            unit_of_measure=spec.unit_of_measure,
            status=why,
        )

    # asyncua's subscription handler: called once per notification, in order of arrival.
    def datachange_notification(self, node: object, val: object, data: typing.Any) -> None:
        notification = data.monitored_item
        self._inbox.put_nowait(self.reading(notification.ClientHandle, notification.Value, received=now()))

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        code = status.Status or ua.StatusCode()
        if code.is_bad():
            self._inbox.put_nowait(_Lost(f"the server ended a subscription: {status_name(code)}"))

    # The connection -------------------------------------------------------------------------

    async def run(self, emit: Emit) -> None:
        """Connect, subscribe and emit until cancelled; reconnect and resubscribe after a loss.

        Raises whatever ``emit`` raises: a gateway that cannot take readings must not look alive."""
        emitter = asyncio.create_task(self._emit_all(emit), name=f"opcua-emit {self.connection.endpoint}")
        connector = asyncio.create_task(self._keep_connected(), name=f"opcua {self.connection.endpoint}")
        try:
            done, _ = await asyncio.wait({emitter, connector}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connector
            # Hand over what already arrived before stopping: those values were received.
            if not emitter.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._inbox.join(), timeout=5)
            emitter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await emitter

    async def _keep_connected(self) -> None:
        delay = self.reconnect_delay_s
        first = True
        while True:
            client = Client(
                self.connection.endpoint, timeout=self.request_timeout_s, watchdog_intervall=self.watchdog_s
            )
            client.session_timeout = int(self.session_timeout_s * 1000)
            lost = asyncio.Event()

            async def on_lost(exc: Exception, lost: asyncio.Event = lost) -> None:
                lost.set()
                self._inbox.put_nowait(_Lost(f"connection lost: {exc!r}"))

            client.connection_lost_callback = on_lost
            try:
                await client.connect()
            except (OSError, ua.UaError) as exc:  # TimeoutError and ConnectionError are OSErrors
                self.state.last_error = f"cannot connect to {self.connection.endpoint}: {exc!r}"
                log.info("%s", self.state.last_error)
                self._inbox.put_nowait(_Lost(self.state.last_error))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max_delay_s)
                continue
            try:
                await self._subscribe(client)
                delay = self.reconnect_delay_s
                if not first:
                    self.state.reconnects += 1
                first = False
                self.state.connected, self.state.since = True, now()
                self._inbox.put_nowait(_RESTORED)
                await lost.wait()
            except (OSError, ua.UaError) as exc:  # TimeoutError and ConnectionError are OSErrors
                # Lost while subscribing: the same as any other loss.
                self._inbox.put_nowait(_Lost(f"connection lost while subscribing: {exc!r}"))
            finally:
                if self.state.connected:
                    self.state.connected, self.state.since = False, now()
                await self._close(client)

    async def _subscribe(self, client: Client) -> None:
        for interval, indexes in self.subscription_plan():
            subscription = await client.create_subscription(float(interval), self)
            results = await subscription.create_monitored_items([self._item_request(i) for i in indexes])
            for index, result in zip(indexes, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    # The server refused the item (unknown node, a deadband on a non-number):
                    # the tag has no value until the configuration is fixed, and says why.
                    spec = self.connection.tags[index]
                    self.state.last_error = f"the server refused the tag {spec.tag}: {status_name(result)}"
                    self._inbox.put_nowait(
                        self.reading(index, ua.DataValue(StatusCode=result), received=now())
                    )

    async def _close(self, client: Client) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), timeout=self.request_timeout_s)

    async def _emit_all(self, emit: Emit) -> None:
        while True:
            item = await self._inbox.get()
            try:
                await self._emit_one(emit, item)
            finally:
                self._inbox.task_done()

    async def _emit_one(self, emit: Emit, item: Reading | _Lost | None) -> None:
        if item is _RESTORED:
            # Queued behind everything received before, so a late loss notice cannot follow it.
            self._stale = False
            return
        if isinstance(item, _Lost):
            self.state.last_error = item.why
            if not self._stale:
                self._stale = True
                for spec in self.connection.tags:
                    await emit(self.stale(spec, item.why))
                    self.state.received += 1
            return
        assert item is not None
        await emit(item)
        self.state.received += 1


class _Lost(typing.NamedTuple):
    why: str


_RESTORED = None  # the inbox's marker: subscribed again, the next loss is a new outage
