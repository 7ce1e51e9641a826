"""The complete executed batch record as plain data: what the PDF, the JSON and the BatchML show.

One function, :func:`record_content`, reads everything the document holds in
a fixed number of queries (whatever the number of steps) and returns
JSON-ready data: strings, integers, booleans, ``None``, lists and dicts, with
date-times as ISO 8601 UTC text and quantities as decimal text. Its canonical
JSON (``rules.canonical``) is what the document's SHA-256 is computed over.

Keys the quality work fills (``deviations``, ``yields``, ``reconciliation``,
``review``, and each exception's ``category``, ``blocks`` and
``disposition``) are present from the start, empty, so that the renderers
show "none recorded" today and the data when it arrives, without a change of
layout.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from django.db.models import Q
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.configuration.models import ConfigVersion
from batchline.equipment.models import LogbookEntry, Site
from batchline.execution.models import Batch
from batchline.execution.scaling import Ratio, number_limits, range_text, target_text
from batchline.execution.selectors import StepScreen, ValueRow, batch_screen
from batchline.materials.models import Consumption, Container, LabelPrint, LedgerEntry, MaterialKind
from batchline.quality import selectors as quality_selectors
from batchline.rules import canonical
from batchline.signatures.models import Signature

FORMAT = "batchline.batch-record/1"


def content_text(content: dict[str, Any]) -> str:
    """The canonical JSON text the document's hash is computed over."""
    return canonical.dumps(content)


def content_sha256(content: dict[str, Any]) -> str:
    return hashlib.sha256(content_text(content).encode()).hexdigest()


def _at(value: Any) -> str | None:
    return None if value is None else str(canonical.normalise(value))


def _person(user: Any) -> dict[str, Any] | None:
    return {"username": user.username, "name": user.printed_name} if user else None


def _signature(s: Signature) -> dict[str, Any]:
    return {
        "id": s.pk,
        "meaning": s.meaning,
        "signer": s.signer_username,
        "printed_name": s.signer_name,
        "signed_at": _at(s.signed_at),
        "manifestation": s.manifestation(),
        "comment": s.comment,
        "method": s.method,
        "witness": s.witness,
        "record_type": s.record_type,
        "record_id": s.record_id,
        "binding_hash": s.binding_hash,
    }


def _limits(definition: dict[str, Any], ratio: Ratio) -> dict[str, str]:
    limits = number_limits(definition, ratio)
    unit = definition.get("unit", "")
    return {
        "target": target_text(definition, ratio),
        "plausible": range_text(limits.plausible, unit),
        "specification": range_text(limits.specification, unit),
        "action": range_text(limits.action, unit),
    }


def _values(s: StepScreen, ratio: Ratio) -> list[dict[str, Any]]:
    """Every value of a step, originals before their corrections, each with its limits."""
    defs = {d["name"]: d for d in [*s.definition.get("inputs", []), *s.definition.get("calculations", [])]}
    out = []
    for row in s.rows:
        out.extend(_row(row, defs.get(row.value.name, {}), ratio))
    return out


def _row(row: ValueRow, definition: dict[str, Any], ratio: Ratio) -> list[dict[str, Any]]:
    limits = _limits(definition, ratio)
    chain = [row.value, *row.corrections]
    out = []
    for i, v in enumerate(chain):
        out.append(
            {
                "id": v.pk,
                "name": v.name,
                "label": v.label,
                "text": v.text,
                "unit": v.unit,
                "source": v.source,
                "critical": bool(definition.get("critical")),
                **limits,
                "in_specification": v.in_specification,
                "within_action": v.within_action,
                "entered_by": _person(v.entered_by),
                "entered_at": _at(v.entered_at),
                "corrects": v.corrects_id,
                "reason": v.reason,
                # The marker the document prints: this entry was replaced by a later one.
                "changed_after_entry": i < len(chain) - 1,
                "current": i == len(chain) - 1,
            }
        )
    return out


def _step(
    s: StepScreen, ratio: Ratio, materials: list[dict[str, Any]], equipment: list[dict[str, Any]]
) -> dict[str, Any]:
    d = s.definition
    step = s.step
    material = d.get("material")
    return {
        "key": step.key,
        "seq": step.seq,
        "operation": step.operation,
        "title": step.title,
        "kind": step.kind,
        "instruction": d.get("instruction", ""),
        "sop": d.get("sop", ""),
        "checklist": list(d.get("checklist", [])),
        "timer": d.get("timer"),
        "material": (
            {k: str(v) if v is not None and not isinstance(v, bool) else v for k, v in material.items()}
            if material
            else None
        ),
        "equipment_class": d.get("equipment_class"),
        "signs": bool(d.get("signs")),
        "verify": bool(d.get("verify")),
        "state": step.state,
        "started_at": _at(step.started_at),
        "started_by": _person(step.started_by),
        "completed_at": _at(step.completed_at),
        "completed_by": _person(step.completed_by),
        "verified_at": _at(step.verified_at),
        "verified_by": _person(step.verified_by),
        "values": _values(s, ratio),
        "signatures": [_signature(x) for x in s.signatures],
        "materials": materials,
        "equipment": equipment,
    }


