"""The floor list, the operator's execution screen and the batch record view.

Every action posts with htmx and gets the execution panel back (no page
reload between steps); a refusal comes back as the same panel with the reasons
in words, status 422, and nothing written but the refusal itself.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor, ReasonRequired
from batchline.execution import selectors, services
from batchline.execution.models import Batch
from batchline.recipes.models import MasterRecipe, RecipeStatus
from batchline.signatures.models import Meaning
from batchline.signatures.services import (
    SignatureRefused,
    VerifiedSigner,
    signer_authenticate,
    signing_session_open,
    username_required,
)

from .access import current_user, require


def _batch(number: str) -> Batch:
    try:
        return selectors.batch_by_number(number)
    except Batch.DoesNotExist as exc:
        raise Http404(f"No batch {number}") from exc


@login_required
def floor(request: HttpRequest) -> HttpResponse:
    require(request.user, "execution.view_batch")
    context = {
        "batches": selectors.floor_batches(),
        "recipes": MasterRecipe.objects.filter(status=RecipeStatus.EFFECTIVE).order_by("code"),
        "can_control": request.user.has_perm("execution.control_batch"),
        "username_required": username_required(request),
    }
    return render(request, "execution/floor.html", context)


@login_required
@require_POST
def batch_new(request: HttpRequest) -> HttpResponse:
    require(request.user, "execution.control_batch")
    recipe = MasterRecipe.objects.filter(pk=request.POST.get("recipe") or 0).first()
    try:
        quantity = Decimal(request.POST.get("planned_quantity", "").replace(",", "."))
    except InvalidOperation:
        quantity = Decimal(0)
    if recipe is None:
        messages.error(request, "Choose an effective recipe.")
        return HttpResponseRedirect(reverse("floor"))
    try:
        batch = services.batch_create(
            actor=Actor.of(request.user, via="web"),
            recipe=recipe,
            number=request.POST.get("number", "")[:40],
            planned_quantity=quantity,
        )
    except services.ExecutionRefused as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("floor"))
    messages.success(request, f"Batch {batch.number} created. Release it to the floor when ready.")
    return HttpResponseRedirect(reverse("batch", args=[batch.number]))


def _panel(
    request: HttpRequest,
    batch: Batch,
    *,
    selected: str | None = None,
    refusal: list[str] | None = None,
    sign_error: str = "",
    status: int = 200,
) -> HttpResponse:
    screen, current = selectors.batch_panel(batch, selected)
    user = current_user(request)
    context: dict[str, Any] = {
        "screen": screen,
        "batch": batch,
        "current": current,
        "refusal": refusal or [],
        "sign_error": sign_error,
        "username_required": username_required(request),
        "can_control": user.has_perm("execution.control_batch"),
        "meaning": Meaning.PERFORMED.value,
        "meaning_label": Meaning.PERFORMED.label,
    }
    template = "execution/_panel.html" if getattr(request, "htmx", False) else "execution/batch.html"
    return render(request, template, context, status=status)


@login_required
def batch(request: HttpRequest, number: str) -> HttpResponse:
    require(request.user, "execution.view_batch")
    return _panel(request, _batch(number), selected=request.GET.get("step"))


def _signer(request: HttpRequest, meaning: str, *, allow_witness: bool = False) -> VerifiedSigner:
    username = (request.POST.get("signer_username") or "").strip() or None
    witness = bool(allow_witness and username and username != request.user.get_username())
    return signer_authenticate(
        request=request,
        username=username,
        password=request.POST.get("signer_password", ""),
        meaning=meaning,
        witness=witness,
    )


@login_required
@require_POST
def step_action(request: HttpRequest, number: str, key: str, action: str) -> HttpResponse:
    user = current_user(request)
    # Who may act is decided before anything is looked up.
    if action == "verify":
        if not (user.has_perm("execution.execute_batch") or user.has_perm("signatures.sign_verified")):
            raise PermissionDenied("Verification happens at a station of the floor.")
    else:
        require(user, "execution.execute_batch")
    batch = _batch(number)
    actor = Actor.of(user, via="web")
    signer: VerifiedSigner | None = None
    try:
        if action == "start":
            services.step_start(actor=actor, user=user, batch=batch, step_key=key)
        elif action == "complete":
            step = batch.steps.filter(key=key).first()
            if step is None:
                raise Http404(f"No step {key}")
            definition = step.spec
            if definition.get("signs"):
                signer = _signer(request, Meaning.PERFORMED)
            entries = {
                i["name"]: request.POST.get(f"value_{i['name']}", "") for i in definition.get("inputs", [])
            }
            checklist = [
                request.POST.get(f"check_{n}") == "on" for n in range(len(definition.get("checklist", [])))
            ]
            services.step_complete(
                actor=actor,
                user=user,
                batch=batch,
                step_key=key,
                entries=entries,
                checklist=checklist,
                signer=signer,
            )
        elif action == "verify":
            signer = _signer(request, Meaning.VERIFIED, allow_witness=True)
            verifier = signer.user
            services.step_verify(
                actor=Actor.of(verifier, via="web"), user=verifier, batch=batch, step_key=key, signer=signer
            )
        elif action == "correct":
            signer = _signer(request, Meaning.PERFORMED)
            services.value_correct(
                actor=actor,
                user=user,
                batch=batch,
                step_key=key,
                name=request.POST.get("name", ""),
                text=request.POST.get("text", ""),
                reason=request.POST.get("reason", ""),
                signer=signer,
            )
        else:
            raise Http404("Unknown action")
    except services.ExecutionRefused as refused:
        return _panel(
            request,
            _batch(number),
            selected=key,
            refusal=[r.message for r in refused.verdict.reasons],
            status=422,
        )
    except (SignatureRefused, ReasonRequired) as exc:
        return _panel(request, _batch(number), selected=key, sign_error=str(exc), status=422)
    if signer is not None and not signer.witness:
        signing_session_open(signer)
    return _panel(request, _batch(number), selected=None if action != "correct" else key)


@login_required
@require_POST
def batch_action(request: HttpRequest, number: str, command: str) -> HttpResponse:
    require(request.user, "execution.control_batch")
    batch = _batch(number)
    user = current_user(request)
    try:
        signer = _signer(request, Meaning.PERFORMED)
        services.batch_command(
            actor=Actor.of(user, via="web"),
            batch=batch,
            command=command,
            signer=signer,
            reason=request.POST.get("reason", ""),
        )
    except services.ExecutionRefused as refused:
        return _panel(
            request, _batch(number), refusal=[r.message for r in refused.verdict.reasons], status=422
        )
    except (SignatureRefused, ReasonRequired) as exc:
        return _panel(request, _batch(number), sign_error=str(exc), status=422)
    signing_session_open(signer)
    return _panel(request, _batch(number))


@login_required
@require_POST
def scan(request: HttpRequest, number: str) -> HttpResponse:
    """A barcode scanner types a code and Enter: a step's code opens that step."""
    require(request.user, "execution.view_batch")
    batch = _batch(number)
    code = request.POST.get("code", "").strip()[:100]
    if not batch.steps.filter(key=code).exists():
        return _panel(
            request,
            batch,
            refusal=[f"The scanned code {code!r} is not a step of batch {batch.number}."],
            status=422,
        )
    return _panel(request, batch, selected=code)


@login_required
def batch_record(request: HttpRequest, number: str) -> HttpResponse:
    if not (
        request.user.has_perm("execution.view_batch") or request.user.has_perm("accounts.view_audit_trail")
    ):
        raise PermissionDenied("Your roles do not allow reading batch records.")
    batch = _batch(number)
    return render(request, "execution/record.html", {"screen": selectors.batch_screen(batch), "batch": batch})
