"""Process values from the machine, judged while their step runs, recorded on the batch (S95-06, IPC-01).

A step's ``monitors`` (recipes/document.py, Monitor) name values the equipment gateway reads
from the unit an earlier equipment step identified. The gateway asks :func:`watched` what to
judge now, feeds each value to the parameter's ``rules.alarms.AlarmJudge`` and hands each
event it says to :func:`event_record`, which keeps it (once, however often it is replayed) and
raises what it calls for on the batch: outside the action range ``PROCESS_ALARM`` for review;
outside the specification ``CRITICAL_OUT_OF_SPECIFICATION`` for a critical parameter (the batch
stops until QA decides) or ``OUT_OF_SPECIFICATION``; a signal lost ``CRITICAL_SIGNAL_LOST`` or
``SIGNAL_LOST``. Each of those waits for a person's acknowledgement (:func:`alarm_acknowledge`,
audited with a comment), and the step completes only once all are acknowledged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pint
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from batchline.audit.services import Actor, record_create, record_update
from batchline.recipes.document import monitor_limits
from batchline.rules.alarms import AlarmLimits, Event, Judged, Level
from batchline.rules.verdict import Reason, Refused, Verdict
from batchline.units import UnknownUnit, convert

from . import raising, rows
from .models import BatchStep, ProcessAlarm, ProcessTrend, StepState, StepValue

ACKNOWLEDGE = "execution.acknowledge_alarm"
BUCKETS = 120

# Where a unit's stored values of a parameter come from, in time order, as (time, value or None
# when not usable, unit of measure): set by the gateway app at start (gateway/apps.py), so that
# execution never imports the gateway. None: no gateway installed, the trend records no readings.
Series = Callable[[str, str, dt.datetime, dt.datetime], list[tuple[dt.datetime, float | None, str]]]
series_source: Series | None = None


class AlarmRefused(Refused):
    """An acknowledgement refused; the reasons say why."""


@dataclass(frozen=True)
class Watched:
    """One parameter to judge now: its step, its unit, its limits."""

    batch: str
    step_id: int
    step_key: str
    step_title: str
    started_at: dt.datetime
    equipment: str  # the unit's code
    name: str
    label: str
    unit: str
    critical: bool
    limits: AlarmLimits


def unit_of(step: BatchStep, equipment_step: str) -> str:
    """The code of the unit the batch's equipment step identified (its latest, uncorrected value)."""
    value = (
        StepValue.objects.filter(step__batch_id=step.batch_id, step__key=equipment_step, name="equipment")
        .filter(corrected_by__isnull=True)
        .order_by("-id")
        .first()
    )
    return value.text.split(" ", 1)[0] if value is not None else ""


def watched() -> list[Watched]:
    """Every monitored parameter of every running step, with the unit it is read from."""
    out = []
    for step in BatchStep.objects.filter(state=StepState.RUNNING).select_related("batch").order_by("id"):
        for monitor in step.spec.get("monitors") or []:
            code = unit_of(step, monitor["equipment"])
            if not code or step.started_at is None:
                continue
            out.append(
                Watched(
                    batch=step.batch.number,
                    step_id=step.pk,
                    step_key=step.key,
                    step_title=step.title,
                    started_at=step.started_at,
                    equipment=code,
                    name=monitor["name"],
                    label=monitor["label"],
                    unit=monitor["unit"],
                    critical=bool(monitor.get("critical")),
                    limits=monitor_limits(monitor),
                )
            )
    return out


def _exception_code(judged: Judged, critical: bool) -> str | None:
    if judged.event == Event.SIGNAL_LOST:
        return "CRITICAL_SIGNAL_LOST" if critical else "SIGNAL_LOST"
    if judged.event not in (Event.RAISED, Event.CHANGED):
        return None
    if abs(judged.level) == 2:
        return "CRITICAL_OUT_OF_SPECIFICATION" if critical else "OUT_OF_SPECIFICATION"
    # Eased from high-high to high is no new alarm: the out-of-specification one stands.
    return "PROCESS_ALARM" if judged.event == Event.RAISED else None


