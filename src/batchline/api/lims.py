"""The LIMS over the API: laboratory results posted as JSON or as B2MML OperationsTest, and read back.

The LIMS is a machine client with its own interface user (role ``lims_interface``) and a
read-write token; every record a result writes names that user in the audit trail (S95-04).
Both doors call ``lims.services.results_receive``: a refused message is 422 with every reason
and writes nothing; a result ID received before answers as a duplicate with no second effect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from batchline.audit.services import Actor
from batchline.lims import b2mml, selectors
from batchline.lims.models import LabResult
from batchline.lims.services import Incoming, LimsRefused, Received, results_receive
from batchline.web.access import require

from .production import Refusal
from .schemas import Problem

router = Router(tags=["lims"])
POST = "lims.post_result"
XML = "application/xml"


class ResultIn(Schema):
    result_id: str = Field(min_length=1, max_length=100, description="the LIMS's own ID of this result")
    sample: str = Field(min_length=1, max_length=60, description="the sample's code, as on its label")
    test: str = Field(min_length=1, max_length=200, description="the test, as the sample request named it")
    value: Decimal | str = Field(description="the numeric result; a point is the decimal sign")
    unit: str = Field(default="", max_length=30, description="its unit; converted into the recipe's")
    tested_at: dt.datetime | None = Field(
        default=None, description="when the laboratory tested, with its zone"
    )
    lims_verdict: Literal["", "pass", "fail"] = Field(
        default="", description="the LIMS's own verdict; a fail is out of specification whatever the value"
    )
    comment: str = Field(default="", max_length=2000)


class ResultOut(Schema):
    result_id: str
    sample: str
    batch: str
    step: str
    test: str
    value: str = Field(description="as the LIMS sent it")
    unit: str
    judged_value: Decimal | None = Field(description="in the unit of the recipe's limits")
    judged_unit: str
    specification: str = Field(description="the limits it was judged by; empty: the recipe gives none")
    in_specification: bool | None
    within_action: bool | None
    lims_verdict: str
    tested_at: dt.datetime | None
    filled_step: bool = Field(description="recorded on the step that waits for it")
    exception: int | None = Field(description="the exception it raised on the batch")
    exception_code: str
    lot_blocked: str = Field(description="the lot it blocked")
    received_by: str
    received_at: dt.datetime
    duplicate: bool = Field(default=False, description="received before under this ID: no second effect")


def _out(r: LabResult, duplicate: bool = False) -> dict[str, Any]:
    return {
        "result_id": r.result_id,
        "sample": r.sample.code,
        "batch": r.sample.step.batch.number,
        "step": r.sample.step.key,
        "test": r.test,
        "value": r.text,
        "unit": r.unit,
        "judged_value": r.judged_value,
        "judged_unit": r.judged_unit,
        "specification": r.specification,
        "in_specification": r.in_specification,
        "within_action": r.within_action,
        "lims_verdict": r.lims_verdict,
        "tested_at": r.tested_at,
        "filled_step": r.step_value_id is not None,
        "exception": r.exception_id,
        "exception_code": r.exception.code if r.exception is not None else "",
        "lot_blocked": r.lot_blocked,
        "received_by": r.received_by.username,
        "received_at": r.received_at,
        "duplicate": duplicate,
    }


def _actor(request: HttpRequest) -> Actor:
    return Actor.of(request.user, via="api")


def _refusal(exc: LimsRefused) -> Status[dict[str, Any]]:
    reasons = [{"code": r.code, "message": r.message} for r in exc.verdict.reasons]
    return Status(422, {"detail": str(exc), "code": reasons[0]["code"], "reasons": reasons})


def _received(r: Received) -> LabResult:
    return LabResult.objects.select_related("sample__step__batch", "received_by", "exception").get(
        pk=r.result.pk
    )


@router.post("/results", response={200: ResultOut, 201: ResultOut, 403: Problem, 422: Refusal})
def result_post(request: HttpRequest, payload: ResultIn) -> Any:
    """One laboratory result of one sample (IPC-01): judged against the recipe's limits and recorded;
    out of specification, a blocking exception on the batch (and the lot blocked, for a lot sample).
    201 when recorded; 200 with ``duplicate`` when this result ID was received before."""
    require(request.user, POST)
    incoming = Incoming(**payload.dict())
    try:
        [received] = results_receive(
            actor=_actor(request),
            results=[incoming],
            via="json",
            message_sha256=hashlib.sha256(request.body).hexdigest(),
        )
    except LimsRefused as exc:
        return _refusal(exc)
    return Status(200 if received.duplicate else 201, _out(_received(received), received.duplicate))


@router.get("/results", response={200: list[ResultOut], 403: Problem})
def result_list(
    request: HttpRequest,
    batch: str = Query("", max_length=40),
    sample: str = Query("", max_length=60),
    lot: str = Query("", max_length=40),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> Any:
    """Laboratory results received, oldest first, by batch, sample or sampled lot: what the LIMS
    sent, how Batchline judged it and what it did (a reconciliation against the LIMS, A11-07)."""
    require(request.user, "execution.view_batch")
    found = selectors.results(batch=batch, sample=sample, lot=lot)[offset : offset + limit]
    return [_out(r) for r in found]


_XML_BODY = {
    "requestBody": {
        "required": True,
        "content": {XML: {"schema": {"type": "string", "description": "B2MML V0700 OperationsTest"}}},
    },
    "responses": {
        "200": {"description": "AcknowledgeOperationsTestInformation: Accepted", "content": {XML: {}}},
        "422": {
            "description": "AcknowledgeOperationsTestInformation: Rejected, nothing recorded",
            "content": {XML: {}},
        },
    },
}


@router.post("/operations-test", response={403: Problem}, openapi_extra=_XML_BODY)
def operations_test_post(request: HttpRequest) -> Any:
    """Laboratory results as a B2MML V0700 ``ProcessOperationsTestInformation`` (or Sync), one per
    ``TestResult``, all or none; answered with ``AcknowledgeOperationsTestInformation`` naming each
    result and Batchline's verdict, or every reason it was rejected (422, nothing recorded)."""
    require(request.user, POST)
    body = request.body
    original = None
    try:
        document = b2mml.read(body)
        original = document.original
        received = results_receive(
            actor=_actor(request),
            results=document.results,
            via="b2mml",
            message_sha256=hashlib.sha256(body).hexdigest(),
        )
    except b2mml.DocumentRefused as exc:
        return _xml(b2mml.acknowledge(original=exc.original, refused=exc.reasons), 422)
    except LimsRefused as exc:
        return _xml(b2mml.acknowledge(original=original, refused=list(exc.verdict.reasons)), 422)
    answered = [Received(_received(r), r.duplicate) for r in received]
    return _xml(b2mml.acknowledge(original=original, received=answered), 200)


def _xml(content: bytes, status: int) -> HttpResponse:
    return HttpResponse(content, status=status, content_type=f"{XML}; charset=utf-8")