def _site(logbook: list[LogbookEntry]) -> dict[str, Any] | None:
    """Where the batch was made: the site of the equipment it used, else the plant's only site."""
    sites = {e.equipment.site for e in logbook}
    if len(sites) != 1:
        candidates = list(Site.objects.all()[:2])
        sites = set(candidates) if len(candidates) == 1 else set()
    if len(sites) != 1:
        return None
    site = sites.pop()
    return {"code": site.code, "name": site.name, "time_zone": site.time_zone}


def batch_configuration(batch: Batch, generated: Any) -> dict[str, Any]:
    """The GMP configuration the batch ran under: the version in force at its creation, each version
    that came into force while it ran (up to its last review stage once decided, so a released record
    stays as signed), and the version in force at each signed review stage."""
    from batchline.quality.models import ReviewStage

    versions = list(ConfigVersion.objects.order_by("number").values_list("number", "effective_at", "reason"))

    def at(when: Any) -> int | None:
        found = [n for n, effective, _ in versions if effective <= when]
        return found[-1] if found else None

    stages = list(ReviewStage.objects.filter(batch=batch).order_by("at", "id").values_list("stage", "at"))
    decided = batch.state in ("qa_released", "rejected", "aborted")
    end = stages[-1][1] if decided and stages else generated
    return {
        "at_creation": at(batch.created_at),
        "came_into_force": [
            {"number": n, "effective_at": _at(effective), "reason": reason}
            for n, effective, reason in versions
            if batch.created_at < effective <= end
        ],
        "at_stages": [{"stage": stage, "at": _at(when), "version": at(when)} for stage, when in stages],
    }


