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

import bisect
import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import Q
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.configuration import selectors as configuration
from batchline.configuration.models import ConfigVersion
from batchline.equipment.models import LogbookEntry, Site
from batchline.execution import instruments
from batchline.execution.models import Batch
from batchline.execution.scaling import Ratio, limits_text, target_text
from batchline.execution.selectors import StepScreen, ValueRow, batch_screen
from batchline.execution.services import recorded_values
from batchline.execution.steprecords import records_of
from batchline.materials.models import Consumption, Container, LabelPrint, LedgerEntry, MaterialKind, Movement
from batchline.quality import selectors as quality_selectors
from batchline.rules import bindings, canonical, numbers
from batchline.rules.numbers import Notation
from batchline.signatures.models import Signature
from batchline.signatures.services import signature_fields

from . import sections

FORMAT = "batchline.batch-record/1"


def content_text(content: dict[str, Any]) -> str:
    """The canonical JSON text the document's hash is computed over."""
    return canonical.dumps(content)


def content_sha256(content: dict[str, Any]) -> str:
    return hashlib.sha256(content_text(content).encode()).hexdigest()


def _at(value: Any) -> str | None:
    return None if value is None else str(canonical.normalise(value))


Who = Callable[[Any, Any], dict[str, Any] | None]


def _person(user: Any) -> dict[str, Any] | None:
    return {"username": user.username, "name": user.printed_name} if user else None


def names_at(trail: list[dict[str, Any]]) -> Who:
    """``who(user, at)``: the person with their printed name as it stood at ``at`` (21 CFR 11.50).

    Every action writes the actor's printed name into its audit entry, so the
    entry of this person nearest in time to the action gives the name they
    acted under; a later change of name shows beside it as ``name_now``.
    """
    by_actor: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
    for a in trail:
        if a["actor_id"] is not None:
            by_actor[a["actor_id"]].append((dt.datetime.fromisoformat(a["at"]), a["actor_name"]))
    for rows_ in by_actor.values():
        rows_.sort()

    def who(user: Any, at: Any) -> dict[str, Any] | None:
        if user is None:
            return None
        name = user.printed_name
        found = by_actor.get(user.pk)
        if found and at is not None:
            i = bisect.bisect_left(found, (at, ""))
            near = [found[j] for j in (i - 1, i) if 0 <= j < len(found)]
            name = min(near, key=lambda r: abs((r[0] - at).total_seconds()))[1]
        person = {"username": user.username, "name": name}
        if name != user.printed_name:
            person["name_now"] = user.printed_name
        return person

    return who


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


def _limits(definition: dict[str, Any], ratio: Ratio, notation: Notation) -> dict[str, str]:
    return {
        "target": target_text(definition, ratio, notation),
        **{
            name: limits_text(definition, ratio, name, notation)
            for name in ("plausible", "specification", "action")
        },
    }


def origin_text(v: dict[str, Any], when: Callable[[str], str] = str) -> str:
    """Where a value read from a machine came from, or that it was typed in its place (page, PDF and
    BatchML); ``when`` writes its times as the document writes every other (the page and the PDF in
    the site's zone; by default the exact UTC instant)."""
    r = v.get("reading")
    if r:
        sent = f"{r['raw']} {r['raw_unit']}".strip()
        times = f"device time {when(r['source_time'])}, " if r.get("source_time") else ""
        return (
            f"read from {r['equipment']} ({r['protocol']} {r['endpoint']} {r['tag']}): {sent}, "
            f"{r['quality']}, {times}received {when(r['gateway_time'])}"
        )
    if v.get("source") == "manual":
        # A correction shows its reason as a correction; a first entry shows it here.
        reason = "" if v.get("corrects") else v.get("reason") or ""
        return "typed by hand in place of the device's reading, witnessed" + (f": {reason}" if reason else "")
    return ""


