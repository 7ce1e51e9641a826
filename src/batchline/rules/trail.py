"""Which audit entries a reviewer of the trail reads first, and why (Annex 11 §9, A11-13, A11D-03).

Plain Python over plain facts: the audit-trail review (``batchline.auditreview``)
feeds each entry of its scope in and stores what comes out. An entry needs
attention for one or more reasons, each with a tier and words a reviewer
understands; the tiers give the reading order:

1. a failed or refused signature,
2. a security event (failed logins, lockouts, refused stations, unlocks, resets, recoveries),
3. a correction or a change of a value after its first entry,
4. a refused attempt or another exception recorded by the floor,
5. a person's entry outside the site's working hours;

everything else is read after them and needs no mark of its own. Standard library only.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FAILED_SIGNATURE, SECURITY, CHANGE, REFUSAL, OUT_OF_HOURS = 1, 2, 3, 4, 5

TIER_LABELS = {
    FAILED_SIGNATURE: "Failed or refused signatures",
    SECURITY: "Security events",
    CHANGE: "Corrections and changes after first entry",
    REFUSAL: "Refused attempts and exceptions",
    OUT_OF_HOURS: "Entries outside working hours",
}

# The trail's own action names (grep ``action=`` in src): what each one means to a reviewer.
FAILED_SIGNATURES = {
    "signature_failed": "a signature was attempted with a wrong user ID or password, or on a locked account",
    "signature_refused": "a signature was refused (the signer's roles, an issued or expired password, "
    "or the e-signature statement not acknowledged)",
    "sign_as_other_refused": "someone tried to sign as another person",
}
SECURITY_EVENTS = {
    "login_failed": "a failed login",
    "password_change_failed": "a password change with a wrong current password",
    "lockout": "an account was locked after failed attempts",
    "address_lockout": "a station was locked after failed attempts across user names",
    "station_refused": "an entry from a terminal that is no registered station was refused",
    "refused_after_release": "an action was attempted on a batch QA had already released or rejected",
    "enrolment_wrong_code": "a wrong enrolment code was tried",
    "enrolment_refused": "an enrolment was refused",
    "security_alert": "a security alert was raised",
    "unlock": "a locked account was unlocked",
    "unlock_address": "a locked station was unlocked",
    "password_reset": "a password was reset by an administrator",
    "roles": "a person's roles were changed",
    "deactivate": "an account was deactivated",
    "reactivate": "an account was reactivated",
    "first_approver": "the installation's first QA approver was named",
    "recovery": "a recovery from an older backup was declared",
    "restore": "the database was restored from a backup",
    "master_refused": "a master-data change was refused",
}
CHANGES = {
    "correct": "a recorded value was corrected (the original stays readable beside it)",
    "update": "a value was changed after it was first entered",
    "void": "a record was voided",
    "verification_void": "a verification was voided",
    "expiry": "a lot's expiry date was changed",
    "retest": "a lot's retest date was changed",
}
EXCEPTION_TYPE = "execution.batchexception"

_HOURS = re.compile(r"^\s*([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-4]):([0-5]\d)\s*$")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """When people are expected to make entries: a span of the site's day on some weekdays."""

    start: dt.time
    end: dt.time  # exclusive; 24:00 is the end of the day
    days: frozenset[int]  # 0 = Monday

    def covers(self, local: dt.datetime) -> bool:
        if local.weekday() not in self.days:
            return False
        t = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # a night shift across midnight

    def text(self) -> str:
        days = ", ".join(DAY_NAMES[d].capitalize() for d in sorted(self.days)) or "no day"
        end = "24:00" if self.end == dt.time.max else self.end.strftime("%H:%M")
        return f"{days}, {self.start.strftime('%H:%M')}–{end}"


def parse_hours(text: str) -> tuple[dt.time, dt.time]:
    """``"06:00-20:00"`` → (06:00, 20:00); ValueError in words otherwise."""
    m = _HOURS.match(text or "")
    if not m:
        raise ValueError(f"{text!r} is not a span of the day like 06:00-20:00")
    start = dt.time(int(m[1]), int(m[2]))
    if m[3] == "24" and m[4] != "00":
        raise ValueError(f"{text!r}: a day ends at 24:00")
    end = dt.time.max if m[3] == "24" else dt.time(int(m[3]), int(m[4]))
    if start == end:
        raise ValueError(f"{text!r} is an empty span")
    return start, end


