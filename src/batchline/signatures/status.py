"""The status of every signature of a batch, read from the database (21 CFR 11.70; issue 10 item 3).

The judgement itself is ``rules.bindings`` (pure, shared with the archive
verifier); this module feeds it what the database holds. Three readers:

- :func:`batch_statuses`: every signature of one batch (record page, review
  page, PDF and archive go through ``reports.content.record_content``, which
  calls the same judgement);
- :func:`step_statuses`: the signatures of the one step the execution screen
  shows, without reading the whole record;
- :func:`broken_signatures`: one finding per BROKEN signature of any batch,
  for ``audit verify``.
"""

from __future__ import annotations

from typing import Any

from batchline.rules import bindings, canonical

from .services import signature_fields


def batch_statuses(batch: Any) -> tuple[dict[str, Any], dict[int, bindings.Status]]:
    """The batch's record content (with each signature's status) and the statuses by signature id."""
    from batchline.reports.content import record_content, signature_status_annotate

    content = record_content(batch, with_status=False)
    return content, signature_status_annotate(content)


def value_fields(value: Any) -> dict[str, Any]:
    return {
        "id": value.pk,
        "name": value.name,
        "text": value.text,
        "unit": value.unit,
        "corrects": value.corrects_id,
        "reason": value.reason,
        "source": value.source,
        "entered_at": canonical.normalise(value.entered_at),
        "entered_by": {"username": value.entered_by.username, "name": value.entered_by.printed_name}
        if value.entered_by_id
        else None,
    }


def step_statuses(batch_number: str, step_screen: Any) -> dict[int, bindings.Status]:
    """Statuses of one step's signatures (the step's and its corrections'), from a ``StepScreen``."""
    from batchline.audit.models import AuditEntry

    values = [value_fields(v) for r in step_screen.rows for v in [r.value, *r.corrections]]
    sigs = [signature_fields(s) for s in step_screen.signatures]
    recalculated = [str(v["id"]) for v in values if v["corrects"] and v["source"] == "calculated"]
    audited = (
        [
            int(i)
            for i in AuditEntry.objects.filter(
                record_type="execution.stepvalue",
                record_id__in=recalculated,
                action__in=bindings.VALUE_WRITES,
            ).values_list("record_id", flat=True)
        ]
        if recalculated
        else []
    )
    dispensed: list[str] = []
    if any(s["witness"] and s["record_type"] == "execution.stepvalue" for s in sigs):
        from batchline.materials.models import LedgerEntry

        dispensed = list(
            LedgerEntry.objects.filter(
                batch_number=batch_number, step_key=step_screen.step.key, kind="dispense", quantity__gt=0
            ).values_list("container__code", flat=True)
        )
    from batchline.execution.steprecords import step_records

    records = step_records(step_screen.step)
    return bindings.step_statuses(
        batch_number, step_screen.step.key, values, sigs, audited, dispensed, records
    )


def annotate(signatures: list[Any], statuses: dict[int, bindings.Status]) -> None:
    """Set ``.status`` on Signature objects a template shows (None when it was not judged here)."""
    for s in signatures:
        s.status = statuses.get(s.pk)


def broken_signatures(batches: Any = None) -> list[str]:
    """One finding per BROKEN signature of every batch (or of ``batches``), in words naming both.

    For ``audit verify``: ``batch B-1: signature #12 (verified, Sam Supervisor, on
    execution.batchstep:7): BROKEN: the signed content changed outside the
    application; …``. Reads each batch with :func:`lean_record` (a few
    value queries per batch, no rendering).
    """
    from batchline.execution.models import Batch

    found: list[str] = []
    query = Batch.objects.all() if batches is None else batches
    for batch in query.order_by("id").only("id", "number"):
        record, statuses = statuses_of(batch)
        found.extend(bindings.findings(batch.number, record, statuses))
    return found


def record_sha256(batch: Any) -> str:
    """SHA-256 of the complete record of ``batch`` as it stands, for a review stage to bind.

    Called inside the signing transaction (``quality.services.review_sign``), after
    the batch's lock, so nothing changes between the hash and the signature.
    """
    return bindings.record_sha256(lean_record(batch), None)