def _number(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f")


def _message(w: Watched, judged: Judged) -> str:
    at = judged.at.astimezone(dt.UTC).strftime("%H:%M:%S UTC")
    source = f"{w.label} on {w.equipment}"
    if judged.event == Event.SIGNAL_LOST:
        return f"{source}: no usable value since {at} while “{w.step_title}” runs."
    limits = w.limits.specification if abs(judged.level) == 2 else w.limits.action
    which = "specification" if abs(judged.level) == 2 else "action range"
    side = "above" if judged.level > 0 else "below"
    worst = (
        f" (extreme {_number(judged.extreme)} {w.unit})" if judged.extreme not in (None, judged.value) else ""
    )
    uncertain = " The device marked the value Uncertain." if judged.uncertain else ""
    return (
        f"{source}: {_number(judged.value)} {w.unit} at {at}{worst} is {side} its {which} "
        f"{limits.text(w.unit)} ({judged.level.words}), held for at least {w.limits.min_duration.seconds} s."
        f"{uncertain}"
    )


def event_record(*, actor: Actor, watched: Watched, judged: Judged, tag: str = "") -> ProcessAlarm | None:
    """Keep what the judge said, once, and raise what it calls for; None when it was kept before."""
    with transaction.atomic():
        batch_id = BatchStep.objects.values_list("batch_id", flat=True).get(pk=watched.step_id)
        batch = rows.lock_batch(batch_id)
        assert batch is not None
        # Read under the batch's lock: a step completed meanwhile keeps only what happened before its end.
        step = BatchStep.objects.get(pk=watched.step_id)
        step.batch = batch
        if step.completed_at is not None and judged.at > step.completed_at:
            return None
        if ProcessAlarm.objects.filter(
            step=step, name=watched.name, event=judged.event.value, level=judged.level.words, at=judged.at
        ).exists():
            return None
        code = _exception_code(judged, watched.critical)
        exception = None
        if code is not None:
            exception = raising.exception_raise(
                batch,
                actor=actor,
                code=code,
                message=_message(watched, judged),
                step=step,
                equipment=watched.equipment,
            )
        try:
            with transaction.atomic():
                return record_create(
                    ProcessAlarm(
                        step=step,
                        name=watched.name,
                        label=watched.label,
                        event=judged.event.value,
                        level=judged.level.words,
                        at=judged.at,
                        value=judged.value,
                        extreme=judged.extreme,
                        limit=judged.limit,
                        unit=watched.unit,
                        uncertain=judged.uncertain,
                        equipment=watched.equipment,
                        tag=tag[:300],
                        exception=exception,
                        needs_acknowledgement=exception is not None,
                    ),
                    actor=actor,
                )
        except IntegrityError:  # another gateway kept it first, between our check and our write
            transaction.set_rollback(True)
            return None


def alarm_acknowledge(
    *, actor: Actor, alarm_id: int, comment: str, step: BatchStep | None = None
) -> ProcessAlarm:
    """A person acknowledges an alarm, saying what was done; audited. ``step``: only one of that step's."""
    comment = comment.strip()
    user = get_user_model().objects.filter(pk=actor.id, is_active=True).first() if actor.id else None
    if user is None or not user.has_perm(ACKNOWLEDGE):
        raise AlarmRefused(
            Verdict.of(Reason("NOT_PERMITTED", "Your roles do not allow acknowledging process alarms."))
        )
    if not comment:
        raise AlarmRefused(Verdict.of(Reason("COMMENT_REQUIRED", "Say what was done about the alarm.")))
    with transaction.atomic():
        found = ProcessAlarm.objects.select_for_update().filter(pk=alarm_id)
        alarm = (found.filter(step=step) if step is not None else found).first()
        if alarm is None or not alarm.needs_acknowledgement:
            raise AlarmRefused(Verdict.of(Reason("NO_SUCH_ALARM", "There is no such alarm to acknowledge.")))
        if alarm.acknowledged_at is not None:
            raise AlarmRefused(
                Verdict.of(Reason("ALREADY_ACKNOWLEDGED", "This alarm is acknowledged already."))
            )
        record_update(
            alarm,
            actor=actor,
            values={"acknowledged_by_id": user.pk, "acknowledged_at": timezone.now(), "comment": comment},
            action="acknowledge",
            reason=comment,
        )
    return alarm


def _in_unit(value: float, source: str, target: str) -> Decimal | None:
    """The value in the recipe's unit; None when its unit cannot be converted (then it is no value)."""
    number = Decimal(str(value))
    if not source or source == target:
        return number
    try:
        return convert(number, source, target)
    except (UnknownUnit, pint.errors.PintError, ValueError):
        return None


def trends_freeze(*, actor: Actor, step: BatchStep, now: dt.datetime) -> list[ProcessTrend]:
    """Copy each monitored value's course over the step into the record, inside the completion's
    transaction: the step's period cut into at most ``BUCKETS`` buckets, each with its lowest and
    highest usable value in the recipe's unit (the chart of the record page and PDF)."""
    made = []
    start = step.started_at or now
    span = max((now - start).total_seconds(), 1.0)
    for monitor in step.spec.get("monitors") or []:
        unit = unit_of(step, monitor["equipment"])
        points = series_source(unit, monitor["name"], start, now) if series_source and unit else []
        buckets: dict[int, list[Decimal]] = {}
        usable = 0
        for at, value, uom in points:
            number = None if value is None else _in_unit(value, uom, monitor["unit"])
            if number is None:
                continue
            usable += 1
            i = min(BUCKETS - 1, int((at - start).total_seconds() / span * BUCKETS))
            low_high = buckets.setdefault(i, [number, number])
            low_high[0], low_high[1] = min(low_high[0], number), max(low_high[1], number)
        values = [v for pair in buckets.values() for v in pair]
        made.append(
            record_create(
                ProcessTrend(
                    step=step,
                    name=monitor["name"],
                    label=monitor["label"],
                    unit=monitor["unit"],
                    equipment=unit,
                    start=start,
                    end=now,
                    readings=len(points),
                    usable=usable,
                    minimum=min(values) if values else None,
                    maximum=max(values) if values else None,
                    buckets=[
                        [(start + dt.timedelta(seconds=span * i / BUCKETS)).isoformat(), str(lo), str(hi)]
                        for i, (lo, hi) in sorted(buckets.items())
                    ],
                ),
                actor=actor,
            )
        )
    return made


def completion_reasons(step: BatchStep) -> list[Reason]:
    """A step completes only once each critical process value was read from the machine while it
    ran, and every alarm of its process values is acknowledged."""
    monitors = step.spec.get("monitors") or []
    if not monitors:
        return []
    reasons = []
    read = set(
        ProcessAlarm.objects.filter(step=step, event=Event.FIRST_VALUE.value).values_list("name", flat=True)
    )
    unread = [m["label"] for m in monitors if m.get("critical") and m["name"] not in read]
    if unread:
        reasons.append(
            Reason(
                "PROCESS_VALUE_NOT_READ",
                f"{', '.join(unread)} {'has' if len(unread) == 1 else 'have'} not been read from the machine "
                f"since “{step.title}” started: the gateway must be running and connected to the unit.",
            )
        )
    open_ = list(
        ProcessAlarm.objects.filter(step=step, needs_acknowledgement=True, acknowledged_at__isnull=True)
        .order_by("at")
        .values_list("label", flat=True)
    )
    if open_:
        reasons.append(
            Reason(
                "ALARM_UNACKNOWLEDGED",
                f"Acknowledge the process alarms of {', '.join(dict.fromkeys(open_))} first "
                f"({len(open_)} open): “{step.title}” completes once every one is.",
            )
        )
    return reasons


__all__ = ["Level", "Watched", "alarm_acknowledge", "completion_reasons", "event_record", "watched"]