def record_content(batch: Batch, *, now: Any = None) -> dict[str, Any]:
    """Everything the executed batch record holds (issue 5 item 5; 21 CFR 211.188(b)).

    Reads only; about a dozen queries whatever the number of steps. ``now``
    is the generation time (the server's clock unless a caller passes one).
    """
    generated = now or timezone.now()
    batch = Batch.objects.select_related("recipe__product", "created_by").get(pk=batch.pk)
    screen = batch_screen(batch)
    quality = quality_selectors.record_quality(batch)
    number = batch.number

    consumptions = list(
        Consumption.objects.filter(batch_number=number)
        .select_related("lot__material", "container", "ledger__user")
        .order_by("at", "id")
    )
    ledger = list(
        LedgerEntry.objects.filter(batch_number=number)
        .select_related("container__lot__material", "user")
        .order_by("at", "id")
    )
    dispensed = list(
        Container.objects.filter(dispensed_for=number).select_related("lot__material").order_by("code")
    )
    logbook = list(
        LogbookEntry.objects.filter(batch_number=number)
        .select_related("equipment__site", "equipment__equipment_class", "user")
        .order_by("at", "id")
    )
    labels = list(
        LabelPrint.objects.filter(container__in=[c.pk for c in dispensed])
        .select_related("container", "user")
        .order_by("at", "id")
    )

    def lot_row(c: Consumption) -> dict[str, Any]:
        lot = c.lot
        return {
            "step": c.step_key,
            "material_code": lot.material.code,
            "material_name": lot.material.name,
            "material_kind": lot.material.kind,
            "lot": lot.number,
            "supplier": lot.supplier,
            "supplier_lot": lot.supplier_lot,
            "expires_at": _at(lot.expires_at),
            "potency": None if lot.potency is None else str(lot.potency),
            "container": c.container.code,
            "quantity": str(c.quantity),
            "unit": c.unit,
            "at": _at(c.at),
            "by": _person(c.ledger.user),
        }

    def ledger_row(e: LedgerEntry) -> dict[str, Any]:
        lot = e.container.lot
        return {
            "id": e.pk,
            "step": e.step_key,
            "kind": e.kind,
            "container": e.container.code,
            "lot": lot.number,
            "material_code": lot.material.code,
            "material_name": lot.material.name,
            "quantity": str(e.quantity),
            "unit": e.unit,
            "balance": str(e.balance),
            "device": e.device,
            "reason": e.reason,
            "by": _person(e.user),
            "at": _at(e.at),
        }

    def logbook_row(e: LogbookEntry) -> dict[str, Any]:
        unit = e.equipment
        return {
            "id": e.pk,
            "equipment": unit.code,
            "name": unit.name,
            "class": unit.equipment_class.name,
            "kind": e.kind,
            "text": e.text,
            "by": _person(e.user),
            "at": _at(e.at),
        }

    materials = [lot_row(c) for c in consumptions]
    weighings = [ledger_row(e) for e in ledger]
    equipment = [logbook_row(e) for e in logbook]
    by_step_mat: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in materials:
        by_step_mat[m["step"]].append(m)
    for w in weighings:
        if w["kind"] == "dispense" and w["quantity"].startswith("-"):
            by_step_mat[w["step"]].append({**w, "dispensed": True})
    # A use of equipment is logged by batch, not step; the identification step names the unit.
    step_units: dict[str, list[dict[str, Any]]] = defaultdict(list)
    claimed = {e["equipment"]: e for e in equipment if e["kind"] == "use_start"}
    for s in screen.steps:
        for v in (x for r in s.rows for x in [r.value, *r.corrections]):
            code = v.text.split(" ", 1)[0]  # the value reads "GRAN-01 High-shear granulator 1"
            if s.step.kind == "equipment_id" and code in claimed:
                step_units[s.step.key].append(claimed[code])

    recipe = batch.recipe
    header = {
        "product_code": recipe.product.code,
        "product_name": recipe.product.name,
        "strength": None,  # not held in the master data yet
        "batch": number,
        "recipe_code": recipe.code,
        "recipe_version": recipe.version,
        "recipe_name": recipe.name,
        "planned_quantity": str(batch.planned_quantity),
        "nominal_quantity": str(batch.nominal_quantity),
        "unit": batch.unit,
        "state": batch.state,
        "created_at": _at(batch.created_at),
        "created_by": _person(batch.created_by),
        "site": _site(logbook),
        "configuration": batch_configuration(batch, generated),
    }

    record_ids: dict[str, set[str]] = {
        "execution.batch": {str(batch.pk)},
        "execution.batchstep": {str(s.step.pk) for s in screen.steps},
        "execution.stepvalue": {
            str(v.pk) for s in screen.steps for r in s.rows for v in [r.value, *r.corrections]
        },
        "execution.batchexception": {str(e.pk) for e in screen.exceptions},
        "signatures.signature": {
            str(x.pk)
            for x in [*screen.batch_signatures, *(sig for s in screen.steps for sig in s.signatures)]
        },
        "materials.consumption": {str(c.pk) for c in consumptions},
        "materials.ledgerentry": {str(e.pk) for e in ledger},
        "materials.container": {str(c.pk) for c in dispensed},
        "materials.labelprint": {str(p.pk) for p in labels},
        "equipment.logbookentry": {str(e.pk) for e in logbook},
    }
    which = Q(pk__in=[])
    for rtype, ids in record_ids.items():
        if ids:
            which |= Q(record_type=rtype, record_id__in=sorted(ids))
    trail = [
        {
            "id": a.pk,
            "at": _at(a.at),
            "actor_id": a.actor_id,
            "actor_username": a.actor_username,
            "actor_name": a.actor_name,
            "action": a.action,
            "record_type": a.record_type,
            "record_id": a.record_id,
            "changes": a.changes,
            "reason": a.reason,
            "via": a.via,
            "prev_hash": a.prev_hash,
            "hash": a.hash,
        }
        for a in AuditEntry.objects.filter(which).order_by("id")
    ]

    return {
        "format": FORMAT,
        "generated_at": _at(generated),
        "header": header,
        "signatures": [_signature(s) for s in screen.batch_signatures],
        "steps": [
            _step(s, batch.ratio, by_step_mat.get(s.step.key, []), step_units.get(s.step.key, []))
            for s in screen.steps
        ],
        "materials": materials,
        "weighings": weighings,
        "dispensed_containers": [
            {
                "container": c.code,
                "lot": c.lot.number,
                "material_code": c.lot.material.code,
                "material_name": c.lot.material.name,
                "quantity": str(c.quantity),
                "unit": c.unit,
                "tare": None if c.tare is None else str(c.tare),
            }
            for c in dispensed
        ],
        "packaging": [m for m in materials if m["material_kind"] == MaterialKind.PACKAGING],
        "labels": [
            {
                "container": p.container.code,
                "reprint": p.reprint,
                "reason": p.reason,
                "format": p.format,
                "content_sha256": p.content_sha256,
                "by": _person(p.user),
                "at": _at(p.at),
            }
            for p in labels
        ],
        "equipment": equipment,
        "exceptions": [
            {
                "id": e.pk,
                "code": e.code,
                "severity": e.severity,
                "message": e.message,
                "step": e.step.key if e.step else None,
                "user": _person(e.user),
                "at": _at(e.at),
                **quality["exceptions"][e.pk],
            }
            for e in screen.exceptions
        ],
        "deviations": quality["deviations"],
        "yields": quality["yields"],
        "reconciliation": quality["reconciliation"],
        "review": quality["review"],
        "audit_trail": trail,
    }
