"""Clients of an MT-SICS scale over TCP: a blocking one and an asyncio one (WD-01, DI-01, DI-04).

Both hold one connection, opened on first use. On each new connection they
read the scale's serial number (``I4``) before anything else, so every
reading carries the identity of the scale that actually answered, and a
scale swapped behind an address is refused when ``expected_serial`` is given
(P11-08).

Every answer has a deadline. When one is missed, or an answer makes no
sense, the connection is dropped and the next call opens a fresh one: a late
answer to an old question can then never be taken for the answer to a new
one. A refusal the scale states itself (``S I``, ``S +``, ``ES``...) keeps the
connection, since the conversation is still in step.

Neither client is safe to share between threads or tasks: one conversation,
one caller at a time. Many scales accept a single TCP connection, which is
why device I/O belongs to one device process (docs/devices.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import Self, TypeVar

from .mtsics import (
    Identity,
    LineSplitter,
    Reading,
    ScaleDisconnected,
    ScaleNotReady,
    ScaleOverload,
    ScaleProtocolError,
    ScaleRefusal,
    ScaleTimeout,
    ScaleUnderload,
    ScaleWrongDevice,
    acknowledgement,
    command_line,
    decode_line,
    encode_line,
    format_value,
    text_answer,
    weight_reading,
)

T = TypeVar("T")
DEFAULT_TIMEOUT = 5.0
# What a reading stream passes on instead of ending: the scale keeps streaming
# through them, and a display shows them.
PASSING = (ScaleNotReady, ScaleOverload, ScaleUnderload)


class _Conversation:
    """What both clients share: where the scale is, how long to wait, whom we expect."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        connect_timeout: float | None = None,
        expected_serial: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.connect_timeout = timeout if connect_timeout is None else connect_timeout
        self.expected_serial = expected_serial
        self._serial: str | None = None

    @property
    def serial(self) -> str | None:
        """The serial number read on the current connection; None before the first call."""
        return self._serial

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _timed_out(self, command: str | None, seconds: float) -> ScaleTimeout:
        what = f"did not answer {command} within {seconds:g} s" if command else "did not accept a connection"
        return ScaleTimeout(
            f"No weight was taken: the scale at {self.address} {what}. "
            "Check that it is switched on and connected.",
            command=command,
            serial=self._serial,
        )

    def _disconnected(self, command: str | None, error: OSError | None = None) -> ScaleDisconnected:
        why = f" ({error.strerror or error})" if error else ""
        return ScaleDisconnected(
            f"No weight was taken: the connection to the scale at {self.address} was refused or closed{why}. "
            "Check that it is switched on and connected.",
            command=command,
            serial=self._serial,
        )

    def _identified(self, raw: str) -> str:
        serial = text_answer(raw, command="I4")
        if self.expected_serial is not None and serial != self.expected_serial:
            raise ScaleWrongDevice(
                f"The scale at {self.address} is serial number {serial}, "
                f"not {self.expected_serial} as registered: it cannot be used.",
                raw=raw,
                command="I4",
                serial=serial,
            )
        return serial

    def _weight(self, command: str) -> Callable[[str], Reading]:
        return lambda raw: weight_reading(raw, command=command, serial=self._known_serial())

    def _acknowledged(self, command: str) -> Callable[[str], None]:
        return lambda raw: acknowledgement(raw, command=command, serial=self._serial)

    def _known_serial(self) -> str:
        assert self._serial is not None, "identified on connecting"
        return self._serial


