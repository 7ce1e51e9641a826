"""Modbus TCP adapter: polls registers and bits of legacy equipment, one :class:`Reading` per change.

**Tags** are written as the plant's documentation writes them, in Modicon reference numbering, with
the table named in front so a typo cannot silently read another table:

=====================  ===============================  ==========  ====================
tag                    table                            function    protocol address
=====================  ===============================  ==========  ====================
``coil:1``             coils (1–65536)                  01          0
``discrete:10001``     discrete inputs (10001–19999)    02          0
``input:30001``        input registers (30001–39999)    04          0
``holding:40001``      holding registers (40001–49999)  03          0
=====================  ===============================  ==========  ====================

Six-digit references (``holding:400001`` … ``holding:465536``) are accepted as well. The reference
counts from 1, the protocol (and pymodbus's API) from 0: ``holding:40001`` is read at address 0.

**Endpoint**: ``modbus://host[:port][/device]``, port 502 and device (unit) id 1 when left out.

**Tag options** (``TagSpec.options``): ``type`` — ``int16``, ``uint16`` (the default), ``int32``,
``uint32`` or ``float32`` for registers, ``bool`` (the only one) for coils and discrete inputs;
``word_order`` — ``big`` (the default: the first register holds the high word) or ``little``, for the
32-bit types; ``scale`` — a factor applied to the raw number (``0.1`` turns 2345 into 234.5).

**What is emitted**: Modbus sends no timestamps, so ``source_time`` is None and only the gateway's
receipt time is known. A tag is polled every ``sampling_ms``; a reading is emitted when its value moves
by more than the tag's deadband (any change when the deadband is 0) or its quality or status changes,
so an unchanging register is not stored once per poll. A Modbus exception response (illegal address,
device failure …) gives ``BAD`` with the exception in ``status``. A connection that drops, refuses or
stops answering gives ``STALE`` for every tag, then the adapter reconnects with a doubling delay and
emits every tag's value again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import logging
import time
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException

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


class Table(enum.StrEnum):
    COIL = "coil"
    DISCRETE = "discrete"
    INPUT = "input"
    HOLDING = "holding"


# The Modicon reference's leading digit for each table (coils have none: 1 … 65536).
_PREFIX = {Table.DISCRETE: "1", Table.INPUT: "3", Table.HOLDING: "4"}
_REGISTER_TYPES = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}


@dataclass(frozen=True)
class Point:
    """Where and how one tag is read: the table, the 0-based protocol address and the decoding."""

    table: Table
    address: int
    type: str  # "bool" or one of _REGISTER_TYPES
    word_order: typing.Literal["big", "little"] = "big"
    scale: float | None = None

    @property
    def count(self) -> int:
        return 1 if self.type == "bool" else _REGISTER_TYPES[self.type]


def parse_address(tag: str) -> tuple[Table, int]:
    """``holding:40001`` → (HOLDING, 0); a ValueError with a sentence for anything else."""
    table_name, _, number = tag.partition(":")
    try:
        table = Table(table_name.strip().lower())
    except ValueError:
        raise ValueError(
            f"The Modbus tag {tag!r} must start with coil:, discrete:, input: or holding: "
            "(for example holding:40001)."
        ) from None
    number = number.strip()
    if not number.isdigit():
        raise ValueError(f"The Modbus tag {tag!r} needs a reference number after the colon, e.g. {table}:1.")
    if table is Table.COIL:
        reference = int(number)
        if not 1 <= reference <= 65536:
            raise ValueError(f"The coil reference in {tag!r} must lie between 1 and 65536.")
        return table, reference - 1
    prefix = _PREFIX[table]
    first, rest = number[0], number[1:]
    if len(number) == 5 and first == prefix and 1 <= int(rest) <= 9999:
        return table, int(rest) - 1
    if len(number) == 6 and first == prefix and 1 <= int(rest) <= 65536:
        return table, int(rest) - 1
    raise ValueError(
        f"The {table} reference in {tag!r} must be written {prefix}0001–{prefix}9999 or "
        f"{prefix}00001–{prefix}65536 (Modicon numbering: {prefix}0001 is the first {table} "
        "address, read at protocol address 0)."
    )


def parse_point(spec: TagSpec) -> Point:
    table, address = parse_address(spec.tag)
    options = spec.options
    unknown = set(options) - {"type", "word_order", "scale"}
    if unknown:
        raise ValueError(
            f"The Modbus tag {spec.tag!r} has options Batchline does not know: {sorted(unknown)}."
        )
    bits = table in (Table.COIL, Table.DISCRETE)
    kind = options.get("type", "bool" if bits else "uint16").lower()
    if bits and kind != "bool":
        raise ValueError(f"The Modbus tag {spec.tag!r} reads a single bit; its type can only be bool.")
    if not bits and kind not in _REGISTER_TYPES:
        raise ValueError(
            f"The Modbus tag {spec.tag!r} has type {kind!r}; registers are int16, uint16, int32, uint32 "
            "or float32."
        )
    word_order = options.get("word_order", "big").lower()
    if word_order not in ("big", "little"):
        raise ValueError(
            f"The word_order of the Modbus tag {spec.tag!r} is big or little, not {word_order!r}."
        )
    scale = None
    if "scale" in options:
        if bits:
            raise ValueError(f"The Modbus tag {spec.tag!r} reads a bit; a bit cannot be scaled.")
        try:
            scale = float(options["scale"])
        except ValueError:
            raise ValueError(
                f"The scale of the Modbus tag {spec.tag!r} must be a number, not {options['scale']!r}."
            ) from None
    point = Point(table, address, kind, typing.cast(typing.Literal["big", "little"], word_order), scale)
    if address + point.count > 65536:
        raise ValueError(f"The Modbus tag {spec.tag!r} runs past the last address of its table.")
    if spec.sampling_ms <= 0:
        raise ValueError(f"The Modbus tag {spec.tag!r} needs a polling period above 0 ms.")
    if spec.deadband < 0:
        raise ValueError(f"The Modbus tag {spec.tag!r} has a negative deadband.")
    return point


def parse_endpoint(endpoint: str) -> tuple[str, int, int]:
    """``modbus://host[:port][/device]`` → (host, port, device id)."""
    parts = urlsplit(endpoint)
    problem = f"A Modbus TCP endpoint is written modbus://host[:port][/device], not {endpoint!r}."
    if parts.scheme != "modbus" or not parts.hostname:
        raise ValueError(problem)
    try:
        port = parts.port or 502
    except ValueError:
        raise ValueError(problem) from None
    device = parts.path.strip("/") or "1"
    if not device.isdigit() or not 0 <= int(device) <= 255:
        raise ValueError(f"The Modbus device (unit) id in {endpoint!r} must be a number from 0 to 255.")
    return parts.hostname, port, int(device)


