"""What the compare page and the API read about a change between two recipe versions (MBR-02).

The words come from :mod:`.compare` (no database); here is what only the
database knows: why the newer version was made, and what the change touches —
batches still open on the older version (they keep it: a batch runs the
control recipe it froze, MBR-01), other versions of the recipe still being
written or reviewed, and the lots in stock of every material whose charge changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum

from batchline.audit.models import AuditEntry
from batchline.materials.models import Container, LotStatus

from .compare import Comparison, describe
from .models import MasterRecipe, RecipeStatus

# Batches live in execution, above recipes: they are read through the reverse relation, by
# state name. A batch in one of these states will not run again; every other one still may.
CLOSED_BATCH_STATES = ("qa_released", "rejected", "aborted")

# The audit trail's actions on a recipe version, as the page says them.
ACTION_WORDS = {
    "create": "created",
    "update": "edited",
    "submit": "submitted",
    "return": "returned to draft",
    "approve": "approved",
    "make_effective": "made effective",
    "supersede": "superseded",
    "retire": "retired",
}


@dataclass(frozen=True)
class Reason:
    action: str
    at: str
    by: str
    reason: str


@dataclass(frozen=True)
class Affected:
    version: int  # the older version, which open batches keep running
    open_batches: list[dict[str, str]] = field(default_factory=list)
    other_versions: list[dict[str, Any]] = field(default_factory=list)
    lots: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "older_version": self.version,
            "open_batches": self.open_batches,
            "other_versions": self.other_versions,
            "lots_in_stock": self.lots,
        }


@dataclass(frozen=True)
class RecipeReview:
    a: MasterRecipe
    b: MasterRecipe
    comparison: Comparison
    reason: str  # the newer version's reason for change; "" if none was stored
    recorded: list[Reason]  # every reason written on the newer version's audit trail
    affected: Affected | None  # None: not a newer version of the same recipe against an older one

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": {"id": self.a.pk, "code": self.a.code, "version": self.a.version},
            "to": {"id": self.b.pk, "code": self.b.code, "version": self.b.version},
            "reason_for_change": self.reason,
            "reasons_recorded": [r.__dict__ for r in self.recorded],
            "lines": [{"tier": int(d.tier), "words": d.words} for d in self.comparison.lines],
            "affects": self.affected.as_dict() if self.affected else None,
            "changes": [c.as_dict() for c in self.comparison.changes],
        }


def _reasons(recipe: MasterRecipe) -> list[Reason]:
    entries = (
        AuditEntry.objects.filter(record_type="recipes.masterrecipe", record_id=str(recipe.pk))
        .exclude(reason="")
        .order_by("at", "seq")
        .values_list("action", "at", "actor_name", "reason")
    )
    return [
        Reason(ACTION_WORDS.get(action, action), at.isoformat(), by, reason)
        for action, at, by, reason in entries
    ]


def change_affects(*, older: MasterRecipe, newer: MasterRecipe, materials: frozenset[str]) -> Affected:
    """Open batches on ``older``, other versions in draft or review, lots in stock of ``materials``."""
    open_batches = older.batches.exclude(state__in=CLOSED_BATCH_STATES)
    state_label = dict(open_batches.model._meta.get_field("state").choices or [])
    batches = [
        {"number": number, "state": str(state_label.get(state, state))}
        for number, state in open_batches.order_by("number").values_list("number", "state")
    ]
    others = [
        {"id": pk, "version": v, "status": RecipeStatus(s).label}
        for pk, v, s in MasterRecipe.objects.filter(
            code=newer.code, status__in=(RecipeStatus.DRAFT, RecipeStatus.IN_REVIEW)
        )
        .exclude(pk__in=(older.pk, newer.pk))
        .order_by("version")
        .values_list("pk", "version", "status")
    ]
    # Rejected lots will not be charged; every other lot with stock may be, under the new figures.
    stock = (
        Container.objects.filter(lot__material__code__in=sorted(materials), quantity__gt=0)
        .exclude(lot__status=LotStatus.REJECTED)
        .values("lot__material__code", "lot__number", "lot__status", "unit")
        .annotate(quantity=Sum("quantity"), containers=Count("pk"))
        .order_by("lot__material__code", "lot__number", "unit")
    )
    lots = [
        {
            "material": row["lot__material__code"],
            "lot": row["lot__number"],
            "status": LotStatus(row["lot__status"]).label,
            "quantity": str(Decimal(row["quantity"]).normalize()),
            "unit": row["unit"],
            "containers": row["containers"],
        }
        for row in stock
    ]
    return Affected(older.version, batches, others, lots)


def recipe_review(*, a: MasterRecipe, b: MasterRecipe) -> RecipeReview:
    """Version ``a`` against version ``b`` in words, with ``b``'s reason and, when ``b`` is newer, what it affects."""
    comparison = describe(a.document, b.document)
    newer = b if (a.code == b.code and b.version > a.version) else None
    affected = change_affects(older=a, newer=b, materials=comparison.materials) if newer else None
    return RecipeReview(
        a=a,
        b=b,
        comparison=comparison,
        reason=b.change_reason,
        recorded=_reasons(b),
        affected=affected,
    )
