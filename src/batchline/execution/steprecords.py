"""The records a step keeps besides its values, as its signatures bind them (21 CFR 11.70).

A sampling step's samples, a produce step's containers of the output lot, a labelling step's
labels issued (with the specimen's hash), its reconciliation and its examination are the step's
own record: the performer's and the verifier's signatures cover them as they cover the values.
This module reads them in a fixed number of queries for any number of steps, in one canonical
shape that every reader shares: the signing service, the batch record
(``reports.content``), the lean record that judges signatures (``signatures.status``) and,
through the archived JSON, the archive verifier. Label prints are not bound: a reprint after
signing is a logged event of its own, not a change to what was signed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from batchline.materials.models import LedgerEntry, Movement
from batchline.rules import canonical

from .models import LabelExamination, LabelIssue, LabelReconciliation, Sample

# The step kinds whose records this module reads; other steps cost no query.
KINDS = frozenset({"sampling", "produce", "labelling"})


def _at(value: Any) -> str:
    return str(canonical.normalise(value))


def _num(value: Any) -> str:
    return str(canonical.normalise(value))


def sample_row(s: Sample, by: str) -> dict[str, Any]:
    return {
        "type": "sample",
        "id": s.pk,
        "code": s.code,
        "material_code": s.material_code,
        "source_kind": s.source_kind,
        "source": s.source,
        "lot": s.lot,
        "position": s.position,
        "quantity": _num(s.quantity),
        "unit": s.unit,
        "test": s.test,
        "method": s.method,
        "by": by,
        "at": _at(s.taken_at),
    }


def records_of(batch_number: str, steps: Iterable[tuple[int, str, str]]) -> dict[int, list[dict[str, Any]]]:
    """``{step id: [record, ...]}`` for ``steps`` given as (id, key, kind); people by user ID.

    At most five queries, none for a batch whose steps have no records of their own.
    """
    steps = [s for s in steps if s[2] in KINDS]
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not steps:
        return out
    ids = [pk for pk, _key, _kind in steps]
    kinds = {kind for _pk, _key, kind in steps}
    if "sampling" in kinds:
        for s in Sample.objects.filter(step_id__in=ids).select_related("taken_by").order_by("id"):
            out[s.step_id].append(sample_row(s, s.taken_by.username))
    if "produce" in kinds:
        by_key = {key: pk for pk, key, kind in steps if kind == "produce"}
        for e in (
            LedgerEntry.objects.filter(batch_number=batch_number, kind=Movement.PRODUCE, step_key__in=by_key)
            .select_related("container", "user")
            .order_by("id")
        ):
            out[by_key[e.step_key]].append(
                {
                    "type": "produced",
                    "id": e.pk,
                    "container": e.container.code,
                    "quantity": _num(e.quantity),
                    "unit": e.unit,
                    "by": e.user.username,
                    "at": _at(e.at),
                }
            )
    if "labelling" in kinds:
        for i in LabelIssue.objects.filter(step_id__in=ids).select_related("by").order_by("id"):
            out[i.step_id].append(
                {
                    "type": "labels_issued",
                    "id": i.pk,
                    "quantity": i.quantity,
                    "content": i.content,
                    "specimen_sha256": i.specimen_sha256,
                    "by": i.by.username,
                    "at": _at(i.at),
                }
            )
        for r in LabelReconciliation.objects.filter(step_id__in=ids).select_related("by"):
            out[r.step_id].append(
                {
                    "type": "labels_reconciled",
                    "id": r.pk,
                    "issued": r.issued,
                    "applied": r.applied,
                    "destroyed": r.destroyed,
                    "returned": r.returned,
                    "difference": r.difference,
                    "within": r.within,
                    "by": r.by.username,
                    "at": _at(r.at),
                }
            )
        for x in LabelExamination.objects.filter(step_id__in=ids).select_related("by"):
            out[x.step_id].append(
                {
                    "type": "labels_examined",
                    "id": x.pk,
                    "units_examined": x.units_examined,
                    "results": x.results,
                    "passed": x.passed,
                    "comment": x.comment,
                    "by": x.by.username,
                    "at": _at(x.at),
                }
            )
    for rows in out.values():
        rows.sort(key=lambda r: (r["at"], r["type"], r["id"]))
    return out


def step_records(step: Any) -> list[dict[str, Any]]:
    """One step's records (the signing service's read)."""
    return records_of(step.batch.number, [(step.pk, step.key, step.kind)]).get(step.pk, [])
