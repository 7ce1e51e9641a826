"""A process value from the machine, judged against its step's limits while the step runs (IPC-01, S95-06).

The recipe gives a critical process parameter two nested ranges, as it gives every recorded
number (``rules.limits``): the **action** range (the normal operating range: leaving it is an
alarm, HIGH or LOW) inside the **specification** range (the proven acceptable range: leaving it
is HIGH-HIGH or LOW-LOW, the batch's exception). :class:`AlarmJudge` follows one parameter's
values in time order and says when an alarm starts, worsens, eases and ends:

- a value counts as outside a limit only beyond it (the limit itself is inside), and only once
  every value for ``min_duration`` has stayed beyond it: a single spike does not raise;
  the alarm's time is the first of those values, not the moment the duration ran out;
- it ends (or eases from HIGH-HIGH to HIGH) only when the value is back inside by the
  ``deadband``, so a value chattering on a limit raises once, not on every sample;
- a Bad or stale value is never judged as a value: it is a loss of signal, an event of its own,
  ended by the next usable value; an Uncertain value is judged and the event says so;
- no value for ``signal_timeout`` (the caller asks with :meth:`AlarmJudge.silence`) is a loss
  of signal too: a sensor that stopped sending cannot pass for one in range.

Plain data in and out: the gateway feeds it, the execution records what it says.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from decimal import Decimal

from .limits import Range


class Level(enum.IntEnum):
    """How far out a value is; the order is the severity."""

    NORMAL = 0
    HIGH = 1  # beyond the action range, above
    LOW = -1
    HIGH_HIGH = 2  # beyond the specification range, above
    LOW_LOW = -2

    @property
    def words(self) -> str:
        return {0: "in range", 1: "high", -1: "low", 2: "high-high", -2: "low-low"}[self.value]


class Event(enum.StrEnum):
    RAISED = "raised"  # an alarm starts at ``level``
    CHANGED = "changed"  # an alarm goes to another level (worse or eased) without ending
    CLEARED = "cleared"  # back in range
    SIGNAL_LOST = "signal lost"
    SIGNAL_BACK = "signal back"


@dataclass(frozen=True, slots=True)
class AlarmLimits:
    action: Range = field(default_factory=Range)
    specification: Range = field(default_factory=Range)
    deadband: Decimal = Decimal(0)
    min_duration: dt.timedelta = dt.timedelta(0)
    signal_timeout: dt.timedelta = dt.timedelta(seconds=30)

    def __post_init__(self) -> None:
        if self.deadband < 0 or self.min_duration < dt.timedelta(0) or self.signal_timeout <= dt.timedelta(0):
            raise ValueError("deadband and minimum duration are not negative, the signal timeout is positive")
        for bound in (self.action.low, self.action.high):
            if bound is not None and not self.specification.contains(bound):
                raise ValueError("action limits lie outside the specification limits")

    def level_of(self, value: Decimal) -> Level:
        spec, action = self.specification, self.action
        if spec.high is not None and value > spec.high:
            return Level.HIGH_HIGH
        if spec.low is not None and value < spec.low:
            return Level.LOW_LOW
        if action.high is not None and value > action.high:
            return Level.HIGH
        if action.low is not None and value < action.low:
            return Level.LOW
        return Level.NORMAL

    def limit_of(self, level: Level) -> Decimal | None:
        return {
            Level.HIGH_HIGH: self.specification.high,
            Level.LOW_LOW: self.specification.low,
            Level.HIGH: self.action.high,
            Level.LOW: self.action.low,
            Level.NORMAL: None,
        }[level]

    def still(self, level: Level, value: Decimal) -> bool:
        """Whether ``value`` still holds an alarm at ``level``: beyond its limit less the deadband."""
        limit = self.limit_of(level)
        if limit is None:
            return False
        return value > limit - self.deadband if level > 0 else value < limit + self.deadband


@dataclass(frozen=True, slots=True)
class Judged:
    """Something that happened to the parameter, for the record and the screen."""

    event: Event
    level: Level
    at: dt.datetime  # when it began: the first value of it, not when it was confirmed
    value: Decimal | None = None  # the value that began it (or ended it)
    limit: Decimal | None = None  # the limit it crossed
    uncertain: bool = False  # judged on a value the device marked Uncertain
    extreme: Decimal | None = None  # the furthest value while it was pending


@dataclass(slots=True)
class AlarmJudge:
    """One parameter's alarm state over time. Feed it every value in time order."""

    limits: AlarmLimits
    level: Level = Level.NORMAL
    signal: bool = True
    last_value_at: dt.datetime | None = None
    # A worse level seen but not yet held for min_duration: (level, since, first value, extreme).
    _pending: tuple[Level, dt.datetime, Decimal, Decimal, bool] | None = field(default=None, repr=False)

    def value(
        self, at: dt.datetime, value: Decimal | None, *, usable: bool = True, uncertain: bool = False
    ) -> list[Judged]:
        """A reading: ``usable`` False for Bad or stale (then ``value`` is ignored)."""
        if self.last_value_at is not None and at < self.last_value_at:
            raise ValueError("values are judged in time order")
        if not usable or value is None:
            self._pending = None
            if not self.signal:
                return []
            self.signal = False
            return [Judged(Event.SIGNAL_LOST, self.level, at)]
        out: list[Judged] = []
        self.last_value_at = at
        if not self.signal:
            self.signal = True
            out.append(Judged(Event.SIGNAL_BACK, self.level, at, value))
        seen = self.limits.level_of(value)
        if (
            self.level != Level.NORMAL
            and self.limits.still(self.level, value)
            and not _worse(seen, self.level)
        ):
            self._pending = None  # held where it is, the deadband absorbing the chatter
            return out
        target = seen if seen != Level.NORMAL or self.level == Level.NORMAL else Level.NORMAL
        if target == self.level:
            self._pending = None
            return out
        if target == Level.NORMAL or not _worse(target, self.level):
            # Easing or ending takes effect at once (inside by the deadband already): an alarm is
            # never held up by the minimum duration, only started by it.
            self._pending = None
            return [*out, self._move(target, at, value, uncertain, value)]
        pending = self._pending
        if pending is None or pending[0] != target:
            pending = (target, at, value, value, uncertain)
        else:
            extreme = max(pending[3], value) if target > 0 else min(pending[3], value)
            pending = (target, pending[1], pending[2], extreme, pending[4] or uncertain)
        self._pending = pending
        if at - pending[1] >= self.limits.min_duration:
            self._pending = None
            return [*out, self._move(target, pending[1], pending[2], pending[4], pending[3])]
        return out

    def silence(self, now: dt.datetime) -> list[Judged]:
        """Asked now and then: no value for the signal timeout is a loss of signal."""
        if not self.signal or self.last_value_at is None:
            return []
        if now - self.last_value_at < self.limits.signal_timeout:
            return []
        self.signal = False
        self._pending = None
        return [Judged(Event.SIGNAL_LOST, self.level, self.last_value_at + self.limits.signal_timeout)]

    def _move(
        self, target: Level, at: dt.datetime, value: Decimal, uncertain: bool, extreme: Decimal
    ) -> Judged:
        before, self.level = self.level, target
        if target == Level.NORMAL:
            return Judged(Event.CLEARED, before, at, value, self.limits.limit_of(before), uncertain)
        event = Event.RAISED if before == Level.NORMAL else Event.CHANGED
        return Judged(event, target, at, value, self.limits.limit_of(target), uncertain, extreme)


def _worse(a: Level, b: Level) -> bool:
    """Whether ``a`` is further out than ``b`` (a change of side counts as worse: a new alarm)."""
    if a == Level.NORMAL:
        return False
    if b == Level.NORMAL or (a > 0) != (b > 0):
        return True
    return abs(a) > abs(b)
