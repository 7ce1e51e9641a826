"""The outbox's delivery log for engineers: every message that leaves, its attempts, and a retry.

Thin over ``outbox.selectors`` and ``outbox.services.message_retry``. Reading needs
``outbox.view_message`` (engineers and auditors); a retry needs ``outbox.retry_message``
(engineers / administrators) and a reason, and is audited.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor, ReasonRequired
from batchline.outbox import selectors
from batchline.outbox.models import Message
from batchline.outbox.services import message_retry
from batchline.rules.verdict import Refused

from .access import require

PER_PAGE = 50
BODY_SHOWN = 20_000


def _filter(request: HttpRequest) -> selectors.LogFilter:
    g = request.GET
    state = g.get("state", "").strip()
    return selectors.LogFilter(
        destination=g.get("destination", "").strip()[:64],
        state=state if state in Message.State.values else "",
        stream=g.get("stream", "").strip()[:200],
        kind=g.get("kind", "").strip()[:100],
    )


@login_required
def outbox(request: HttpRequest) -> HttpResponse:
    require(request.user, "outbox.view_message")
    f = _filter(request)
    page = Paginator(selectors.messages(f), PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context: dict[str, Any] = {
        "summary": selectors.summary(),
        "page": page,
        "filter": f,
        "states": Message.State.choices,
        "kinds": selectors.kinds(),
        "query": query.urlencode(),
    }
    return render(request, "outbox/log.html", context)


def _message_page(request: HttpRequest, pk: int, *, status: int = 200, **extra: Any) -> HttpResponse:
    require(request.user, "outbox.view_message")
    found = selectors.message_with_attempts(pk)
    if found is None:
        raise Http404("There is no such outbox message.")
    message, attempts, blocker = found
    context = {
        "message": message,
        "attempts": attempts,
        "blocker": blocker,
        "body": message.body[:BODY_SHOWN],
        "body_cut": len(message.body) > BODY_SHOWN,
        "may_retry": message.state == Message.State.FAILED and request.user.has_perm("outbox.retry_message"),
        **extra,
    }
    return render(request, "outbox/message.html", context, status=status)


@login_required
def outbox_message(request: HttpRequest, pk: int) -> HttpResponse:
    return _message_page(request, pk)


@login_required
@require_POST
def outbox_retry(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "outbox.retry_message")
    reason = request.POST.get("reason", "")
    try:
        message = message_retry(actor=Actor.of(request.user, via="web"), message_id=pk, reason=reason)
    except Refused as exc:
        return _message_page(request, pk, status=409, refusal=[r.message for r in exc.verdict.reasons])
    except ReasonRequired as exc:
        return _message_page(request, pk, status=422, refusal=[str(exc)])
    messages.success(
        request, f"Message {message.pk} is pending again: it is sent at once, in its stream's order."
    )
    return HttpResponseRedirect(reverse("outbox_message", args=[message.pk]))
