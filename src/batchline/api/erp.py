"""ERP inbound over HTTPS: ``POST /api/v1/erp/b2mml`` takes a B2MML V0700 message (S95-02, A11-07).

The body is the XML document; the answer is the ConfirmBOD that says what was
done or why not (``erp.inbound.receive``, the same entry point as every other
transport), with a status code that says it too: 200 applied, 202 parked,
409 a BODID reused for another message, 413 too large (not read), 422 refused,
403 an account that is not the ERP interface's, 503 try again (nothing kept).
A resend of the same message gets the stored answer and the same status, and
``X-Batchline-Repeat: yes``. Machine clients authenticate with a read-write
token of the ERP interface's account (docs/integration.md).

``GET /api/v1/erp/messages`` lists the messages received, ``?state=parked``
the ones waiting, each with its reason and what it waits for.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from ninja.errors import HttpError

from batchline.erp import inbound, selectors
from batchline.erp.models import MessageState
from batchline.web.access import require

from .production import _actor

router = Router(tags=["ERP inbound"])
VIEW = "erp.view_inboundmessage"

STATUS = {
    MessageState.APPLIED: 200,
    MessageState.PARKED: 202,
    MessageState.REFUSED: 422,
    MessageState.EXPIRED: 422,
}
CODE_STATUS = {"TOO_LARGE": 413, "BODID_REUSED": 409}
XML = "application/xml; charset=utf-8"


def _answers(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/xml": {"schema": {"type": "string"}}}}


@router.post(
    "/b2mml",
    response={200: None},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/xml": {"schema": {"type": "string", "description": "a B2MML V0700 message"}}
            },
        },
        "responses": {
            200: _answers("applied: the ConfirmBOD says what was done"),
            202: _answers("parked: waiting for what it refers to"),
            403: {"description": "the account is not the ERP interface's (erp.send_message): nothing kept"},
            409: _answers("refused: the BODID names another message"),
            413: _answers("refused unread: larger than BATCHLINE_ERP_MAX_BYTES"),
            422: _answers("refused (or expired): the ConfirmBOD says why"),
            503: {"description": "written by someone else at the same moment: nothing kept, send again"},
        },
    },
)
def b2mml_receive(request: HttpRequest) -> HttpResponse:
    """Receive one B2MML message from the ERP; answer with its ConfirmBOD."""
    require(request.user, inbound.SEND_PERMISSION)
    # Read one byte past the limit, never the whole of a larger body: receive() refuses it unread.
    body = request.read(settings.BATCHLINE_ERP_MAX_BYTES + 1)
    try:
        reply = inbound.receive(body, transport="https", actor=_actor(request))
    except inbound.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except inbound.Busy as exc:
        return HttpResponse(
            str(exc), status=503, content_type="text/plain; charset=utf-8", headers={"Retry-After": "1"}
        )
    status = CODE_STATUS.get(reply.code, STATUS.get(MessageState(reply.state), 422))
    return HttpResponse(
        reply.xml,
        status=status,
        content_type=XML,
        headers={
            "X-Batchline-State": reply.state,
            "X-Batchline-Code": reply.code,
            "X-Batchline-Repeat": "yes" if reply.repeat else "no",
        },
    )


class MessageOut(Schema):
    id: int
    bodid: str
    transport: str
    message: str
    sender: str
    received_by: str
    received_at: dt.datetime
    state: str
    code: str
    reason: str
    waits_for: list[str]
    waits_for_words: list[str]
    parked_at: dt.datetime | None
    expires_at: dt.datetime | None
    settled_at: dt.datetime | None
    size: int
    body_sha256: str


@router.get("/messages", response=list[MessageOut])
def messages(
    request: HttpRequest,
    state: str = "",
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[dict[str, Any]]:
    """Messages received from the ERP, newest first; ``state=parked``: the waiting ones, first to expire first."""
    require(request.user, VIEW)
    states = [s.value for s in MessageState if s != MessageState.RECEIVED]
    if state and state not in states:
        raise HttpError(422, f"{state[:40]!r} is not a message state ({', '.join(states)}).")
    return [selectors.message_view(m) for m in selectors.messages(state=state)[offset : offset + limit]]
