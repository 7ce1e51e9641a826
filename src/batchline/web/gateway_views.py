"""The equipment gateway for engineers: each gateway's word about itself, its connections, the last value
of every configured tag, the stale ones, and the store-and-forward backlog and losses (issue 15).

Thin over ``gateway.selectors``; needs ``gateway.view_endpoint`` (engineers, auditors). The configuration
(endpoints, tags, open requests) shows below, with the engineers' forms (gateway_config_views).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from batchline.gateway import selectors
from batchline.signatures.services import username_required

from .access import require
from .gateway_config_views import configuration_context

# A tag with nothing newer than this is listed as stale (a deadband may hold a steady value back:
# the source's own STALE is the strong sign, this the weak one).
QUIET = dt.timedelta(minutes=5)


@login_required
def gateway(request: HttpRequest) -> HttpResponse:
    return page(request)


def page(request: HttpRequest, *, status: int = 200, posted_form: str = "", **extra: Any) -> HttpResponse:
    require(request.user, "gateway.view_endpoint")
    now = timezone.now()
    # A gateway writes its status every few seconds: one silent for much longer is not running.
    late = dt.timedelta(seconds=max(30.0, 6 * settings.GATEWAY_STATUS_SECONDS))
    tags = [(t, selectors.is_stale(t, now=now, older_than=QUIET)) for t in selectors.last_values()]
    return render(
        request,
        "gateway/status.html",
        {
            "gateways": [(g, now - g.updated_at > late) for g in selectors.gateway_statuses()],
            "connections": selectors.connection_statuses(),
            "tags": tags,
            "stale_count": sum(stale for _, stale in tags),
            "quiet_minutes": int(QUIET.total_seconds() // 60),
            "username_required": username_required(request),
            **configuration_context(request, posted_form=posted_form),
            **extra,
        },
        status=status,
    )
