"""A scale that speaks MT-SICS over TCP, for tests and the demo.

It answers the commands Batchline uses (S, SI, SIR, T, TA, TAC, Z, @, I2,
I4; anything else ES) from a state that tests and demo users control: the
load on the pan, drift, and faults to inject. After the load changes the
reading is dynamic for ``settle_time`` seconds, moving towards the new load,
then stable. ``S``, ``T`` and ``Z`` wait for stability up to
``stable_timeout`` seconds and then answer ``I``.

Simulator-only commands on the same socket (never sent by Batchline; real
scales answer them ES), each answered ``<command> A`` or, for a bad value,
``<command> L``:

    XLOAD <value>     the gross load on the pan, in the scale's unit (negative: pan lifted)
    XADD <value>      add to the load (a scoop of powder)
    XDRIFT <value>    the load creeps by this much per second; the scale is never stable until 0
    XFAULT <fault> [<count>]   the next <count> MT-SICS commands (default 1) meet a fault:
                      ET, EL (answered so), SILENCE (no answer), DISCONNECT (connection closed),
                      GARBAGE (an unreadable answer), SPLIT (the answer sent in pieces);
                      XFAULT NONE clears them
    XSTATE            XSTATE A "gross=... net=... tare=... zero=... stable=yes|no"

Run it as its own process (``--help`` for the options):

    python -m batchline.devices.scale_sim --port 4305 --serial SIM-0001 --capacity 6200 --unit g --decimals 2
    python -m batchline.devices.scale_sim --port 4305 --send "XLOAD 512.34" --send S
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Self

from .mtsics import (
    DONE,
    DYNAMIC,
    LOGICAL,
    NOT_READY,
    OVERLOAD,
    STABLE,
    UNDERLOAD,
    LineSplitter,
    ScaleProtocolError,
    decode_line,
    encode_line,
    format_status,
    format_text,
    format_weight,
)

log = logging.getLogger("batchline.devices.scale_sim")

GARBAGE = "S S   12.3.4 g"


class Fault(StrEnum):
    ET = "ET"
    EL = "EL"
    SILENCE = "SILENCE"
    DISCONNECT = "DISCONNECT"
    GARBAGE = "GARBAGE"
    SPLIT = "SPLIT"


@dataclass(frozen=True, slots=True)
class SimState:
    """What the display would show now, rounded to the scale's readability."""

    gross: Decimal
    net: Decimal
    tare: Decimal
    zero: Decimal
    stable: bool
    overload: bool
    underload: bool


class _HangUp(Exception):
    """Close this connection without an answer."""


