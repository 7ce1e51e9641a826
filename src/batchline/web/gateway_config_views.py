"""The engineers' forms on the gateway page: register an endpoint, request tags and endpoint changes.

Thin over ``gateway.services``, as the API is. Registering or renaming an endpoint is one
administrator's audited change (a reason); a tag's creation, change or retirement and an endpoint's
new address, options or retirement are requests the engineer signs ("requested") and a QA approver
approves on Master data → Requests. An open request is withdrawn here with a reason. A refusal shows
the page again (422) with the form as it was typed, open, and why; nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.views.decorators.http import require_POST

from batchline.approvals.services import ChangeRefused
from batchline.audit.services import Actor, ReasonRequired
from batchline.configuration.selectors import notation
from batchline.gateway import selectors, services
from batchline.gateway.models import CONFIGURE_PERMISSION, Tag
from batchline.gateway.readings import Protocol
from batchline.rules import numbers
from batchline.signatures.models import Meaning
from batchline.signatures.services import SignatureRefused, signing_session_open

from .access import record_id, require, signer_posted

REFUSED = (services.GatewayRefused, ChangeRefused, SignatureRefused, ReasonRequired)
WAITS = "a QA approver approves it on Master data → Requests; it is read from the gateway's next start."


class Typed(ValueError):
    """What the form holds cannot be read as the field asks (a number, an option line)."""


def _actor(request: HttpRequest) -> Actor:
    return Actor.of(request.user, via="web")


# --- fields as the forms write them ----------------------------------------------------------------


def options_written(options: dict[str, Any]) -> str:
    return "\n".join(f"{name}={value}" for name, value in sorted(options.items()))


def options_read(text: str) -> dict[str, str]:
    """One ``name=value`` per line, as the forms write a tag's or an endpoint's protocol options."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise Typed(f"Options: write one name=value per line; {line.strip()[:40]!r} is not.")
        out[name.strip()] = value.strip()
    return out


def _sampling(text: str) -> int | str:
    # Digits become the number; anything else goes to the service as typed, which refuses it in words.
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else text


def _deadband(text: str) -> Decimal:
    if not text.strip():
        return Decimal(0)
    try:
        return numbers.read(text, notation())
    except numbers.NotANumber as exc:
        raise Typed(numbers.sentence("Deadband", exc)) from None


def tag_values_posted(post: QueryDict) -> dict[str, Any]:
    """A tag form's fields as ``gateway.services`` takes them (the unit by its code)."""
    return {
        "equipment": post.get("equipment", ""),
        "name": post.get("name", ""),
        "unit_of_measure": post.get("unit_of_measure", ""),
        "sampling_ms": _sampling(post.get("sampling_ms", "")),
        "deadband": _deadband(post.get("deadband", "")),
        "options": options_read(post.get("options", "")),
    }


def _tag_form(tag: Tag, site_notation: numbers.Notation) -> dict[str, str]:
    return {
        "equipment": tag.equipment.code,
        "name": tag.name,
        "unit_of_measure": tag.unit_of_measure,
        "sampling_ms": str(tag.sampling_ms),
        "deadband": numbers.shown(tag.deadband, site_notation),
        "options": options_written(tag.options),
    }


# --- the page's configuration part ---------------------------------------------------------------------


