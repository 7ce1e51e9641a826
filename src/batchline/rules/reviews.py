"""When a periodic review is due: the access review (21 CFR 11.300(b)) and the periodic evaluation (Annex 11 §11).

Plain data in, a verdict out; the clock is the caller's. A review is due
``interval_days`` after the last one was signed; before any was signed, after
the installation began (its first GMP configuration version), so a plant that
never reviewed is told so once the interval has passed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Due:
    due_at: dt.datetime
    overdue: bool
    last_signed_at: dt.datetime | None  # None: never signed, counted from the installation's start
    interval_days: int


def review_due(
    *, last_signed_at: dt.datetime | None, installed_at: dt.datetime, interval_days: int, now: dt.datetime
) -> Due:
    """Whether the next review is overdue at ``now``: strictly after its due instant, as expiry is judged."""
    start = last_signed_at or installed_at
    due_at = start + dt.timedelta(days=interval_days)
    return Due(
        due_at=due_at, overdue=now > due_at, last_signed_at=last_signed_at, interval_days=interval_days
    )


def overdue_message(label: str, due: Due, *, last_number: str | None, now: dt.datetime) -> str:
    """In words, for the alert and the pages: "The access review is overdue by 3 days: …"."""
    days = (now - due.due_at).days
    late = f"by {days} day{'s' if days != 1 else ''}" if days >= 1 else "since today"
    if due.last_signed_at is None:
        since = "none has been signed since the installation began"
    else:
        since = f"the last, {last_number}, was signed {due.last_signed_at:%Y-%m-%d %H:%M} UTC"
    return (
        f"The {label} is overdue {late}: {since}, and the GMP configuration asks for one every "
        f"{due.interval_days} days (due {due.due_at:%Y-%m-%d %H:%M} UTC)."
    )