def deviation_signatures(deviation: Any) -> list[dict[str, Any]]:
    """A deviation's signatures, oldest first, each ``{"signature", "status"}`` (the deviation page)."""
    from batchline.audit.models import AuditEntry
    from batchline.signatures.models import Signature

    sigs = list(
        Signature.objects.filter(record_type="quality.deviation", record_id=str(deviation.pk)).order_by("id")
    )
    links = list(deviation.links.order_by("id"))
    link_entries = {
        pk: {"id": pk, "record_id": rid, "actor_name": name, "at": at, "reason": reason}
        for pk, rid, name, at, reason in AuditEntry.objects.filter(
            record_type="quality.deviationlink", record_id__in=[str(lk.pk) for lk in links], action="create"
        ).values_list("id", "record_id", "actor_name", "at", "reason")
    }
    entries = {("quality.deviationlink", e["record_id"]): pk for pk, e in link_entries.items()}
    entries.update(
        {
            (rtype, rid): pk
            for rtype, rid, pk in AuditEntry.objects.filter(
                record_type="signatures.signature", record_id__in=[str(s.pk) for s in sigs], action="sign"
            ).values_list("record_type", "record_id", "id")
        }
    )
    record = {
        "number": deviation.number,
        "title": deviation.title,
        "classification": deviation.classification,
        "state": deviation.state,
        "description": deviation.description,
        "immediate_action": deviation.immediate_action,
        "investigation": deviation.investigation,
        "root_cause": deviation.root_cause,
        "impact": deviation.impact,
        "capa": deviation.capa_reference,
        "links": [
            {
                "id": lk.pk,
                "batch": lk.batch_number,
                "lot": lk.lot_number,
                "equipment": lk.equipment_code,
                "exception": lk.exception_id,
                "entry": entries.get(("quality.deviationlink", str(lk.pk))),
            }
            for lk in links
        ],
    }
    sign_entry = {
        s.pk: entries[("signatures.signature", str(s.pk))]
        for s in sigs
        if ("signatures.signature", str(s.pk)) in entries
    }
    statuses = bindings.deviation_statuses(
        record, [signature_fields(s) for s in sigs], sign_entry, link_entries
    )
    return [{"signature": s, "status": statuses.get(s.pk)} for s in sigs]


def _printed(full_name: str | None, first: str | None, last: str | None, username: str | None) -> str:
    return full_name or f"{first or ''} {last or ''}".strip() or username or ""


def _person(username: str | None, *names: str | None) -> dict[str, Any] | None:
    """``{"username", "name"}`` from a user ID and its full, first and last name columns."""
    if username is None:
        return None
    full, first, last = (*names, None, None, None)[:3]
    return {"username": username, "name": _printed(full, first, last, username)}


