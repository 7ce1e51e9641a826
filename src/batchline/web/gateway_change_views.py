"""Gateway configuration requests (tags, endpoints) on the master-data requests page, for a QA approver.

Requested by an engineer on the gateway page (gateway_config_views), over the API or by the demo
(``gateway.services``); decided here like any other change request:
approved with the approver's signature (applied at once) or rejected with a reason.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from batchline.approvals import services as approvals
from batchline.approvals.models import ChangeRequest
from batchline.gateway.models import REQUEST_KINDS
from batchline.gateway.selectors import requests_open

from .access import require

APPROVE = "approvals.approve_change"


def open_gateway_changes() -> list[dict[str, Any]]:
    """Gateway requests waiting for a QA approver, oldest first, as the changes page shows them."""
    return [
        {
            "id": change.pk,
            "number": change.number,
            "kind_label": approvals.kind_of(change.kind).label,
            "summary": change.summary,
            "reason": change.reason,
            "requested_by": change.requested_by.printed_name,
            "requested_at": change.requested_at,
            "approve_dialog": f"approve-gateway-{change.pk}",
            "reject_dialog": f"reject-gateway-{change.pk}",
        }
        for change in requests_open()
    ]


@login_required
@require_POST
def gateway_change_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """A QA approver approves a gateway request (in force for the gateway's next start) or rejects it."""
    from .masterdata_views import decide_on_changes_page

    require(request.user, APPROVE)
    change = get_object_or_404(ChangeRequest, pk=pk, kind__in=REQUEST_KINDS)
    return decide_on_changes_page(
        request,
        change,
        decision,
        dialog="gateway",
        approved="approved: in force at the gateway's next start.",
    )