def configuration_context(request: HttpRequest, *, posted_form: str = "") -> dict[str, Any]:
    """What the gateway page shows of the configuration, and the forms for a user who configures it.

    ``posted_form`` names the form a refused post came from: it shows open, with what was typed.
    """
    user = request.user
    can_configure = user.has_perm(CONFIGURE_PERMISSION)
    kept = request.POST if posted_form else QueryDict()

    def form(form_id: str, values: dict[str, str]) -> dict[str, Any]:
        if form_id == posted_form:
            values = {name: kept.get(name, "") for name in values}
        reason = kept.get("reason", "") if form_id == posted_form else ""
        return {"id": form_id, "open": form_id == posted_form, "values": values, "reason": reason}

    site_notation = notation()
    endpoints = list(selectors.endpoints())
    tags = list(selectors.tags())
    waiting = list(selectors.requests_open())
    busy = {(r.subject_type, r.subject_id) for r in waiting}
    endpoint_rows = [
        {
            "endpoint": e,
            "options": options_written(e.options),
            "waiting": (services.ENDPOINT_SUBJECT, e.code) in busy,
            "change": form(
                f"endpoint-{e.code}-change", {"address": e.address, "options": options_written(e.options)}
            ),
            "retire": form(f"endpoint-{e.code}-retire", {}),
            "rename": form(f"endpoint-{e.code}-rename", {"name": e.name}),
        }
        for e in endpoints
    ]
    tag_rows = [
        {
            "tag": t,
            "options": options_written(t.options),
            "deadband": numbers.shown(t.deadband, site_notation),
            "waiting": (services.TAG_SUBJECT, services.tag_subject(t.endpoint.code, t.tag)) in busy,
            "change": form(f"tag-{t.pk}-change", _tag_form(t, site_notation)),
            "retire": form(f"tag-{t.pk}-retire", {}),
        }
        for t in tags
    ]
    blank_tag = {
        "endpoint": "",
        "tag": "",
        "equipment": "",
        "name": "",
        "unit_of_measure": "",
        "sampling_ms": "1000",
        "deadband": "0",
        "options": "",
    }
    return {
        "can_configure": can_configure,
        "endpoint_rows": endpoint_rows,
        "tag_rows": tag_rows,
        "waiting": [
            {"request": r, "mine": r.requested_by_id == user.pk, "withdraw": form(f"withdraw-{r.pk}", {})}
            for r in waiting
        ],
        "protocols": [p.value for p in Protocol],
        "endpoints_in_force": [e for e in endpoints if e.retired_at is None],
        "units": list(selectors.units_in_service()),
        "new_endpoint": form(
            "endpoint-new", {"code": "", "name": "", "protocol": "", "address": "", "options": ""}
        ),
        "new_tag": form("tag-new", blank_tag),
        "posted_form": posted_form,
        "kept": kept,
        "open_dialog": "",
    }


def _refused(request: HttpRequest, posted_form: str, exc: Exception, *, signed: bool) -> HttpResponse:
    from .gateway_views import page

    return page(
        request,
        status=422,
        posted_form=posted_form,
        refusal=[str(exc)],
        # A refused signature reopens the dialog, with why, for the password to be typed again.
        open_dialog=f"sign-{posted_form}" if signed and isinstance(exc, SignatureRefused) else "",
        dialog_messages=[str(exc)],
    )


def _done(request: HttpRequest, words: str) -> HttpResponse:
    messages.success(request, words)
    return HttpResponseRedirect(reverse("gateway"))


def _signed(request: HttpRequest, posted_form: str, call: Callable[[Any], Any]) -> HttpResponse | Any:
    """Authenticate the signer of the form's dialog and make the request; the page again if refused."""
    try:
        signer = signer_posted(request, Meaning.REQUESTED)
        change = call(signer)
    except (*REFUSED, Typed) as exc:
        return _refused(request, posted_form, exc, signed=True)
    signing_session_open(signer)
    return _done(request, f"{change.number} requested: {WAITS}")


# --- the posts ----------------------------------------------------------------------------------------


@login_required
@require_POST
def endpoint_new(request: HttpRequest) -> HttpResponse:
    """Register an endpoint: one administrator's audited change (no tag is read there before one is approved)."""
    require(request.user, CONFIGURE_PERMISSION)
    post = request.POST
    try:
        endpoint = services.endpoint_create(
            actor=_actor(request),
            code=post.get("code", ""),
            name=post.get("name", ""),
            protocol=post.get("protocol", ""),
            address=post.get("address", ""),
            options=options_read(post.get("options", "")),
            reason=post.get("reason", ""),
        )
    except (*REFUSED, Typed) as exc:
        return _refused(request, "endpoint-new", exc, signed=False)
    return _done(request, f"Endpoint {endpoint.code} registered: request its tags below.")


