"""The engineers' page of the ERP inbound: parked messages with what they wait for, and the latest received."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from batchline.erp import selectors
from batchline.erp.models import MessageState

from .access import require

VIEW = "erp.view_inboundmessage"
LATEST = 100


def erp_messages(request: HttpRequest) -> HttpResponse:
    require(request.user, VIEW)
    parked = [selectors.message_view(m) for m in selectors.messages(state=MessageState.PARKED)]
    latest = [selectors.message_view(m) for m in selectors.messages()[:LATEST]]
    return render(
        request,
        "erp/messages.html",
        {"parked": parked, "latest": latest, "counts": selectors.counts(), "shown": LATEST},
    )