def lean_record(batch: Any) -> dict[str, Any]:
    """What the judgement of a batch's signatures reads, and nothing else: fast enough for a page.

    The same keys and shapes as ``reports.content.record_content`` for every field
    ``rules.bindings`` reads (the values, exceptions, dispositions, deviations and
    their links, materials, weighings, equipment use, signatures, review stages and
    the audit entries the judgement needs), read with plain value queries: no
    limits, renderings or names as they stood (a test holds its approved content
    equal to the full record's).
    """
    from django.contrib.auth import get_user_model
    from django.db.models import CharField, Q
    from django.db.models.functions import Cast

    from batchline.audit.models import AuditEntry
    from batchline.equipment.models import LogbookEntry
    from batchline.execution.instruments import readings_of
    from batchline.execution.models import Batch, BatchException, BatchStep, ExceptionDisposition, StepValue
    from batchline.execution.steprecords import records_of
    from batchline.materials.models import Consumption, Container, LabelPrint, LedgerEntry
    from batchline.quality.models import Deviation, ReviewStage
    from batchline.signatures.models import Signature

    def text_ids(qs: Any) -> Any:
        return qs.annotate(sid=Cast("id", CharField())).values("sid")

    b = (
        Batch.objects.select_related("recipe", "created_by")
        .defer("control_recipe", "recipe__document")
        .get(pk=batch.pk)
    )
    number = b.number
    u = b.created_by
    header = {
        "batch": number,
        "recipe_code": b.recipe.code,
        "recipe_version": b.recipe.version,
        "planned_quantity": str(b.planned_quantity),
        "unit": b.unit,
        "created_at": canonical.normalise(b.created_at),
        "created_by": _person(u.username, u.full_name, u.first_name, u.last_name),
    }
    steps_q = BatchStep.objects.filter(batch=b)
    step_rows = list(steps_q.order_by("seq", "id").values_list("id", "key", "kind"))
    steps = [{"id": pk, "key": key, "values": []} for pk, key, _kind in step_rows]
    by_step = {s["id"]: s for s in steps}
    for step_id, records in records_of(number, step_rows).items():
        by_step[step_id]["records"] = records
    values_q = StepValue.objects.filter(step__batch=b)
    rows = list(
        values_q.order_by("entered_at", "id").values_list(
            "id",
            "step_id",
            "name",
            "text",
            "unit",
            "source",
            "corrects_id",
            "reason",
            "entered_at",
            "entered_by_id",
        )
    )
    # The people who entered values are few: read once, not joined onto every value.
    people = {
        pk: _person(username, full, first, last)
        for pk, username, full, first, last in get_user_model()
        .objects.filter(pk__in={r[9] for r in rows if r[9] is not None})
        .values_list("id", "username", "full_name", "first_name", "last_name")
    }
    # Where a value read from a machine came from, as the step's signatures bind it.
    readings = readings_of(r[0] for r in rows if r[5] == "device")
    for pk, step_id, name, text, unit, source, corrects, reason, at, user_id in rows:
        by_step[step_id]["values"].append(
            {
                "id": pk,
                "name": name,
                "text": text,
                "unit": unit,
                "source": source,
                "corrects": corrects,
                "reason": reason,
                "entered_at": at,  # a date-time: rules.bindings reads both forms
                "entered_by": people.get(user_id),
                **({"reading": readings[pk]} if pk in readings else {}),
            }
        )
    dispositions = {
        exc: {
            "id": pk,
            "decision": decision,
            "comment": comment,
            "deviation": dev or None,
            "at": at.isoformat(),
        }
        for pk, exc, decision, comment, dev, at in ExceptionDisposition.objects.filter(
            exception__batch=b
        ).values_list("id", "exception_id", "decision", "comment", "deviation_number", "at")
    }
    exceptions = [
        {
            "id": pk,
            "code": code,
            "severity": severity,
            "message": message,
            "step": step,
            "at": canonical.normalise(at),
            "user": _person(user, *names),
            "disposition": dispositions.get(pk),
        }
        for pk, code, severity, message, step, at, user, *names in BatchException.objects.filter(batch=b)
        .order_by("at", "id")
        .values_list(
            "id",
            "code",
            "severity",
            "message",
            "step__key",
            "at",
            "user__username",
            "user__full_name",
            "user__first_name",
            "user__last_name",
        )
    ]
    deviations = list(
        Deviation.objects.filter(links__batch_number=number)
        .distinct()
        .order_by("number")
        .prefetch_related("links")
    )
    deviation_rows = [d.record_content() for d in deviations]
    materials = [
        {
            "step": step,
            "lot": lot,
            "container": container,
            "quantity": str(quantity),
            "unit": unit,
            "at": canonical.normalise(at),
            "by": _person(user, *names),
        }
        for step, lot, container, quantity, unit, at, user, *names in Consumption.objects.filter(
            batch_number=number
        ).values_list(
            "step_key",
            "lot__number",
            "container__code",
            "quantity",
            "unit",
            "at",
            "ledger__user__username",
            "ledger__user__full_name",
            "ledger__user__first_name",
            "ledger__user__last_name",
        )
    ]
    weighings = [
        {
            "id": pk,
            "step": step,
            "kind": kind,
            "container": container,
            "lot": lot,
            "quantity": str(quantity),
            "unit": unit,
            "balance": str(balance),
            "device": device,
            "reason": reason,
            "at": canonical.normalise(at),
            "by": _person(user, *names),
        }
        for pk, step, kind, container, lot, quantity, unit, balance, device, reason, at, user, *names in (
            LedgerEntry.objects.filter(batch_number=number).values_list(
                "id",
                "step_key",
                "kind",
                "container__code",
                "container__lot__number",
                "quantity",
                "unit",
                "balance",
                "device",
                "reason",
                "at",
                "user__username",
                "user__full_name",
                "user__first_name",
                "user__last_name",
            )
        )
    ]
    equipment = [
        {
            "id": pk,
            "equipment": code,
            "kind": kind,
            "text": text,
            "at": canonical.normalise(at),
            "by": _person(user, *names),
        }
        for pk, code, kind, text, at, user, *names in LogbookEntry.objects.filter(
            batch_number=number
        ).values_list(
            "id",
            "equipment__code",
            "kind",
            "text",
            "at",
            "user__username",
            "user__full_name",
            "user__first_name",
            "user__last_name",
        )
    ]
    stages = [
        {
            "id": pk,
            "stage": stage,
            "checklist": checklist,
            "rules_version": rules_version,
            "comment": comment,
            "record_sha256": digest,
        }
        for pk, stage, checklist, rules_version, comment, digest in ReviewStage.objects.filter(batch=b)
        .order_by("at", "id")
        .values_list("id", "stage", "checklist", "rules_version", "comment", "record_sha256")
    ]
    value_ids = text_ids(values_q)
    disposition_ids = [str(d["id"]) for d in dispositions.values()]
    deviation_ids = [str(d["id"]) for d in deviation_rows]
    link_ids = [str(lk["id"]) for d in deviation_rows for lk in d["links"]]
    stage_ids = [str(x["id"]) for x in stages]
    signatures = list(
        Signature.objects.filter(
            Q(record_type="execution.batch", record_id=str(b.pk))
            | Q(record_type="execution.batchstep", record_id__in=text_ids(steps_q))
            | Q(record_type="execution.stepvalue", record_id__in=value_ids)
            | Q(record_type="execution.exceptiondisposition", record_id__in=disposition_ids)
            | Q(record_type="quality.deviation", record_id__in=deviation_ids)
            | Q(record_type="quality.reviewstage", record_id__in=stage_ids)
            # material wasted from the batch's dispensed containers, signed by who destroyed it
            | Q(record_type="materials.ledgerentry", record_id__in=[str(w["id"]) for w in weighings])
        ).order_by("id")
    )
    sig_ids = [str(s.pk) for s in signatures]
    corrections = [str(v["id"]) for s in steps for v in s["values"] if v["corrects"]]
    wanted = (
        Q(record_type="signatures.signature", record_id__in=sig_ids, action="sign")
        | Q(record_type="execution.stepvalue", record_id__in=corrections)
        | Q(record_type="execution.batch", record_id=str(b.pk))
        | Q(record_type="quality.deviationlink", record_id__in=link_ids)
    )
    stage_sigs = [s.pk for s in signatures if s.record_type == "quality.reviewstage"]
    first_stage = (
        AuditEntry.objects.filter(
            record_type="signatures.signature", record_id__in=[str(i) for i in stage_sigs], action="sign"
        )
        .order_by("id")
        .values_list("id", flat=True)
        .first()
        if stage_sigs
        else None
    )
    if first_stage is not None:  # every change to the batch's records after its first review stage
        wanted |= Q(id__gt=first_stage) & (
            Q(record_type="execution.batchstep", record_id__in=text_ids(steps_q))
            | Q(record_type="execution.stepvalue", record_id__in=value_ids)
            | Q(
                record_type="execution.batchexception",
                record_id__in=text_ids(BatchException.objects.filter(batch=b)),
            )
            | Q(record_type="execution.exceptiondisposition", record_id__in=disposition_ids)
            | Q(record_type="quality.deviation", record_id__in=deviation_ids)
            | Q(record_type="quality.reviewstage", record_id__in=stage_ids)
            | Q(record_type="signatures.signature", record_id__in=sig_ids)
            | Q(
                record_type="materials.consumption",
                record_id__in=text_ids(Consumption.objects.filter(batch_number=number)),
            )
            | Q(
                record_type="materials.ledgerentry",
                record_id__in=text_ids(LedgerEntry.objects.filter(batch_number=number)),
            )
            | Q(
                record_type="materials.container",
                record_id__in=text_ids(Container.objects.filter(dispensed_for=number)),
            )
            | Q(
                record_type="materials.labelprint",
                record_id__in=text_ids(LabelPrint.objects.filter(container__dispensed_for=number)),
            )
            | Q(
                record_type="equipment.logbookentry",
                record_id__in=text_ids(LogbookEntry.objects.filter(batch_number=number)),
            )
        )
    trail = [
        {
            "id": pk,
            "at": canonical.normalise(at),
            "actor_name": actor_name,
            "action": action,
            "record_type": rtype,
            "record_id": rid,
            "changes": changes,
            "reason": reason,
        }
        for pk, at, actor_name, action, rtype, rid, changes, reason in AuditEntry.objects.filter(wanted)
        .order_by("id")
        .values_list("id", "at", "actor_name", "action", "record_type", "record_id", "changes", "reason")
    ]
    link_entries = {
        e["record_id"]: e["id"]
        for e in trail
        if e["record_type"] == "quality.deviationlink" and e["action"] == "create"
    }
    for d in deviation_rows:
        for lk in d["links"]:
            lk["entry"] = link_entries.get(str(lk["id"]))
    return {
        "header": header,
        "steps": steps,
        "exceptions": exceptions,
        "deviations": deviation_rows,
        "materials": materials,
        "weighings": weighings,
        "equipment": equipment,
        "review": {"stages": stages} if stages else None,
        "signature_records": [signature_fields(s) for s in signatures],
        "audit_trail": trail,
    }


def statuses_of(batch: Any) -> tuple[dict[str, Any], dict[int, bindings.Status]]:
    """Every signature of ``batch`` judged from :func:`lean_record` (pages, ``audit verify``)."""
    record = lean_record(batch)
    statuses = bindings.record_statuses(record)
    for s in record["signature_records"]:
        s["status"] = statuses[s["id"]].as_dict() if s["id"] in statuses else None
    return record, statuses
