"""Inputs read from a machine over the API (issue 15): take the reading from the gateway, or type the
value by hand with the reason the device was not used and a second person's signature.

The same services as the execution screen (``execution.instruments``), so the same gates, refusals
(409 with every reason, recorded for QA) and audit entries. The witness gives user ID and password
like the witness of a hand-typed weight (``…/dispense``); a wrong password is 403 before anything is
written. A value once recorded is changed only by ``…/correct``, which for such an input takes the
witness too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from batchline.audit.services import Actor
from batchline.execution import instruments, selectors
from batchline.execution.models import StepValue
from batchline.web.access import current_user, require

from .production import Refusal, _batch, witness_of
from .schemas import Problem, SignatureIn

router = Router(tags=["batches"])


def _actor(request: HttpRequest) -> Actor:
    return Actor.of(request.user, via="api")


class ReadingOut(Schema):
    """Where a value read from a machine came from, as the step's signatures bind it."""

    equipment: str = Field(description="the unit's code")
    protocol: str = Field(description="opcua, sparkplug, mqtt-json or modbus")
    endpoint: str
    tag: str
    raw: str = Field(description="the value as the device sent it")
    raw_unit: str = Field(description="the unit it came in; the value is converted to the recipe's")
    quality: str = Field(description="good or uncertain (a Bad or stale reading is never taken)")
    source_time: str | None = Field(description="the device's time (UTC), when it sent one")
    gateway_time: str = Field(description="when the gateway received it (UTC)")
    key: str = Field(description="the stored reading's key (hex)")


class PersonOut(Schema):
    username: str
    name: str


class ValueOut(Schema):
    id: int
    name: str
    label: str
    text: str = Field(description="as recorded, in the recipe's unit")
    number: str | None = Field(description="the number judged and recorded, exact")
    unit: str
    source: str = Field(description="device (read from the machine) or manual (typed in its place)")
    in_specification: bool | None
    entered_by: PersonOut | None
    entered_at: str
    station: str
    corrects: int | None
    reason: str = Field(description="for a manual value: why the device was not used")
    reading: ReadingOut | None = Field(description="where a device value came from; null for a manual one")


def _value_out(value: StepValue) -> dict[str, Any]:
    v = StepValue.objects.select_related("entered_by").get(pk=value.pk)
    return selectors.value_record(v, instruments.readings_of([v.pk]).get(v.pk))


@router.post(
    "/{number}/steps/{key}/readings/{name}",
    response={201: ValueOut, 403: Problem, 409: Refusal},
)
def step_take_reading(request: HttpRequest, number: str, key: str, name: str) -> Any:
    """Take the input ``name`` from its machine on a running step ("take reading"): the gateway's latest
    reading of its tag on the unit an earlier step identified, converted to the recipe's unit and
    judged. A reading that is Bad, stale, too old, missing or in a unit that does not convert is
    refused (409 with the reason: ``READING_NOT_USABLE``, ``READING_NOT_CURRENT``, ``NO_READING``,
    ``READING_UNIT``…) and the refusal recorded for QA; an Uncertain one is taken and flagged."""
    require(request.user, "execution.execute_batch")
    value = instruments.step_take_reading(
        actor=_actor(request), user=current_user(request), batch=_batch(number), step_key=key, name=name
    )
    return Status(201, _value_out(value))


class ManualReadingIn(Schema):
    text: Annotated[str, Field(max_length=2000)] | Decimal = Field(
        description="the value as typed (a number read in the site's notation), or a JSON number"
    )
    reason: str = Field(default="", max_length=2000, description="why the device was not used (required)")
    witness: SignatureIn | None = Field(
        default=None, description="the second person confirming the value typed (required)"
    )
    confirm_out_of_specification: bool = Field(
        default=False,
        description="the person confirms recording a value outside its specification (it raises an "
        "exception); without it such a value is answered 409 CONFIRM_OUT_OF_SPECIFICATION and nothing is written",
    )


@router.post(
    "/{number}/steps/{key}/readings/{name}/manual",
    response={201: ValueOut, 403: Problem, 409: Refusal},
)
def step_enter_reading(
    request: HttpRequest, number: str, key: str, name: str, payload: ManualReadingIn
) -> Any:
    """Type the input ``name`` by hand in place of its machine's reading: recorded as ``manual`` with the
    reason and the witness's signature (meaning: verified), and an exception for review
    (``MANUAL_READING_ENTRY``). Without a reason or a witness (not oneself) it is refused, 409
    ``REASON_REQUIRED`` / ``WITNESS_REQUIRED``, and the refusal recorded for QA."""
    require(request.user, "execution.execute_batch")
    batch = _batch(number)
    witness = witness_of(request, payload.witness)
    value = instruments.step_enter_reading(
        actor=_actor(request),
        user=current_user(request),
        batch=batch,
        step_key=key,
        name=name,
        text=payload.text,
        reason=payload.reason,
        witness=witness,
        confirm_out_of_specification=payload.confirm_out_of_specification,
    )
    return Status(201, _value_out(value))
