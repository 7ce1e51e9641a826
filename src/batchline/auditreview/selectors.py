"""Reads of the audit-trail review for its pages, the batch review page and the report (A11-13, VAL-10)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Q

from batchline.audit.models import AuditEntry
from batchline.audit.selectors import changes_of
from batchline.configuration import selectors as configuration
from batchline.configuration.models import ConfigVersion
from batchline.execution.models import Batch, BatchState
from batchline.quality.models import ReviewStage, Stage
from batchline.rules import trail

from .models import ReviewState, Scope, TrailReview, TrailReviewMark

FLAGGED_PER_PAGE = 50
ENTRIES_PER_PAGE = 100


@dataclass(frozen=True)
class Row:
    entry: AuditEntry
    changes: list[tuple[str, Any, Any]]
    tier: int | None = None
    why: tuple[str, ...] = ()
    mark: TrailReviewMark | None = None

    @property
    def label(self) -> str:
        return trail.TIER_LABELS[self.tier] if self.tier else ""


def _entries(ids: list[int]) -> dict[int, AuditEntry]:
    return {e.pk: e for e in AuditEntry.objects.filter(id__in=ids)}


def flagged_page(review: TrailReview, number: Any) -> tuple[Page, list[Row]]:
    """A page of the entries that need attention, in reading order, each with its reasons and mark."""
    page = Paginator(review.flagged, FLAGGED_PER_PAGE).get_page(number)
    ids = [row[0] for row in page.object_list]
    entries = _entries(ids)
    marks = {
        m.entry_id: m
        for m in TrailReviewMark.objects.filter(review=review, entry_id__in=ids).select_related("by")
    }
    rows = [
        Row(entries[pk], changes_of(entries[pk]), tier, tuple(why), marks.get(pk))
        for pk, tier, why in page.object_list
        if pk in entries
    ]
    return page, rows


def other_page(review: TrailReview, number: Any) -> tuple[Page, list[Row]]:
    """A page of the rest of the scope, oldest first: read after the flagged ones, no mark needed."""
    flagged = {row[0] for row in review.flagged}
    rest = [i for i in trail.id_expand(review.entries) if i not in flagged]
    page = Paginator(rest, ENTRIES_PER_PAGE).get_page(number)
    entries = _entries(list(page.object_list))
    return page, [Row(entries[pk], changes_of(entries[pk])) for pk in page.object_list if pk in entries]


def marked_count(review: TrailReview) -> int:
    return TrailReviewMark.objects.filter(review=review).count()


def batch_trail_review(number: str) -> TrailReview | None:
    """The batch's newest signed trail review, else its newest open one, else None (the batch review page)."""
    reviews = TrailReview.objects.filter(scope=Scope.BATCH, batch_number=number).select_related("signed_by")
    return (
        reviews.filter(state=ReviewState.SIGNED).order_by("-signed_at", "-id").first()
        or reviews.order_by("-id").first()
    )


def reviews(limit: int = 200) -> list[TrailReview]:
    return list(
        TrailReview.objects.select_related("opened_by", "signed_by")
        .defer("entries", "flagged")
        .order_by("-id")[:limit]
    )


@dataclass(frozen=True)
class BatchDue:
    batch: Batch
    released_at: dt.datetime | None
    review: TrailReview | None  # the newest signed review of its trail
    status: str  # "reviewed", "reviewed after release", "due", "overdue"


@dataclass(frozen=True)
class Report:
    period_days: int
    last_periodic: TrailReview | None
    periodic_due: dt.datetime | None  # None: no periodic review was ever signed, so it is due now
    periodic_overdue: bool
    batches: list[BatchDue]

    @property
    def overdue_batches(self) -> int:
        return sum(1 for b in self.batches if b.status == "overdue")


_ENDED = (BatchState.COMPLETE, BatchState.IN_REVIEW, BatchState.QA_RELEASED, BatchState.REJECTED)


def report(*, now: dt.datetime) -> Report:
    """Reviews done and overdue: every ended batch's trail (due before its release, overdue once released
    or rejected without one) and the periodic review of the whole trail every N days (configuration)."""
    days = configuration.current().trail_review_days
    last = (
        TrailReview.objects.filter(scope=Scope.PERIOD, state=ReviewState.SIGNED)
        .select_related("signed_by")
        .defer("entries", "flagged")
        .order_by("-signed_at", "-id")
        .first()
    )
    if last is not None and last.signed_at is not None:
        due = last.signed_at + dt.timedelta(days=days)
    else:  # the first is due that long after the installation's first configuration took effect
        first = ConfigVersion.objects.order_by("number").values_list("effective_at", flat=True).first()
        due = first + dt.timedelta(days=days) if first is not None else None
    batches = list(
        Batch.objects.filter(state__in=_ENDED)
        .select_related("recipe")
        .defer("control_recipe", "recipe__document")
        .order_by("-created_at", "-id")
    )
    numbers = [b.number for b in batches]
    signed: dict[str, TrailReview] = {}
    for r in (
        TrailReview.objects.filter(scope=Scope.BATCH, state=ReviewState.SIGNED, batch_number__in=numbers)
        .select_related("signed_by")
        .defer("entries", "flagged")
        .order_by("signed_at", "id")
    ):
        signed[r.batch_number] = r  # the newest wins
    ended_at = dict(
        ReviewStage.objects.filter(
            Q(stage=Stage.RELEASED) | Q(stage=Stage.REJECTED), batch__number__in=numbers
        ).values_list("batch__number", "at")
    )
    rows = []
    for b in batches:
        review, released = signed.get(b.number), ended_at.get(b.number)
        if review is not None:
            late = released is not None and review.signed_at is not None and review.signed_at > released
            status = "reviewed after release" if late else "reviewed"
        else:
            status = "overdue" if released is not None else "due"
        rows.append(BatchDue(batch=b, released_at=released, review=review, status=status))
    return Report(
        period_days=days,
        last_periodic=last,
        periodic_due=due,
        periodic_overdue=due is not None and due < now,
        batches=rows,
    )