class ScaleSimulator:
    """The simulated balance: one pan, shared by every connection to it.

    The control methods (``place``, ``add``, ``drift``, ``inject``) may be
    called from any thread, so a test can drive a simulator that serves from
    a background thread (``running()``).
    """

    def __init__(
        self,
        *,
        serial: str = "SIM-0001",
        model: str = "Batchline SIM",
        capacity: Decimal | int | str = 6200,
        unit: str = "g",
        decimals: int = 2,
        settle_time: float = 1.0,
        stable_timeout: float = 3.0,
        stream_interval: float = 0.2,
        zero_range: Decimal | int | str | None = None,
    ) -> None:
        self.serial = serial
        self.model = model
        self.unit = unit
        self.step = Decimal(1).scaleb(-decimals)
        self.capacity = Decimal(capacity).quantize(self.step)
        # Zero setting is allowed within ±2 % of capacity (a common setting),
        # and below that range the scale reports underload.
        self.zero_range = Decimal(zero_range) if zero_range is not None else self.capacity * Decimal("0.02")
        self.settle_time = settle_time
        self.stable_timeout = stable_timeout
        self.stream_interval = stream_interval
        # Validate what a scale would send before anyone connects.
        format_text("I4", serial)
        format_weight("S", STABLE, self.capacity, unit)

        self._lock = threading.Lock()
        self._from = self._to = Decimal(0)
        self._changed_at = float("-inf")
        self._drift = Decimal(0)
        self._drift_since = 0.0
        self._tare = Decimal(0)
        self._zero = Decimal(0)
        self._faults: deque[Fault] = deque()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- control (any thread) ------------------------------------------------------------

    def place(self, load: Decimal | int | str) -> None:
        """Put ``load`` (gross, in the scale's unit) on the pan; the reading settles towards it."""
        load = Decimal(load)
        if not load.is_finite():
            raise ValueError(f"not a load: {load}")
        with self._lock:
            now = time.monotonic()
            self._from, self._to = self._shown(now), load
            self._drift, self._changed_at = Decimal(0), now

    def add(self, delta: Decimal | int | str) -> None:
        with self._lock:
            target = self._shown(time.monotonic()) if self._drift else self._to
        self.place(target + Decimal(delta))

    def drift(self, per_second: Decimal | int | str) -> None:
        """Let the load creep; a drifting scale is never stable. 0 stops it, and the load then settles."""
        with self._lock:
            now = time.monotonic()
            self._from = self._to = self._shown(now)
            self._drift, self._drift_since, self._changed_at = Decimal(per_second), now, now

    def inject(self, fault: Fault | str, count: int = 1) -> None:
        """The next ``count`` MT-SICS commands, on any connection, meet ``fault``."""
        with self._lock:
            self._faults.extend([Fault(fault)] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def state(self) -> SimState:
        with self._lock:
            return self._state(time.monotonic())

    # -- serving ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host``:``port`` (0: any free port); returns the port."""
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    @contextlib.contextmanager
    def running(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[Self]:
        """Serve from an event loop in a background thread, for blocking code and tests."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"scale-sim-{self.serial}", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(host, port), loop).result(timeout=10)
            yield self
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Answers leave as written, so a split answer really arrives in pieces.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conversation = _Session(self, writer)
        try:
            await conversation.run(reader)
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # -- the scale -------------------------------------------------------------------------

    def _shown(self, now: float) -> Decimal:
        """The load the cell senses now, before rounding (call with the lock held)."""
        target = self._to + self._drift * Decimal(now - self._drift_since) if self._drift else self._to
        elapsed = now - self._changed_at
        if self.settle_time <= 0 or elapsed >= self.settle_time:
            return target
        return self._from + (target - self._from) * Decimal(elapsed / self.settle_time)

    def _state(self, now: float) -> SimState:
        gross_exact = self._shown(now) - self._zero
        gross = gross_exact.quantize(self.step, ROUND_HALF_UP)
        return SimState(
            gross=gross,
            net=gross - self._tare,
            tare=self._tare.quantize(self.step),
            zero=self._zero.quantize(self.step),
            stable=not self._drift and now - self._changed_at >= self.settle_time,
            overload=gross_exact > self.capacity,
            underload=gross_exact < -self.zero_range,
        )

    async def _settled(self) -> SimState:
        """The state once stable, or as it is when ``stable_timeout`` runs out."""
        deadline = time.monotonic() + self.stable_timeout
        while True:
            with self._lock:
                now = time.monotonic()
                state = self._state(now)
                settles_in = float("inf") if self._drift else self._changed_at + self.settle_time - now
            if state.stable or now >= deadline:
                return state
            await asyncio.sleep(max(min(settles_in, deadline - now), 0.001))

    def take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    async def answer(self, word: str, params: list[str]) -> str:
        """The answer to one MT-SICS command (not SIR, which streams)."""
        if word in ("S", "SI") and not params:
            state = await self._settled() if word == "S" else self.state()
            return self.weight_answer(state, stable_only=word == "S")
        if word == "T" and not params:
            state = await self._settled()
            if state.overload:
                return format_status("T", OVERLOAD)
            if state.underload or state.gross < 0:
                return format_status("T", UNDERLOAD)
            if not state.stable:
                return format_status("T", NOT_READY)
            with self._lock:
                self._tare = state.gross
            return format_weight("T", STABLE, state.gross, self.unit)
        if word == "TA":
            return (
                self._preset_tare(params)
                if params
                else format_weight("TA", DONE, self.state().tare, self.unit)
            )
        if word == "TAC" and not params:
            with self._lock:
                self._tare = Decimal(0)
            return format_status("TAC", DONE)
        if word == "Z" and not params:
            return await self._zero_set()
        if word == "@" and not params:
            with self._lock:
                self._tare = Decimal(0)
            return format_text("I4", self.serial)
        if word == "I2" and not params:
            return format_text("I2", f"{self.model} {self.capacity} {self.unit}")
        if word == "I4" and not params:
            return format_text("I4", self.serial)
        return "ES"

    def weight_answer(self, state: SimState, *, stable_only: bool) -> str:
        """The answer to S (``stable_only``), SI or one line of SIR."""
        if state.overload:
            return format_status("S", OVERLOAD)
        if state.underload:
            return format_status("S", UNDERLOAD)
        if stable_only and not state.stable:
            return format_status("S", NOT_READY)
        return format_weight("S", STABLE if state.stable else DYNAMIC, state.net, self.unit)

    def _preset_tare(self, params: list[str]) -> str:
        value = _decimal(params[0]) if len(params) == 2 else None
        if value is None:
            return "ES"
        if params[1] != self.unit or not 0 <= value <= self.capacity:
            return format_status("TA", LOGICAL)
        tare = value.quantize(self.step, ROUND_HALF_UP)
        with self._lock:
            self._tare = tare
        return format_weight("TA", DONE, tare, self.unit)

    async def _zero_set(self) -> str:
        state = await self._settled()
        if not state.stable:
            return format_status("Z", NOT_READY)
        if state.gross > self.zero_range:
            return format_status("Z", OVERLOAD)
        if state.gross < -self.zero_range:
            return format_status("Z", UNDERLOAD)
        with self._lock:
            # What the pan holds now becomes zero, and a tare goes with the old zero.
            self._zero = self._shown(time.monotonic())
            self._tare = Decimal(0)
        return format_status("Z", DONE)

    def control(self, word: str, params: list[str]) -> str:
        """The simulator's own X commands (module docstring)."""
        value = _decimal(params[0]) if len(params) == 1 else None
        if word == "XSTATE" and not params:
            s = self.state()
            stable = "yes" if s.stable else "no"
            return format_text(
                "XSTATE", f"gross={s.gross} net={s.net} tare={s.tare} zero={s.zero} stable={stable}"
            )
        if word in ("XLOAD", "XADD", "XDRIFT"):
            if value is None:
                return format_status(word, LOGICAL)
            {"XLOAD": self.place, "XADD": self.add, "XDRIFT": self.drift}[word](value)
            return format_status(word, DONE)
        if word == "XFAULT" and params:
            name, count = params[0].upper(), params[1] if len(params) == 2 else "1"
            if name == "NONE" and len(params) == 1:
                self.clear_faults()
                return format_status(word, DONE)
            if name not in Fault.__members__ or not count.isdigit() or len(params) > 2:
                return format_status(word, LOGICAL)
            self.inject(Fault(name), int(count))
            return format_status(word, DONE)
        return "ES"


class _Session:
    """One client connection: commands run one at a time, in order.

    ``@`` cancels whatever is running (a wait for stability, a stream) and
    drops commands queued behind it, as the reset of a real balance does; any
    command ends a running ``SIR`` stream.
    """

    def __init__(self, scale: ScaleSimulator, writer: asyncio.StreamWriter) -> None:
        self.scale = scale
        self.writer = writer
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.running: asyncio.Task[None] | None = None
        self.streaming = False

    async def run(self, reader: asyncio.StreamReader) -> None:
        listening = asyncio.create_task(self._listen(reader))
        working = asyncio.create_task(self._work())
        try:
            await asyncio.wait({listening, working}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (listening, working, self.running):
                if task is not None:
                    task.cancel()
            await asyncio.gather(listening, working, return_exceptions=True)

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        splitter = LineSplitter()
        while data := await reader.read(1024):
            try:
                lines = splitter.feed(data)
            except ScaleProtocolError:
                lines = [b"\x00"]  # an endless line: answered ET below
            for line in lines:
                if line == b"@":
                    while not self.queue.empty():
                        self.queue.get_nowait()
                if self.running is not None and (line == b"@" or self.streaming):
                    self.running.cancel()
                self.queue.put_nowait(line)

    async def _work(self) -> None:
        while True:
            line = await self.queue.get()
            self.running = asyncio.create_task(self._execute(line))
            await asyncio.wait({self.running})
            if not self.running.cancelled() and (error := self.running.exception()) is not None:
                if not isinstance(error, _HangUp):
                    log.error("simulator failed on %r", line, exc_info=error)
                return  # end the connection
            self.running = None

    async def _execute(self, line: bytes) -> None:
        try:
            text = decode_line(line)
        except ScaleProtocolError:
            await self._send("ET")  # what a balance says of a corrupted character
            return
        word, *params = text.split() or [""]
        # Faults meet MT-SICS commands only, so a test can still steer the simulator.
        fault = None if word.startswith("X") else self.scale.take_fault()
        if fault is Fault.SILENCE:
            log.info("%s -> (silence)", text)
            return
        if fault is Fault.DISCONNECT:
            log.info("%s -> (hang up)", text)
            raise _HangUp
        split = fault is Fault.SPLIT
        if fault in (Fault.ET, Fault.EL):
            answer = str(fault)
        elif fault is Fault.GARBAGE:
            answer = GARBAGE
        elif word == "SIR" and not params:
            log.info("%s -> (streaming)", text)
            await self._stream(split=split)
            return
        elif word.startswith("X"):
            answer = self.scale.control(word, params)
        else:
            answer = await self.scale.answer(word, params)
        log.info("%s -> %s", text, answer)
        await self._send(answer, split=split)

    async def _stream(self, *, split: bool) -> None:
        self.streaming = True
        try:
            while True:
                await self._send(self.scale.weight_answer(self.scale.state(), stable_only=False), split=split)
                split = False
                await asyncio.sleep(self.scale.stream_interval)
        finally:
            self.streaming = False

    async def _send(self, line: str, *, split: bool = False) -> None:
        data = encode_line(line)
        if not split:
            self.writer.write(data)
            await self.writer.drain()
            return
        # In three pieces, the last one between CR and LF.
        for piece in (data[:3], data[3:-1], data[-1:]):
            self.writer.write(piece)
            await self.writer.drain()
            await asyncio.sleep(0.01)


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _send_lines(host: str, port: int, lines: Sequence[str], timeout: float) -> int:
    """Send each line, print the answer: a manual terminal for the simulator or a real scale."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        splitter, pending = LineSplitter(), deque[bytes]()
        for line in lines:
            sock.sendall(encode_line(line))
            while not pending:
                data = sock.recv(4096)
                if not data:
                    print("(connection closed)", file=sys.stderr)
                    return 1
                pending.extend(splitter.feed(data))
            print(pending.popleft().decode("ascii", "replace"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m batchline.devices.scale_sim",
        description="An MT-SICS scale simulator over TCP (see docs/devices.md).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4305, help="TCP port (default 4305)")
    parser.add_argument("--serial", default="SIM-0001", help="serial number answered to I4")
    parser.add_argument("--model", default="Batchline SIM", help="type answered to I2")
    parser.add_argument("--capacity", type=Decimal, default=Decimal(6200), help="capacity (default 6200)")
    parser.add_argument("--unit", default="g", help="unit (default g)")
    parser.add_argument("--decimals", type=int, default=2, help="decimal places shown (readability)")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds a load change takes to settle")
    parser.add_argument(
        "--stable-timeout", type=float, default=3.0, help="how long S, T, Z wait for stability"
    )
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between SIR readings")
    parser.add_argument("--load", type=Decimal, default=Decimal(0), help="load on the pan at start")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")
    parser.add_argument(
        "--send",
        action="append",
        metavar="LINE",
        help="instead of serving: connect to HOST:PORT, send LINE (repeatable), print each answer",
    )
    args = parser.parse_args(argv)
    if args.send:
        return _send_lines(args.host, args.port, args.send, timeout=args.stable_timeout + 5)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    sim = ScaleSimulator(
        serial=args.serial,
        model=args.model,
        capacity=args.capacity,
        unit=args.unit,
        decimals=args.decimals,
        settle_time=args.settle,
        stable_timeout=args.stable_timeout,
        stream_interval=args.interval,
    )
    sim.place(args.load)

    async def serve() -> None:
        await sim.start(args.host, args.port)
        print(f"MT-SICS scale simulator {sim.serial} listening on {args.host}:{sim.port}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await sim.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