class MtSicsScale(_Conversation):
    """A blocking client, for a service or a command line.

    >>> with MtSicsScale("10.0.4.21", 4305, timeout=5, expected_serial="B123456789") as scale:
    ...     reading = scale.stable_weight()
    """

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        connect_timeout: float | None = None,
        expected_serial: str | None = None,
    ) -> None:
        super().__init__(
            host, port, timeout, connect_timeout=connect_timeout, expected_serial=expected_serial
        )
        self._sock: socket.socket | None = None
        self._splitter = LineSplitter()
        self._lines: deque[bytes] = deque()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._serial = None
        self._splitter = LineSplitter()
        self._lines.clear()

    # -- the commands ----------------------------------------------------------

    def identify(self) -> Identity:
        """``I2`` and ``I4``: the scale's own words for its type and capacity, and its serial number."""
        model = self._ask("I2", lambda raw: text_answer(raw, command="I2", serial=self._serial))
        serial = self._ask("I4", self._identified)
        self._serial = serial
        return Identity(serial=serial, model=model)

    def stable_weight(self, *, timeout: float | None = None) -> Reading:
        """``S``: the next stable net weight; the only reading a dispense may take.

        The scale itself waits for the load to settle, so allow ``timeout``
        longer than the scale's own stability timeout.
        """
        return self._ask("S", self._weight("S"), timeout=timeout)

    def immediate_weight(self) -> Reading:
        """``SI``: the net weight now, stable or not (``Reading.stable``); for display."""
        return self._ask("SI", self._weight("SI"))

    def tare(self, *, timeout: float | None = None) -> Reading:
        """``T``: take the next stable weight as tare; returns the tare."""
        return self._ask("T", self._weight("T"), timeout=timeout)

    def tare_value(self) -> Reading:
        """``TA``: the tare held by the scale."""
        return self._ask("TA", self._weight("TA"))

    def preset_tare(self, value: Decimal, unit: str) -> Reading:
        """``TA <value> <unit>``: set a known tare (a container's registered weight)."""
        return self._ask("TA", self._weight("TA"), format_value(value, 0), unit)

    def clear_tare(self) -> None:
        """``TAC``."""
        self._ask("TAC", self._acknowledged("TAC"))

    def zero(self, *, timeout: float | None = None) -> None:
        """``Z``: zero at the next stable weight (this also clears the tare)."""
        self._ask("Z", self._acknowledged("Z"), timeout=timeout)

    def reset(self) -> str:
        """``@``: cancel what is running and clear the tare; returns the serial number."""
        self._serial = self._ask("@", self._identified)
        return self._serial

    def readings(self) -> Iterator[Reading | ScaleRefusal]:
        """``SIR``: readings as the scale sends them, until the iterator is closed (then ``@``).

        Busy, overload and underload pass as items, not exceptions: the scale
        keeps sending through them. Anything else ends the stream.
        """
        self._send("SIR")
        try:
            while True:
                raw = self._read_line("SIR", self.timeout)
                try:
                    yield self._weight("SIR")(raw)
                except PASSING as refusal:
                    yield refusal
        except ScaleRefusal:
            self.close()
            raise
        finally:
            if self._sock is not None:
                self._cancel_stream()

    # -- the conversation ------------------------------------------------------

    def _ask(
        self, command: str, meaning: Callable[[str], T], *params: str, timeout: float | None = None
    ) -> T:
        self._send(command, *params)
        raw = self._read_line(command, self.timeout if timeout is None else timeout)
        try:
            return meaning(raw)
        except (ScaleProtocolError, ScaleWrongDevice):
            self.close()
            raise

    def _send(self, command: str, *params: str) -> None:
        self._connect()
        if self._lines or self._splitter.pending:
            # Lines nobody asked for: the conversation is out of step.
            self.close()
            self._connect()
        self._write(command_line(command, *params), command)

    def _write(self, line: str, command: str) -> None:
        try:
            assert self._sock is not None
            self._sock.sendall(encode_line(line))
        except OSError as error:
            self.close()
            raise self._disconnected(command, error) from error

    def _read_line(self, command: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        try:
            while not self._lines:
                sock = self._sock
                remaining = deadline - time.monotonic()
                if sock is None or remaining <= 0:
                    raise self._timed_out(command, seconds)
                sock.settimeout(remaining)
                try:
                    data = sock.recv(4096)
                except TimeoutError:
                    raise self._timed_out(command, seconds) from None
                except OSError as error:
                    raise self._disconnected(command, error) from error
                if not data:
                    raise self._disconnected(command)
                self._lines.extend(self._splitter.feed(data))
            return decode_line(self._lines.popleft())
        except ScaleRefusal:
            self.close()
            raise

    def _connect(self) -> None:
        if self._sock is not None:
            return
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except TimeoutError:
            raise self._timed_out(None, self.connect_timeout) from None
        except OSError as error:
            raise self._disconnected(None, error) from error
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._write("I4", "I4")
        try:
            self._serial = self._identified(self._read_line("I4", self.timeout))
        except ScaleWrongDevice:
            self.close()
            raise

    def _cancel_stream(self) -> None:
        # Readings already on their way come before the answer to @: skip them.
        deadline = time.monotonic() + self.timeout
        try:
            self._write("@", "@")
            while not (raw := self._read_line("@", deadline - time.monotonic())).startswith("I4 "):
                pass
            self._serial = self._identified(raw)
        except ScaleRefusal:
            self.close()


class AsyncMtSicsScale(_Conversation):
    """The same client for an asyncio device process; every command is a coroutine."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        connect_timeout: float | None = None,
        expected_serial: str | None = None,
    ) -> None:
        super().__init__(
            host, port, timeout, connect_timeout=connect_timeout, expected_serial=expected_serial
        )
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._splitter = LineSplitter()
        self._lines: deque[bytes] = deque()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        self._serial = None
        self._splitter = LineSplitter()
        self._lines.clear()
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1)

    async def identify(self) -> Identity:
        model = await self._ask("I2", lambda raw: text_answer(raw, command="I2", serial=self._serial))
        serial = await self._ask("I4", self._identified)
        self._serial = serial
        return Identity(serial=serial, model=model)

    async def stable_weight(self, *, timeout: float | None = None) -> Reading:
        return await self._ask("S", self._weight("S"), timeout=timeout)

    async def immediate_weight(self) -> Reading:
        return await self._ask("SI", self._weight("SI"))

    async def tare(self, *, timeout: float | None = None) -> Reading:
        return await self._ask("T", self._weight("T"), timeout=timeout)

    async def tare_value(self) -> Reading:
        return await self._ask("TA", self._weight("TA"))

    async def preset_tare(self, value: Decimal, unit: str) -> Reading:
        return await self._ask("TA", self._weight("TA"), format_value(value, 0), unit)

    async def clear_tare(self) -> None:
        await self._ask("TAC", self._acknowledged("TAC"))

    async def zero(self, *, timeout: float | None = None) -> None:
        await self._ask("Z", self._acknowledged("Z"), timeout=timeout)

    async def reset(self) -> str:
        self._serial = await self._ask("@", self._identified)
        return self._serial

    async def readings(self) -> AsyncIterator[Reading | ScaleRefusal]:
        """As ``MtSicsScale.readings``; close it with ``contextlib.aclosing``."""
        await self._send("SIR")
        try:
            while True:
                raw = await self._read_line("SIR", self.timeout)
                try:
                    yield self._weight("SIR")(raw)
                except PASSING as refusal:
                    yield refusal
        except ScaleRefusal:
            await self.close()
            raise
        finally:
            if self._writer is not None:
                await self._cancel_stream()

    async def _ask(
        self, command: str, meaning: Callable[[str], T], *params: str, timeout: float | None = None
    ) -> T:
        await self._send(command, *params)
        raw = await self._read_line(command, self.timeout if timeout is None else timeout)
        try:
            return meaning(raw)
        except (ScaleProtocolError, ScaleWrongDevice):
            await self.close()
            raise

    async def _send(self, command: str, *params: str) -> None:
        await self._connect()
        if self._lines or self._splitter.pending:
            await self.close()
            await self._connect()
        await self._write(command_line(command, *params), command)

    async def _write(self, line: str, command: str) -> None:
        try:
            assert self._writer is not None
            self._writer.write(encode_line(line))
            await asyncio.wait_for(self._writer.drain(), self.timeout)
        except TimeoutError:
            await self.close()
            raise self._timed_out(command, self.timeout) from None
        except OSError as error:
            await self.close()
            raise self._disconnected(command, error) from error

    async def _read_line(self, command: str, seconds: float) -> str:
        try:
            async with asyncio.timeout(seconds):
                while not self._lines:
                    assert self._reader is not None
                    try:
                        data = await self._reader.read(4096)
                    except OSError as error:
                        raise self._disconnected(command, error) from error
                    if not data:
                        raise self._disconnected(command)
                    self._lines.extend(self._splitter.feed(data))
            return decode_line(self._lines.popleft())
        except TimeoutError:
            await self.close()
            raise self._timed_out(command, seconds) from None
        except ScaleRefusal:
            await self.close()
            raise

    async def _connect(self) -> None:
        if self._writer is not None:
            return
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout
            )
        except TimeoutError:
            raise self._timed_out(None, self.connect_timeout) from None
        except OSError as error:
            raise self._disconnected(None, error) from error
        await self._write("I4", "I4")
        try:
            self._serial = self._identified(await self._read_line("I4", self.timeout))
        except ScaleWrongDevice:
            await self.close()
            raise

    async def _cancel_stream(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            await self._write("@", "@")
            while not (raw := await self._read_line("@", deadline - time.monotonic())).startswith("I4 "):
                pass
            self._serial = self._identified(raw)
        except ScaleRefusal:
            await self.close()
