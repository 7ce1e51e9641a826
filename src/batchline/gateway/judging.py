"""The gateway's judge: each reading of a monitored parameter against its running step's limits (S95-06).

:class:`Judging` holds one ``rules.alarms.AlarmJudge`` per monitored value of every running step
(``execution.monitoring.watched``, refreshed by the gateway now and then) and feeds it each
reading of the tag that carries that parameter on that step's unit. What a judge says is kept on
the batch at once (``execution.monitoring.event_record``: once, however often it is said). A
reading older than the step's start, a historical one (Sparkplug's store-and-forward) or one
older than what the judge has seen is stored but never judged as the value now. Before a judge's
event is kept, the step is asked whether it still runs (rarely: only when there is something to
keep): a step completed since the last refresh raises nothing more.

A unit's own state (the parameters ``packml_state`` and ``packml_mode``) goes to
``equipment.services.machine_report``, which the claim gate reads; a stale or Bad state is
reported as unknown.

Plain synchronous code on the Django ORM: the gateway calls it from one thread, in order.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal, InvalidOperation

import pint

from batchline.audit.services import Actor
from batchline.equipment import services as equipment
from batchline.execution import monitoring
from batchline.execution.models import BatchStep, StepState
from batchline.rules.alarms import AlarmJudge, Judged
from batchline.units import UnknownUnit, convert

from .readings import Quality, Reading

log = logging.getLogger(__name__)

GATEWAY = Actor(id=None, username="gateway", name="Equipment gateway", via="system")


def _number(reading: Reading, unit: str, target: str) -> Decimal | None:
    """The reading as a number in the monitor's unit; None when it is none or cannot be converted."""
    if reading.value is None or isinstance(reading.value, bool | str):
        return None
    try:
        number = Decimal(str(reading.value))
    except InvalidOperation:
        return None
    if not unit or not target or unit == target:
        return number
    try:
        return convert(number, unit, target)
    except (UnknownUnit, pint.errors.PintError, ValueError):
        log.warning(
            "%s: %s cannot be converted from %r to %r", reading.source.unit, reading.source.tag, unit, target
        )
        return None


class Judging:
    def __init__(self, actor: Actor = GATEWAY) -> None:
        self.actor = actor
        self._judges: dict[tuple[int, str], tuple[monitoring.Watched, AlarmJudge]] = {}
        self._by_source: dict[tuple[str, str], list[tuple[int, str]]] = {}

    def refresh(self) -> None:
        """What runs now: judges for newly started steps, none for finished ones (kept ones keep state)."""
        judges: dict[tuple[int, str], tuple[monitoring.Watched, AlarmJudge]] = {}
        for w in monitoring.watched():
            key = (w.step_id, w.name)
            judges[key] = self._judges.get(key) or (w, AlarmJudge(w.limits, since=w.started_at))
        self._judges = judges
        by_source: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for key, (w, _) in judges.items():
            by_source.setdefault((w.equipment, w.name), []).append(key)
        self._by_source = by_source

    @property
    def watching(self) -> int:
        return len(self._judges)

    def reading(self, reading: Reading, parameter: str, unit_of_measure: str = "") -> list[Judged]:
        """Judge one reading of ``parameter`` (the tag's configured name); returns what was said."""
        if parameter in (equipment.MACHINE_STATE, equipment.MACHINE_MODE):
            self._machine(reading, parameter)
            return []
        said: list[Judged] = []
        for key in list(self._by_source.get((reading.source.unit, parameter), [])):
            w, judge = self._judges[key]
            at = reading.source_time or reading.gateway_time
            if reading.historical or at < w.started_at:
                continue
            if judge.last_value_at is not None and at < judge.last_value_at:
                continue  # late: stored, not judged as the value now
            usable = reading.quality in (Quality.GOOD, Quality.UNCERTAIN)
            number = _number(reading, unit_of_measure, w.unit) if usable else None
            events = judge.value(
                at, number, usable=number is not None, uncertain=reading.quality == Quality.UNCERTAIN
            )
            if events:
                events = self._within_step(key, events)
            for event in events:
                monitoring.event_record(actor=self.actor, watched=w, judged=event, tag=reading.source.tag)
            said += events
        return said

    def _within_step(self, key: tuple[int, str], events: list[Judged]) -> list[Judged]:
        """The events that happened while the step ran, asked only when its judge has something to say.

        The judge learns which steps run at the gateway's status round, seconds apart: a breach after
        a step completed since is not that step's (no exception on it), while a reading from before
        its completion, forwarded late from the spool, still counts. A finished step's judge is let
        go once what it is told is past the step's end.
        """
        state, ended = BatchStep.objects.filter(pk=key[0]).values_list("state", "completed_at").first() or (
            None,
            None,
        )
        if state == StepState.RUNNING:
            return events
        kept = [e for e in events if ended is not None and e.at <= ended]
        if len(kept) < len(events):
            w, _ = self._judges.pop(key)
            keys = self._by_source.get((w.equipment, w.name), [])
            if key in keys:
                keys.remove(key)
        return kept

    def silence(self, now: dt.datetime) -> list[Judged]:
        """No value for a monitor's signal timeout is a loss of signal: asked every few seconds."""
        said: list[Judged] = []
        for key, (w, judge) in list(self._judges.items()):
            events = judge.silence(now)
            if events:
                events = self._within_step(key, events)
            for event in events:
                monitoring.event_record(actor=self.actor, watched=w, judged=event)
                said.append(event)
        return said

    def _machine(self, reading: Reading, parameter: str) -> None:
        known = reading.quality in (Quality.GOOD, Quality.UNCERTAIN) and isinstance(
            reading.value, int | float
        )
        value = int(reading.value) if known and isinstance(reading.value, int | float) else None
        which = "state" if parameter == equipment.MACHINE_STATE else "mode"
        try:
            equipment.machine_report(
                actor=self.actor,
                code=reading.source.unit,
                at=reading.source_time or reading.gateway_time,
                known=known,
                **{which: value},
            )
        except equipment.EquipmentRefused as exc:  # a unit the master data does not know
            log.warning("machine state of %s not kept: %s", reading.source.unit, exc)
