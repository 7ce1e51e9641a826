"""A sample request per sample, written to the outbox in the sample's own transaction (IPC-01, A11-07).

``execution.sampling`` publishes ``sample.taken``; :func:`on_sample_taken` answers it inside that
transaction with the request's record and its outbox message (destination ``lims``), so a sample
never exists without its request, and a request is never sent for a sample that rolled back. The
message's key is fixed by the sample's code: a receiver that sees it twice (a retry) drops one.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from batchline.audit.services import Actor, record_create
from batchline.execution import rows
from batchline.execution.models import Batch, Sample
from batchline.execution.scaling import plain
from batchline.materials.models import Lot
from batchline.outbox import services as outbox
from batchline.rules import canonical

from . import judging
from .models import SampleRequest

DESTINATION = "lims"
KIND = "sample.requested"
IN_PROCESS, MATERIAL = "in_process", "material"


def stream_of(batch_number: str) -> str:
    """Every message about one batch's samples reaches the LIMS in the order it was written."""
    return f"batch:{batch_number}"


def key_of(sample_code: str) -> str:
    return f"{settings.OUTBOX_SOURCE}:{DESTINATION}:sample:{sample_code}"


def sample_lot(sample: Sample, batch_number: str) -> Lot | None:
    """The lot a sample was taken from, when that is a lot of material and not this batch's own
    output (a lot sample: an out-of-specification result blocks it); None for in-process samples."""
    if not sample.lot or not sample.material_code:
        return None
    lot = Lot.objects.filter(material__code=sample.material_code, number=sample.lot).first()
    if lot is None or lot.produced_by_batch == batch_number:
        return None
    return lot


def _number(value: Decimal | None) -> str | None:
    return None if value is None else plain(value)


def _limits(definition: Any, batch: Batch) -> dict[str, Any] | None:
    if definition is None:
        return None
    judged = judging.limits(definition, batch.ratio)
    return {
        "name": definition["name"],
        "label": definition["label"],
        "unit": definition.get("unit", ""),
        "specification": {
            "low": _number(judged.specification.low),
            "high": _number(judged.specification.high),
            "text": judging.specification_text(definition, batch.ratio),
        },
        "action": {"low": _number(judged.action.low), "high": _number(judged.action.high)},
        "result_awaited_by_step": bool(definition.get("waits")),
    }


def request_content(sample: Sample, batch: Batch) -> dict[str, Any]:
    """What the laboratory is asked: which sample, of what, how much, from where, which test and
    method, for which batch and step, and the limits the result will be judged by."""
    step = sample.step
    spec = step.spec["sampling"]
    lot = sample_lot(sample, batch.number)
    return {
        "format": "batchline.sample-request/1",
        "sample": sample.code,
        "kind": MATERIAL if lot is not None else IN_PROCESS,
        "batch": batch.number,
        "product": rows.product_name(batch),
        "step": {"key": step.key, "title": step.title, "operation": step.operation},
        "material": {"code": sample.material_code, "name": sample.material_name},
        "lot": sample.lot,
        "source": {"kind": sample.source_kind, "id": sample.source, "position": sample.position},
        "quantity": plain(sample.quantity),
        "planned_quantity": plain(sample.planned_quantity),
        "unit": sample.unit,
        "test": sample.test,
        "method": sample.method,
        "result": _limits(judging.definition_of(step.spec), batch),
        "samples_in_step": int(spec.get("samples", 1)),
        "taken_by": sample.taken_by.printed_name if sample.taken_by_id else "",
        "taken_at": canonical.normalise(sample.taken_at),
        "results_to": "/api/v1/lims/results",
    }


def sample_request(*, actor: Actor, sample: Sample, batch: Batch) -> SampleRequest:
    """The request's record and, where the installation has a LIMS, its outbox message; in the
    caller's transaction (the sample's), under the batch's lock it holds."""
    content = request_content(sample, batch)
    message = outbox.enqueue(
        DESTINATION,
        stream=stream_of(batch.number),
        kind=KIND,
        body=content,
        key=key_of(sample.code),
    )
    return record_create(
        SampleRequest(
            sample=sample,
            content=content,
            content_sha256=hashlib.sha256(canonical.dumps(content).encode()).hexdigest(),
            message_key=message.key if message is not None else "",
            requested_at=timezone.now(),
        ),
        actor=actor,
        reason=f"sample {sample.code} for {sample.test}",
    )


def on_sample_taken(*, sample: Sample, batch: Batch, actor: Actor, **_: Any) -> None:
    sample_request(actor=actor, sample=sample, batch=batch)