def parse_days(text: str) -> frozenset[int]:
    """``"mon,tue,wed"`` → {0, 1, 2}; ValueError naming a word that is no day."""
    days = set()
    for word in (w.strip().lower()[:3] for w in (text or "").split(",")):
        if not word:
            continue
        if word not in DAY_NAMES:
            raise ValueError(f"{word!r} is not a day (mon, tue, wed, thu, fri, sat, sun)")
        days.add(DAY_NAMES.index(word))
    if not days:
        raise ValueError("name at least one working day")
    return frozenset(days)


def working_hours(hours: str, days: str) -> WorkingHours:
    start, end = parse_hours(hours)
    return WorkingHours(start=start, end=end, days=parse_days(days))


@dataclass(frozen=True, slots=True)
class EntryFacts:
    """What the rules read of one audit entry: the time already in the site's zone."""

    id: int
    action: str
    record_type: str
    local_time: dt.datetime
    changes: Mapping[str, Sequence[Any]]
    reason: str = ""
    by_person: bool = True  # False for the system's own entries (the worker, migrations)


@dataclass(frozen=True, slots=True)
class Attention:
    """Why an entry needs the reviewer's attention: its most urgent tier and every reason in words."""

    tier: int
    why: tuple[str, ...]

    @property
    def label(self) -> str:
        return TIER_LABELS[self.tier]


def _sentence(words: str) -> str:
    return words[:1].upper() + words[1:]


def _changed_fields(changes: Mapping[str, Sequence[Any]]) -> list[str]:
    return sorted(name for name, pair in changes.items() if len(pair) == 2 and pair[0] is not None)


def attention(e: EntryFacts, *, hours: WorkingHours) -> Attention | None:
    """The reasons ``e`` needs attention, most urgent tier first; None when it needs none."""
    found: list[tuple[int, str]] = []
    if e.action in FAILED_SIGNATURES:
        found.append((FAILED_SIGNATURE, _sentence(FAILED_SIGNATURES[e.action])))
    if e.action in SECURITY_EVENTS:
        found.append((SECURITY, _sentence(SECURITY_EVENTS[e.action])))
    if e.action in CHANGES:
        fields = _changed_fields(e.changes)
        if e.action == "correct" or fields:
            what = _sentence(CHANGES[e.action])
            found.append(
                (CHANGE, f"{what}: {', '.join(fields)}" if fields and e.action != "correct" else what)
            )
    if e.record_type == EXCEPTION_TYPE and e.action == "create":
        code = str((e.changes.get("code") or [None, ""])[1] or "")
        if code.startswith("REFUSED_"):
            found.append((REFUSAL, f"A refused attempt on the floor ({code})"))
        else:
            found.append((REFUSAL, f"An exception was recorded ({code or 'no code'})"))
    if e.by_person and not hours.covers(e.local_time):
        found.append(
            (
                OUT_OF_HOURS,
                f"Made {e.local_time.strftime('%a %H:%M')}, outside working hours ({hours.text()})",
            )
        )
    if not found:
        return None
    found.sort(key=lambda x: x[0])
    return Attention(tier=found[0][0], why=tuple(words for _, words in found))


def reading_order(flagged: Iterable[tuple[int, Attention]]) -> list[tuple[int, Attention]]:
    """Flagged entries by tier, then in the order they were made (entry id)."""
    return sorted(flagged, key=lambda x: (x[1].tier, x[0]))


def id_ranges(ids: Iterable[int]) -> str:
    """``[1, 2, 3, 7, 9, 10]`` → ``"1-3,7,9-10"``: a scope of thousands of entries, stored compactly."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(set(ids)):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


def id_expand(text: str) -> list[int]:
    """The inverse of :func:`id_ranges`."""
    ids: list[int] = []
    for part in filter(None, (text or "").split(",")):
        first, _, last = part.partition("-")
        ids.extend(range(int(first), int(last or first) + 1))
    return ids
