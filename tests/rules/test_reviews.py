"""When a periodic review is due (rules/reviews.py): plain data, no database."""

from __future__ import annotations

import datetime as dt

import pytest

from batchline.rules.reviews import overdue_message, review_due

START = dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.UTC)


@pytest.mark.req("P11-24", "A11-15")
def test_before_any_review_the_interval_counts_from_the_installation() -> None:
    due = review_due(
        last_signed_at=None, installed_at=START, interval_days=30, now=START + dt.timedelta(days=30)
    )
    assert due.due_at == START + dt.timedelta(days=30) and not due.overdue  # at the instant: not yet
    late = review_due(
        last_signed_at=None,
        installed_at=START,
        interval_days=30,
        now=START + dt.timedelta(days=30, microseconds=1),
    )
    assert late.overdue


@pytest.mark.req("P11-24", "A11-15")
def test_after_a_signed_review_the_interval_counts_from_its_signature() -> None:
    signed = START + dt.timedelta(days=100)
    due = review_due(
        last_signed_at=signed, installed_at=START, interval_days=30, now=signed + dt.timedelta(days=29)
    )
    assert not due.overdue and due.due_at == signed + dt.timedelta(days=30)


@pytest.mark.req("P11-24")
def test_the_message_names_the_last_review_and_the_interval() -> None:
    signed = START
    now = START + dt.timedelta(days=33)
    due = review_due(last_signed_at=signed, installed_at=START, interval_days=30, now=now)
    assert overdue_message("access review", due, last_number="AR-2026-0001", now=now) == (
        "The access review is overdue by 3 days: the last, AR-2026-0001, was signed 2026-01-01 08:00 UTC, "
        "and the GMP configuration asks for one every 30 days (due 2026-01-31 08:00 UTC)."
    )
