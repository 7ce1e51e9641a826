"""Dates typed into forms: a due date or a training date is 00:00 of that day in a given zone."""

from __future__ import annotations

import datetime as dt

from batchline.rules.verdict import Refused


def day_start(text: str, tz: dt.tzinfo) -> dt.datetime | None:
    """``YYYY-MM-DD`` as the instant the day begins in ``tz``; empty is None; anything else is refused."""
    text = text.strip()[:40]
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise Refused.because("DATE", f"{text!r} is not a date (YYYY-MM-DD).") from exc
    return dt.datetime.combine(day, dt.time(), tzinfo=tz)