def decode(point: Point, words: Sequence[int]) -> Value:
    """The tag's value from the registers read (big-endian bytes in each register, as Modbus has it)."""
    data_type = getattr(AsyncModbusTcpClient.DATATYPE, point.type.upper())
    raw = AsyncModbusTcpClient.convert_from_registers(words, data_type, word_order=point.word_order)
    assert isinstance(raw, int | float)
    return raw * point.scale if point.scale is not None else raw


def exception_status(code: int) -> str:
    try:
        name = ExcCodes(code).name
    except ValueError:
        name = "UNKNOWN"
    return f"Modbus exception {code:02d} {name}"


class _Lost(Exception):
    """The connection is gone; the adapter reconnects."""


class ModbusAdapter:
    """Keeps one Modbus TCP connection and polls the connection's tags."""

    def __init__(self, connection: Connection) -> None:
        if connection.protocol != Protocol.MODBUS:
            raise ValueError(f"The Modbus adapter cannot serve a {connection.protocol} connection.")
        self.connection = connection
        self.host, self.port, self.device_id = parse_endpoint(connection.endpoint)
        self.points = [parse_point(spec) for spec in connection.tags]
        if not self.points:
            raise ValueError(f"The Modbus connection {connection.endpoint} has no tags to poll.")
        options = connection.options
        self.timeout_s = _option(options, "timeout_s", 1.0)
        self.reconnect_delay_s = _option(options, "reconnect_delay_s", 1.0)
        self.reconnect_max_delay_s = _option(options, "reconnect_max_delay_s", 30.0)
        self.state = ConnectionState()
        # What was last emitted per tag, to report changes only.
        self._last: dict[int, tuple[Quality, str, Value | None]] = {}

    async def run(self, emit: Emit) -> None:
        delay = self.reconnect_delay_s
        first = True
        stale = False
        while True:
            # reconnect_delay=0: pymodbus does not reconnect on its own; this loop does, so that
            # every loss passes through one place that marks the tags STALE.
            client = AsyncModbusTcpClient(
                self.host, port=self.port, timeout=self.timeout_s, retries=0, reconnect_delay=0
            )
            try:
                if not await client.connect():
                    raise _Lost(f"cannot connect to {self.host}:{self.port}")
                delay = self.reconnect_delay_s
                if not first:
                    self.state.reconnects += 1
                first, stale = False, False
                self.state.connected, self.state.since = True, now()
                await self._poll_all(client, emit)
            except (_Lost, ModbusException, OSError) as lost:
                why = str(lost)
                self.state.last_error = why
                log.info("Modbus %s: %s", self.connection.endpoint, why)
            finally:
                client.close()
                if self.state.connected:
                    self.state.connected, self.state.since = False, now()
            if not stale:
                stale = True
                self._last.clear()
                for spec in self.connection.tags:
                    await self._emit(emit, self._stale(spec, self.state.last_error))
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max_delay_s)

    async def _poll_all(self, client: AsyncModbusTcpClient, emit: Emit) -> None:
        by_period: dict[int, list[int]] = {}
        for index, spec in enumerate(self.connection.tags):
            by_period.setdefault(spec.sampling_ms, []).append(index)
        # One poller per period; the first that fails (a lost connection) stops the others.
        pollers = [
            asyncio.create_task(self._poll(client, emit, period, indexes))
            for period, indexes in by_period.items()
        ]
        try:
            done, _ = await asyncio.wait(pollers, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in pollers:
                task.cancel()
            await asyncio.gather(*pollers, return_exceptions=True)

    async def _poll(
        self, client: AsyncModbusTcpClient, emit: Emit, period_ms: int, indexes: list[int]
    ) -> None:
        period = period_ms / 1000
        due = time.monotonic()
        while True:
            for index in indexes:
                await self._read(client, emit, index)
            due += period
            pause = due - time.monotonic()
            if pause < 0:  # a slow device: skip the missed polls instead of bursting to catch up
                due = time.monotonic()
                pause = 0
            await asyncio.sleep(pause)

    async def _read(self, client: AsyncModbusTcpClient, emit: Emit, index: int) -> None:
        spec, point = self.connection.tags[index], self.points[index]
        if not client.connected:
            raise _Lost("the connection was closed")
        reader = {
            Table.COIL: client.read_coils,
            Table.DISCRETE: client.read_discrete_inputs,
            Table.INPUT: client.read_input_registers,
            Table.HOLDING: client.read_holding_registers,
        }[point.table]
        try:
            response = await reader(point.address, count=point.count, device_id=self.device_id)
        except (TimeoutError, ModbusException) as exc:
            # No answer within the timeout (or a broken frame): the device is as good as gone.
            raise _Lost(f"no answer from {self.host}:{self.port}: {exc}") from exc
        received = now()
        if response.isError():
            code = getattr(response, "exception_code", 0)
            reading = self._reading(spec, None, Quality.BAD, exception_status(code), received)
        else:
            value: Value = response.bits[0] if point.type == "bool" else decode(point, response.registers)
            reading = self._reading(spec, value, Quality.GOOD, "", received)
        if self._changed(index, reading):
            await self._emit(emit, reading)

    def _changed(self, index: int, reading: Reading) -> bool:
        """Whether the reading is news: another quality or status, or a value that moved by more
        than the deadband since the last value *emitted* (so a slow drift is reported, too)."""
        seen = (reading.quality, reading.status, reading.value)
        last = self._last.get(index)
        if (
            last is not None
            and last[:2] == seen[:2]
            and _within(last[2], seen[2], self.connection.tags[index])
        ):
            return False
        self._last[index] = seen
        return True

    def _source(self, spec: TagSpec) -> Source:
        return Source(
            unit=spec.unit, protocol=Protocol.MODBUS, endpoint=self.connection.endpoint, tag=spec.tag
        )

    def _reading(
        self, spec: TagSpec, value: Value | None, quality: Quality, status: str, received: dt.datetime
    ) -> Reading:
        return Reading(
            source=self._source(spec),
            value=value,
            quality=quality,
            source_time=None,  # Modbus carries no timestamp; the gateway's time is all there is
            gateway_time=received,
            unit_of_measure=spec.unit_of_measure,
            status=status,
        )

    def _stale(self, spec: TagSpec, why: str) -> Reading:
        return self._reading(spec, None, Quality.STALE, f"connection lost: {why}", now())

    async def _emit(self, emit: Emit, reading: Reading) -> None:
        await emit(reading)
        self.state.received += 1


def _within(old: Value | None, new: Value | None, spec: TagSpec) -> bool:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (old, new))
    if numbers and spec.deadband > 0:
        return abs(typing.cast(float, new) - typing.cast(float, old)) <= spec.deadband
    return old == new


def _option(options: Mapping[str, str], name: str, default: float) -> float:
    raw = options.get(name)
    if raw is None:
        return default
    with contextlib.suppress(ValueError):
        if (value := float(raw)) > 0:
            return value
    raise ValueError(f"The Modbus option {name!r} must be a number above 0, not {raw!r}.")
