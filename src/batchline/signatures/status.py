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
    return bindings.step_statuses(batch_number, step_screen.step.key, values, sigs, audited)


def annotate(signatures: list[Any], statuses: dict[int, bindings.Status]) -> None:
    """Set ``.status`` on Signature objects a template shows (None when it was not judged here)."""
    for s in signatures:
        s.status = statuses.get(s.pk)


def broken_signatures(batches: Any = None) -> list[str]:
    """One finding per BROKEN signature of every batch (or of ``batches``), in words naming both.

    For ``audit verify``: ``batch B-1: signature #12 (verified, Sam Supervisor, on
    execution.batchstep:7): BROKEN: the signed content changed outside the
    application; …``. Reads each batch's whole record, so it takes as long as
    writing every record's JSON (docs/records.md).
    """
    from batchline.execution.models import Batch

    found: list[str] = []
    query = Batch.objects.all() if batches is None else batches
    for batch in query.order_by("id").defer("control_recipe"):
        content, statuses = batch_statuses(batch)
        found.extend(bindings.findings(batch.number, content, statuses))
    return found


def record_sha256(batch: Any) -> str:
    """SHA-256 of the complete record of ``batch`` as it stands, for a review stage to bind.

    Called inside the signing transaction (``quality.services.review_sign``), after
    the batch's lock, so nothing changes between the hash and the signature.
    """
    from batchline.reports.content import record_content

    return bindings.record_sha256(record_content(batch, with_status=False), None)


def deviation_signatures(deviation: Any) -> list[dict[str, Any]]:
    """A deviation's signatures, oldest first, each ``{"signature", "status"}`` (the deviation page)."""
    from batchline.audit.models import AuditEntry
    from batchline.signatures.models import Signature

    sigs = list(
        Signature.objects.filter(record_type="quality.deviation", record_id=str(deviation.pk)).order_by("id")
    )
    links = list(deviation.links.order_by("id"))
    entries = {
        (rtype, rid): pk
        for rtype, rid, pk in AuditEntry.objects.filter(
            record_type="quality.deviationlink", record_id__in=[str(lk.pk) for lk in links], action="create"
        ).values_list("record_type", "record_id", "id")
    }
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
    statuses = bindings.deviation_statuses(record, [signature_fields(s) for s in sigs], sign_entry)
    return [{"signature": s, "status": statuses.get(s.pk)} for s in sigs]
