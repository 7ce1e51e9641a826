"""Reads of master data shared by the pages, the API and the import preview."""

from __future__ import annotations

from typing import Any

from batchline.approvals.models import ChangeRequest, RequestState
from batchline.approvals.selectors import request_signatures, requests_about
from batchline.audit.models import AuditEntry
from batchline.audit.services import record_type_of

from .definitions import KINDS, MasterKind, shown
from .models import MasterChange
from .services import CHANGE_KIND, model_of, recipes_using, stored


def may_view(user: Any, kind: MasterKind) -> bool:
    return bool(user.has_perm(kind.view_permission) or user.has_perm("masterdata.request_change"))


def kinds_visible(user: Any) -> list[MasterKind]:
    return [k for k in KINDS.values() if may_view(user, k)]


def items(kind: MasterKind, *, retired: bool = False) -> list[dict[str, Any]]:
    """Every item of a kind in force (or, with ``retired``, every item), with its fields as shown."""
    queryset = model_of(kind).objects.all().order_by("code")
    if not retired:
        queryset = queryset.filter(retired_at__isnull=True)
    for f in kind.fields:
        if f.type == "ref":
            queryset = queryset.select_related(f.name)
    waiting = set(
        ChangeRequest.objects.filter(
            kind=CHANGE_KIND, subject_type=kind.subject_type, state=RequestState.REQUESTED
        ).values_list("subject_id", flat=True)
    )
    rows = []
    for item in queryset:
        values = stored(kind, item)
        rows.append(
            {
                "code": item.code,
                "values": values,
                "shown": {f.name: shown(f, values[f.name], values.get("unit") or "") for f in kind.fields},
                "retired_at": item.retired_at,
                "change_waiting": item.code in waiting,
            }
        )
    return rows


def requests_of(kind: MasterKind, code: str) -> list[ChangeRequest]:
    return list(
        requests_about(kind.subject_type, code).filter(kind=CHANGE_KIND).order_by("-requested_at", "-id")
    )


def request_view(change: ChangeRequest) -> dict[str, Any]:
    """A master-data request as an approver reads it: what, why, who, and each signature."""
    payload = change.payload
    effect = MasterChange.objects.filter(change_request=change).first()
    return {
        "id": change.pk,
        "number": change.number,
        "kind": payload["kind"],
        "code": payload["code"],
        "operation": payload["operation"],
        "state": change.state,
        "state_label": change.get_state_display(),
        "summary": change.summary,
        "reason": change.reason,
        "values": payload["values"],
        "before": change.before,
        "effective_at": payload.get("effective_at"),
        "requested_by": change.requested_by.printed_name,
        "requested_by_username": change.requested_by.get_username(),
        "requested_at": change.requested_at,
        "decided_by": change.decided_by.printed_name if change.decided_by else "",
        "decided_at": change.decided_at,
        "decision_comment": change.decision_comment,
        "applied_at": effect.applied_at if effect else None,
        "refused_on_effect": effect.refused if effect else "",
        "signatures": [s.manifestation() for s in request_signatures(change)],
        "affects": affects(payload["kind"], payload["code"]) if payload["operation"] != "create" else [],
    }


def affects(kind_name: str, code: str) -> list[str]:
    """What a change or retirement of the item reaches, in words: its uses and the recipes naming it."""
    kind = KINDS[kind_name]
    item = model_of(kind).objects.filter(code=code).first()
    if item is None:
        return []
    named = recipes_using(kind, code)
    return uses(kind, item) + ([f"named by recipe {', '.join(named)}"] if named else [])


def requests_open() -> list[dict[str, Any]]:
    """Master-data requests waiting for a QA approver, oldest first."""
    return [
        request_view(c)
        for c in ChangeRequest.objects.filter(kind=CHANGE_KIND, state=RequestState.REQUESTED)
        .select_related("requested_by", "decided_by")
        .order_by("requested_at", "id")
    ]


def item_view(kind: MasterKind, code: str) -> dict[str, Any] | None:
    """One item: its fields, its requests (open and decided), and its audit history, newest first."""
    item = model_of(kind).objects.filter(code=code).first()
    if item is None:
        return None
    values = stored(kind, item)
    history = AuditEntry.objects.filter(record_type=record_type_of(item), record_id=str(item.pk)).order_by(
        "-chain", "-seq"
    )
    return {
        "code": code,
        "kind": kind,
        "values": values,
        "fields": [
            {
                "field": f,
                "name": f.name,
                "label": f.label,
                "shown": shown(f, values[f.name], values.get("unit") or ""),
                "gmp": f.gmp,
            }
            for f in kind.fields
        ],
        "retired_at": item.retired_at,
        "requests": [request_view(c) for c in requests_of(kind, code)],
        "history": [
            {
                "at": e.at,
                "who": e.actor_name,
                "action": e.action,
                "changes": e.changes,
                "reason": e.reason,
            }
            for e in history[:200]
        ],
        "uses": uses(kind, item),
    }


def uses(kind: MasterKind, item: Any) -> list[str]:
    """Where the item is used, in words: what a retirement or a change would reach."""
    from batchline.equipment.models import Station
    from batchline.materials.models import Lot
    from batchline.recipes.models import MasterRecipe

    out: list[str] = []
    if kind.name == "material":
        lots = Lot.objects.filter(material=item)
        out.append(f"{lots.count()} lots ({lots.filter(status='released').count()} released)")
    elif kind.name == "product":
        recipes = MasterRecipe.objects.filter(product=item)
        out += [f"recipe {r.code} v{r.version} ({r.get_status_display().lower()})" for r in recipes]
    elif kind.name == "equipment_class":
        out.append(f"{item.units.count()} units")
    elif kind.name == "equipment":
        stations = [s.code for s in Station.objects.filter(retired_at__isnull=True) if item.code in s.devices]
        out.append(f"status {item.get_status_display().lower()}")
        if stations:
            out.append("registered to station " + ", ".join(stations))
    elif kind.name == "qualification":
        out.append(f"{item.records.values('user').distinct().count()} people trained")
    elif kind.name == "label_template":
        from batchline.execution.models import SampleLabelPrint
        from batchline.materials.models import LabelPrint

        prints = sum(
            m.objects.filter(template__startswith=f"{item.code} v").count()
            for m in (LabelPrint, SampleLabelPrint)
        )
        out.append(f"version {item.version} in force; {prints} labels printed to it")
    return out


def kinds_summary(user: Any) -> list[dict[str, Any]]:
    """The kinds a person may see, each with how many items are in force and how many requests wait."""
    waiting: dict[str, int] = {}
    for subject_type in ChangeRequest.objects.filter(
        kind=CHANGE_KIND, state=RequestState.REQUESTED
    ).values_list("subject_type", flat=True):
        waiting[subject_type] = waiting.get(subject_type, 0) + 1
    return [
        {
            "kind": k,
            "count": model_of(k).objects.filter(retired_at__isnull=True).count(),
            "waiting": waiting.get(k.subject_type, 0),
        }
        for k in kinds_visible(user)
    ]


def codes_in_force(kind_name: str) -> list[str]:
    """The codes a reference may name: the items not retired (sites are never retired)."""
    queryset = model_of(kind_name).objects.order_by("code")
    if kind_name != "site":
        queryset = queryset.filter(retired_at__isnull=True)
    return list(queryset.values_list("code", flat=True))