def _values(
    s: StepScreen, ratio: Ratio, who: Who, notation: Notation, readings: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every value of a step, originals before their corrections, each with its limits."""
    defs = {d["name"]: dict(d) for d in recorded_values(s.definition)}
    out = []
    for row in s.rows:
        out.extend(_row(row, defs.get(row.value.name, {}), ratio, who, notation, readings))
    return out


def _row(
    row: ValueRow,
    definition: dict[str, Any],
    ratio: Ratio,
    who: Who,
    notation: Notation,
    readings: dict[int, dict[str, Any]],
) -> list[dict[str, Any]]:
    limits = _limits(definition, ratio, notation)
    chain = [row.value, *row.corrections]
    out = []
    for i, v in enumerate(chain):
        # What a person reads: the number in the site's notation, and the typed text where it differs.
        shown, typed = numbers.recorded(v.number, v.text, notation, calculated=v.source == "calculated")
        out.append(
            {
                "id": v.pk,
                "name": v.name,
                "label": v.label,
                "text": v.text,
                "number": None if v.number is None else numbers.shown(v.number),
                "shown": shown,
                "typed": typed,
                "unit": v.unit,
                "source": v.source,
                "critical": bool(definition.get("critical")),
                **limits,
                "in_specification": v.in_specification,
                "within_action": v.within_action,
                "entered_by": who(v.entered_by, v.entered_at),
                "entered_at": _at(v.entered_at),
                "station": v.station,
                "corrects": v.corrects_id,
                "reason": v.reason,
                # The marker the document prints: this entry was replaced by a later one.
                "changed_after_entry": i < len(chain) - 1,
                "current": i == len(chain) - 1,
                # Read from a machine: where it came from (execution/instruments.py), as signed.
                **({"reading": readings[v.pk]} if v.pk in readings else {}),
            }
        )
    return out


def _step(
    s: StepScreen,
    ratio: Ratio,
    materials: list[dict[str, Any]],
    equipment: list[dict[str, Any]],
    who: Who,
    records: list[dict[str, Any]],
    notation: Notation,
    readings: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    d = s.definition
    step = s.step
    material = d.get("material")
    return {
        "id": step.pk,
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
        "started_by": who(step.started_by, step.started_at),
        "completed_at": _at(step.completed_at),
        "completed_by": who(step.completed_by, step.completed_at),
        "verified_at": _at(step.verified_at),
        "verified_by": who(step.verified_by, step.verified_at),
        "values": _values(s, ratio, who, notation, readings),
        "signatures": [_signature(x) for x in s.signatures],
        "materials": materials,
        "equipment": equipment,
        # The step's own records as its signatures bind them (execution.steprecords); the sections
        # "samples", "output" and "labelling" show them with names and labels.
        **({"records": records} if records else {}),
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


def _batch_signatures(screen: Any, quality: dict[str, Any], wasted: Sequence[int] = ()) -> list[Signature]:
    """Every signature of the batch: its own, its steps' and values', its exceptions' dispositions, its
    deviations' and its review stages' (what the archive holds and ``audit verify`` checks)."""
    own = [*screen.batch_signatures, *(sig for s in screen.steps for sig in s.signatures)]
    wanted = Q(pk__in=[])
    for rtype, ids in (
        (
            "execution.exceptiondisposition",
            [e["disposition"]["id"] for e in quality["exceptions"].values() if e["disposition"]],
        ),
        ("quality.deviation", [d["id"] for d in quality["deviations"]]),
        ("quality.reviewstage", [x["id"] for x in (quality["review"] or {}).get("stages", [])]),
        ("materials.ledgerentry", wasted),
    ):
        if ids:
            wanted |= Q(record_type=rtype, record_id__in=[str(i) for i in ids])
    found = {s.pk: s for s in own}
    for s in Signature.objects.filter(wanted):
        found.setdefault(s.pk, s)
    return [found[k] for k in sorted(found)]


def record_content(batch: Batch, *, now: Any = None, with_status: bool = True) -> dict[str, Any]:
    """Everything the executed batch record holds (issue 5 item 5; 21 CFR 211.188(b)).

    Reads only; about a dozen queries whatever the number of steps. ``now``
    is the generation time (the server's clock unless a caller passes one).
    Each signature carries its status (``rules.bindings``) unless
    ``with_status`` is false (a review stage binding the record as it stands).
    Names are printed as they stood when each person acted or signed.
    """
    generated = now or timezone.now()
    batch = Batch.objects.select_related("recipe__product", "created_by").get(pk=batch.pk)
    notation = configuration.notation()
    screen = batch_screen(batch, notation)
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
    # Weighed out for the batch, and what was left of them and went back to stock (its own
    # containers, labels and audit entries), in one read.
    containers = list(
        Container.objects.filter(Q(dispensed_for=number) | Q(returned_from=number))
        .select_related("lot__material")
        .order_by("code")
    )
    dispensed = [c for c in containers if c.dispensed_for == number]
    returned = [c for c in containers if c.returned_from == number]
    logbook = list(
        LogbookEntry.objects.filter(batch_number=number)
        .select_related("equipment__site", "equipment__equipment_class", "user")
        .order_by("at", "id")
    )
    labels = list(
        LabelPrint.objects.filter(container__in=[c.pk for c in [*dispensed, *returned]])
        .select_related("container", "user")
        .order_by("at", "id")
    )
    signatures = _batch_signatures(screen, quality, [e.pk for e in ledger if e.kind == Movement.DESTROY])
    step_records = records_of(number, [(s.step.pk, s.step.key, s.step.kind) for s in screen.steps])
    read = instruments.reading_rows(
        v.pk for s in screen.steps for r in s.rows for v in [r.value, *r.corrections] if v.source == "device"
    )
    readings = {pk: instruments.provenance_of(r) for pk, r in read.items()}

    record_ids: dict[str, set[str]] = {
        "execution.batch": {str(batch.pk)},
        "execution.batchstep": {str(s.step.pk) for s in screen.steps},
        "execution.stepvalue": {
            str(v.pk) for s in screen.steps for r in s.rows for v in [r.value, *r.corrections]
        },
        "execution.batchexception": {str(e.pk) for e in screen.exceptions},
        "execution.exceptiondisposition": {
            str(e["disposition"]["id"]) for e in quality["exceptions"].values() if e["disposition"]
        },
        "quality.deviation": {str(d["id"]) for d in quality["deviations"]},
        "quality.deviationlink": {str(lk["id"]) for d in quality["deviations"] for lk in d["links"]},
        "quality.reviewstage": {str(x["id"]) for x in (quality["review"] or {}).get("stages", [])},
        "signatures.signature": {str(x.pk) for x in signatures},
        "materials.consumption": {str(c.pk) for c in consumptions},
        "materials.ledgerentry": {str(e.pk) for e in ledger},
        "materials.container": {str(c.pk) for c in dispensed},
        "materials.labelprint": {str(p.pk) for p in labels},
        "equipment.logbookentry": {str(e.pk) for e in logbook},
        "execution.instrumentreading": {str(r.pk) for r in read.values()},
    }
    build_sections, kind_ids = sections.read(
        batch,
        {s.step.key: s.step.kind for s in screen.steps},
        {s.step.key: s.definition.get("monitors") or [] for s in screen.steps},
    )
    for rtype, ids in kind_ids.items():
        record_ids.setdefault(rtype, set()).update(ids)
    which = Q(pk__in=[])
    for rtype, ids in record_ids.items():
        if ids:
            which |= Q(record_type=rtype, record_id__in=sorted(ids))
    if returned:  # a returned container is stock again: its later life belongs to the batches that use it
        which |= Q(
            record_type="materials.container",
            record_id__in=[str(c.pk) for c in returned],
            action__in=["create", Movement.RETURN],
        )
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
            "chain": a.chain,
            "seq": a.seq,
            "prev_hash": a.prev_hash,
            "hash": a.hash,
        }
        for a in AuditEntry.objects.filter(which).order_by("id")
    ]
    who = names_at(trail)
    link_entries = {
        a["record_id"]: a["id"]
        for a in trail
        if a["record_type"] == "quality.deviationlink" and a["action"] == "create"
    }
    for d in quality["deviations"]:
        for lk in d["links"]:
            lk["entry"] = link_entries.get(str(lk["id"]))

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
            "by": who(c.ledger.user, c.at),
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
            "station": e.station,
            "reason": e.reason,
            "by": who(e.user, e.at),
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
            "station": e.station,
            "by": who(e.user, e.at),
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
        "created_by": who(batch.created_by, batch.created_at),
        "site": _site(logbook),
        "configuration": batch_configuration(batch, generated),
        # How the values' "shown" texts and the limits are written (rules/numbers.py); "number" is exact.
        "notation": notation.name,
    }

    content = {
        "format": FORMAT,
        "generated_at": _at(generated),
        "header": header,
        "signatures": [_signature(s) for s in screen.batch_signatures],
        "steps": [
            _step(
                s,
                batch.ratio,
                by_step_mat.get(s.step.key, []),
                step_units.get(s.step.key, []),
                who,
                step_records.get(s.step.pk, []),
                notation,
                readings,
            )
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
                "by": who(p.user, p.at),
                "at": _at(p.at),
            }
            for p in labels
        ],
        "equipment": equipment,
        **build_sections(who),
        "exceptions": [
            {
                "id": e.pk,
                "code": e.code,
                "severity": e.severity,
                "message": e.message,
                "step": e.step.key if e.step else None,
                "user": who(e.user, e.at),
                "at": _at(e.at),
                **quality["exceptions"][e.pk],
            }
            for e in screen.exceptions
        ],
        "deviations": quality["deviations"],
        "yields": quality["yields"],
        "reconciliation": quality["reconciliation"],
        "review": quality["review"],
        # Every signature of the batch with every field its binding covers (rules.bindings).
        "signature_records": [signature_fields(s) for s in signatures],
        "audit_trail": trail,
    }
    if with_status:
        signature_status_annotate(content)
    return content


def signature_status_annotate(content: dict[str, Any]) -> dict[int, bindings.Status]:
    """Judge every signature of ``content`` (``rules.bindings.record_statuses``) and write each one's
    ``status`` beside it wherever it is shown: the batch's, each step's, and the full list."""
    statuses = bindings.record_statuses(content)
    for s in [
        *content["signatures"],
        *(x for step in content["steps"] for x in step["signatures"]),
        *content["signature_records"],
    ]:
        if s["id"] in statuses:
            s["status"] = statuses[s["id"]].as_dict()
    for e in content["exceptions"]:
        d = e.get("disposition")
        if d:
            found = [
                statuses[s["id"]].as_dict()
                for s in content["signature_records"]
                if s["record_type"] == "execution.exceptiondisposition" and s["record_id"] == str(d["id"])
            ]
            d["status"] = found[-1] if found else None
    return statuses
