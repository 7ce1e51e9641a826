"""Reads of training that the pages, the API and the execution gate share (TRN-01, P11-09)."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

from batchline.rules.training import TrainingView, qualified
from batchline.rules.verdict import Reason, Verdict

from .models import Qualification, TrainingRecord


def user_qualified(user_id: int, code: str, now: dt.datetime, *, person: str = "You") -> Verdict:
    """Whether the person holds a current training on ``code`` at ``now`` (server time), or why not.

    Two queries, no writes, no locks: safe inside execution's transaction.
    The step start gate asks this for the step's performer only.
    """
    q = Qualification.objects.filter(code=code.strip().upper()).first()
    if q is None:
        return Verdict.of(
            Reason("QUALIFICATION_UNKNOWN", f"No qualification {code} is registered: ask QA to register it.")
        )
    records = [
        TrainingView(
            code=q.code, title=q.title, version=r.version, trained_at=r.trained_at, expires_at=r.expires_at
        )
        for r in TrainingRecord.objects.filter(user_id=user_id, qualification=q).only(
            "version", "trained_at", "expires_at"
        )
    ]
    return qualified(
        records,
        q.code,
        now,
        person=person,
        title=q.title,
        version=q.version,
        tz=timezone.get_current_timezone(),
    )


def _curriculum(roles: list[str]) -> list[Qualification]:
    wanted = set(roles)
    return [
        q
        for q in Qualification.objects.filter(retired_at__isnull=True).exclude(roles=[])
        if wanted.intersection(q.roles)
    ]


def curriculum_of(roles: list[str]) -> list[str]:
    """The qualifications (codes) in force that the curricula of these roles hold (master data)."""
    return [q.code for q in _curriculum(roles)]


def curriculum_gaps(user_id: int, roles: list[str], now: dt.datetime) -> Verdict:
    """Why the person may not act in their roles: each curriculum qualification without current training.

    Two queries whatever the curriculum's size: every step start asks it.
    """
    curriculum = _curriculum(roles)
    if not curriculum:
        return Verdict(())
    held: dict[int, list[TrainingView]] = {q.pk: [] for q in curriculum}
    by_pk = {q.pk: q for q in curriculum}
    for r in TrainingRecord.objects.filter(user_id=user_id, qualification__in=curriculum).only(
        "qualification_id", "version", "trained_at", "expires_at"
    ):
        q = by_pk[r.qualification_id]
        held[q.pk].append(
            TrainingView(
                code=q.code,
                title=q.title,
                version=r.version,
                trained_at=r.trained_at,
                expires_at=r.expires_at,
            )
        )
    reasons = []
    for q in curriculum:
        verdict = qualified(
            held[q.pk], q.code, now, title=q.title, version=q.version, tz=timezone.get_current_timezone()
        )
        reasons += [
            Reason("CURRICULUM_INCOMPLETE", f"{r.message} It is in the curriculum of your role.")
            for r in verdict.reasons
        ]
    return Verdict(tuple(reasons))


def training_records(*, user_id: int | None = None, code: str | None = None) -> QuerySet[TrainingRecord]:
    """Training records, newest first, for one person or one qualification."""
    rows = TrainingRecord.objects.select_related("user", "qualification", "recorded_by")
    if user_id is not None:
        rows = rows.filter(user_id=user_id)
    if code is not None:
        rows = rows.filter(qualification__code=code)
    return rows.order_by("qualification__code", "user__username", "-trained_at", "-id")


def record_state(record: TrainingRecord, now: dt.datetime) -> str:
    """ "current", "expired", "outdated" (an older SOP version) or "future", for pages and the API."""
    if record.version < record.qualification.version:
        return "outdated"
    if record.trained_at > now:
        return "future"
    if record.expires_at is not None and now >= record.expires_at:
        return "expired"
    return "current"