@login_required
@require_POST
def endpoint_rename(request: HttpRequest, code: str) -> HttpResponse:
    require(request.user, CONFIGURE_PERMISSION)
    try:
        endpoint = services.endpoint_rename(
            actor=_actor(request),
            code=code,
            name=request.POST.get("name", ""),
            reason=request.POST.get("reason", ""),
        )
    except REFUSED as exc:
        return _refused(request, f"endpoint-{code}-rename", exc, signed=False)
    return _done(request, f"Endpoint {endpoint.code} renamed.")


@login_required
@require_POST
def endpoint_change(request: HttpRequest, code: str) -> HttpResponse:
    """Request a new address or options: every tag of the endpoint is then read there."""
    require(request.user, CONFIGURE_PERMISSION)
    post = request.POST
    return _signed(
        request,
        f"endpoint-{code}-change",
        lambda signer: services.endpoint_change_request(
            actor=_actor(request),
            signer=signer,
            code=code,
            values={"address": post.get("address", ""), "options": options_read(post.get("options", ""))},
            reason=post.get("reason", ""),
            comment=post.get("signer_comment", ""),
        ),
    )


@login_required
@require_POST
def endpoint_retire(request: HttpRequest, code: str) -> HttpResponse:
    require(request.user, CONFIGURE_PERMISSION)
    return _signed(
        request,
        f"endpoint-{code}-retire",
        lambda signer: services.endpoint_retire_request(
            actor=_actor(request),
            signer=signer,
            code=code,
            reason=request.POST.get("reason", ""),
            comment=request.POST.get("signer_comment", ""),
        ),
    )


@login_required
@require_POST
def tag_new(request: HttpRequest) -> HttpResponse:
    """Request a tag: which unit's which parameter a tag at an endpoint carries, in which unit of measure."""
    require(request.user, CONFIGURE_PERMISSION)
    post = request.POST

    def call(signer: Any) -> Any:
        return services.tag_create_request(
            actor=_actor(request),
            signer=signer,
            endpoint=post.get("endpoint", ""),
            tag=post.get("tag", ""),
            reason=post.get("reason", ""),
            comment=post.get("signer_comment", ""),
            **tag_values_posted(post),
        )

    return _signed(request, "tag-new", call)


@login_required
@require_POST
def tag_change(request: HttpRequest, pk: int) -> HttpResponse:
    """Request a change of a tag: every field the form shows, the ones that differ from the tag now."""
    require(request.user, CONFIGURE_PERMISSION)
    post = request.POST
    return _signed(
        request,
        f"tag-{pk}-change",
        lambda signer: services.tag_change_request(
            actor=_actor(request),
            signer=signer,
            tag_id=record_id(pk),
            values=tag_values_posted(post),
            reason=post.get("reason", ""),
            comment=post.get("signer_comment", ""),
        ),
    )


@login_required
@require_POST
def tag_retire(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, CONFIGURE_PERMISSION)
    return _signed(
        request,
        f"tag-{pk}-retire",
        lambda signer: services.tag_retire_request(
            actor=_actor(request),
            signer=signer,
            tag_id=record_id(pk),
            reason=request.POST.get("reason", ""),
            comment=request.POST.get("signer_comment", ""),
        ),
    )


@login_required
@require_POST
def request_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    """Take back an open tag or endpoint request, with a reason; nothing of it is applied."""
    require(request.user, CONFIGURE_PERMISSION)
    try:
        change = services.request_withdraw(
            actor=_actor(request), request_id=record_id(pk), reason=request.POST.get("reason", "")
        )
    except REFUSED as exc:
        return _refused(request, f"withdraw-{pk}", exc, signed=False)
    return _done(request, f"{change.number} withdrawn: nothing changed.")
