"""Simulated scales: which registered scales are simulators, serving them beside the web server, and what
the demo's operator puts on their pans.

A scale registered with ``Equipment.simulated`` is answered by an MT-SICS
simulator (``devices.scale_sim``) at its host and port, made from its own
registration (capacity, unit, readability), so the demo's scales are whatever
the demo registers, however the web server is started: ``batchline demo`` and
``batchline runserver`` both go through this app's ``runserver``
(:func:`serving`). Never in production: there a scale is a scale.

A simulator does not know what the operator pours; :func:`place` tells it
(MT-SICS ``XLOAD``, a simulator-only command a real scale answers ``ES``),
for a scale registered as simulated only. What the booth then records is the
stable reading the simulator gives, through the same weighing code as a real
scale's.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError

from batchline.devices.mtsics import LineSplitter, ScaleProtocolError, decode_line, encode_line
from batchline.devices.scale_sim import ScaleSimulator
from batchline.equipment.models import Equipment
from batchline.equipment.selectors import normalise_code
from batchline.rules.verdict import Refused

# Seconds a load change takes to settle: long enough to see the reading move on the booth screen.
SETTLE_SECONDS = 1.0
LOAD_LIMIT = Decimal("1e9")


class SimulatorRefused(Refused):
    """The simulator was not told anything; ``verdict.reasons`` say why."""


_refuse = SimulatorRefused.because


@dataclass(frozen=True)
class SimulatedScale:
    """A scale registered as simulated, as its simulator is made from it."""

    code: str
    name: str
    host: str
    port: int
    capacity: Decimal
    unit: str
    decimals: int  # from the readability: 0.1 g shows one decimal

    def simulator(self) -> ScaleSimulator:
        return ScaleSimulator(
            serial=f"SIM-{self.code}",
            capacity=self.capacity,
            unit=self.unit,
            decimals=self.decimals,
            settle_time=SETTLE_SECONDS,
        )


def _decimals(readability: Decimal | None) -> int:
    if readability is None or readability <= 0:
        return 2
    exponent = readability.normalize().as_tuple().exponent
    return max(0, -int(exponent))


def registered() -> list[SimulatedScale]:
    """Every scale registered as simulated, with where it listens, in code order."""
    units = (
        Equipment.objects.filter(simulated=True, equipment_class__is_scale=True, port__isnull=False)
        .exclude(host="")
        .order_by("code")
    )
    return [
        SimulatedScale(
            code=u.code,
            name=u.name,
            host=u.host,
            port=int(u.port),
            capacity=Decimal(u.capacity) if u.capacity is not None else Decimal(6200),
            unit=u.unit or "g",
            decimals=_decimals(u.readability),
        )
        for u in units
    ]


@contextlib.contextmanager
def serving(report: Callable[[str], object]) -> Iterator[list[SimulatedScale]]:
    """Serve every registered simulated scale while the block runs; stop them after it.

    A port another program holds is reported and that simulator left out; the
    block runs all the same (the web server serves without it). Outside
    production only; a database that cannot be read (not migrated yet) starts none.
    """
    try:
        scales = registered()
    except DatabaseError as exc:
        report(f"Scale simulators not started: the database cannot be read yet ({exc}).")
        yield []
        return
    if settings.PRODUCTION:
        if scales:
            report(
                "Scales registered as simulated (" + ", ".join(s.code for s in scales) + ") are not started: "
                "this is a production installation."
            )
        yield []
        return
    started: list[SimulatedScale] = []
    with contextlib.ExitStack() as stack:
        for scale in scales:
            try:
                stack.enter_context(scale.simulator().running(scale.host, scale.port))
            except OSError as exc:
                report(
                    f"Scale simulator {scale.code} not started: {scale.host}:{scale.port} is taken or not "
                    f"available ({exc.strerror or exc}); serving without it."
                )
                continue
            started.append(scale)
            report(
                f"Scale simulator {scale.code} ({scale.name}) on {scale.host}:{scale.port}, MT-SICS, "
                f"up to {scale.capacity.normalize():f} {scale.unit}, empty: put a load on it from the "
                "weigh booth (Simulator: place …)."
            )
        yield started


def place(code: str, load: Decimal) -> str:
    """Put ``load`` (gross, in the scale's unit) on the pan of the simulated scale ``code``; what it answered.

    Refused, telling the simulator nothing: a scale not registered as simulated
    (a real one is never sent a simulator's command), production, a load that
    is no plausible number, a simulator that does not answer.
    """
    if settings.PRODUCTION:
        raise _refuse("SIMULATOR_IN_PRODUCTION", "Simulated scales do not run in production.")
    unit = Equipment.objects.filter(code=normalise_code(code)).select_related("equipment_class").first()
    if unit is None or not unit.equipment_class.is_scale:
        raise _refuse("UNKNOWN_SCALE", f"No scale has the code {code.strip()[:40]!r}.")
    if not unit.simulated or not unit.host or not unit.port:
        raise _refuse(
            "NOT_SIMULATED", f"{unit.code} is a real scale: put the material on its pan, it weighs by itself."
        )
    if not load.is_finite() or load < 0 or load >= LOAD_LIMIT:
        raise _refuse("NOT_A_LOAD", f"{load} {unit.unit} is not a load to put on a scale.")
    line = f"XLOAD {load:f}"
    try:
        with socket.create_connection((unit.host, unit.port), timeout=2.0) as sock:
            sock.sendall(encode_line(line))
            splitter, answer = LineSplitter(), None
            while answer is None:
                data = sock.recv(1024)
                if not data:
                    break
                lines = splitter.feed(data)
                answer = decode_line(lines[0]) if lines else None
    except (OSError, ScaleProtocolError) as exc:
        raise _refuse(
            "SIMULATOR_NOT_RUNNING",
            f"The simulator of {unit.code} does not answer at {unit.host}:{unit.port} ({exc}): serve with "
            "batchline runserver or batchline demo, which start it.",
        ) from exc
    if answer != "XLOAD A":
        raise _refuse("SIMULATOR_REFUSED", f"The simulator of {unit.code} answered {answer!r} to {line!r}.")
    return f"{unit.code}: {load:f} {unit.unit} placed on the pan."
