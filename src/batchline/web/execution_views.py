"""The floor list, the operator's execution screen and the batch record view.

Every action posts with htmx and gets the execution panel back (no page
reload between steps); a refusal comes back as the same panel with the reasons
in words, status 422, and nothing written but the refusal itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor, ReasonRequired
from batchline.configuration import selectors as configuration
from batchline.equipment.models import Equipment
from batchline.execution import charging, dispensing, selectors, services
from batchline.execution.models import Batch, BatchStep
from batchline.labels.container import Dispense
from batchline.labels.pdf import render_pdf
from batchline.materials import services as stock
from batchline.materials.models import Consumption, Container, Material
from batchline.recipes.models import MasterRecipe, RecipeStatus
from batchline.reports import documents
from batchline.rules import numbers
from batchline.rules.verdict import Refused
from batchline.signatures import status as signature_status
from batchline.signatures.models import Meaning
from batchline.signatures.services import (
    SignatureRefused,
    VerifiedSigner,
    signer_authenticate,
    signing_session_open,
    username_required,
)

from . import record_page, screens
from .access import current_user, record_id, require
from .material_views import container_label

# Step kinds whose running step takes what the scan field reads (a container, an equipment tag).
SCANNED = frozenset({"material_charge", "equipment_id"})


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
        "awaiting_review": selectors.batches_awaiting_review()[:50],
        "recipes": MasterRecipe.objects.filter(status=RecipeStatus.EFFECTIVE).order_by("code"),
        "can_control": request.user.has_perm("execution.control_batch"),
        "username_required": username_required(request),
    }
    return render(request, "execution/floor.html", context)


@login_required
@require_POST
def batch_new(request: HttpRequest) -> HttpResponse:
    require(request.user, "execution.control_batch")
    recipe = MasterRecipe.objects.filter(pk=record_id(request.POST.get("recipe"))).first()
    if recipe is None:
        messages.error(request, "Choose an effective recipe.")
        return HttpResponseRedirect(reverse("floor"))
    try:
        batch = services.batch_create(
            actor=Actor.of(request.user, via="web"),
            recipe=recipe,
            number=request.POST.get("number", ""),
            # Read by the service in the site's notation, like every typed number.
            planned_quantity=request.POST.get("planned_quantity", ""),
        )
    except services.ExecutionRefused as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("floor"))
    messages.success(request, f"Batch {batch.number} created. Release it to the floor when ready.")
    return HttpResponseRedirect(reverse("batch", args=[batch.number]))


def _material_context(batch: Batch, current: Any) -> dict[str, Any]:
    """What a material, weighing or equipment step shows; all of it changes only with audited writes.

    (The first-to-expire proposal changes as time passes, so it is not here: the booth
    loads it on its own, uncached, from :func:`fefo_proposal`.)
    """
    charge = booth = None
    notation = configuration.notation()

    def plain(number: Any) -> str:  # in the site's notation
        return numbers.shown(number, notation)

    if current and current.step.kind == "material_charge":
        step = current.step
        target, low, high, unit = charging.required(step.spec, batch.ratio)
        charge = {
            "code": step.spec["material"]["code"],
            "target": plain(target),
            "low": plain(low),
            "high": plain(high),
            "unit": unit,
            "charged": plain(charging.charged(step)),
            "containers": Consumption.objects.filter(batch_number=batch.number, step_key=step.key)
            .select_related("container", "lot")
            .order_by("id"),
        }
    if current and current.step.kind == "weigh_dispense":
        target, low, high, unit = charging.required(current.step.spec, batch.ratio)
        booth = {
            "code": current.step.spec["material"]["code"],
            "target": plain(target),
            "low": plain(low),
            "high": plain(high),
            "unit": unit,
            "potency": current.step.spec["material"].get("potency_adjust", False),
            "scales": Equipment.objects.filter(equipment_class__is_scale=True).order_by("code"),
            "dispensed": Container.objects.filter(
                dispensed_for=batch.number, ledger__step_key=current.step.key
            ).distinct(),
        }
    scans = current is not None and current.step.state == "running"
    return {
        "charge": charge,
        "booth": booth,
        "scan_step": current.step.key if scans and current and current.step.kind in SCANNED else None,
    }


@login_required
def fefo_proposal(request: HttpRequest, number: str, key: str) -> HttpResponse:
    """The container to pick first, now: outside the screen's cache, as a lot's expiry passes unwritten."""
    require(request.user, "execution.view_batch")
    step = BatchStep.objects.filter(batch__number=number, key=key, kind="weigh_dispense").first()
    if step is None:
        raise Http404(f"No weighing step {key} in batch {number}")
    material = Material.objects.filter(code=step.spec["material"]["code"]).first()
    proposal = dispensing.fefo_proposal(material, number) if material else None
    return render(request, "execution/_fefo.html", {"proposal": proposal})


def _panel(
    request: HttpRequest,
    number: str,
    *,
    selected: str | None = None,
    refusal: list[str] | None = None,
    sign_error: str = "",
    status: int = 200,
) -> HttpResponse:
    """The execution panel (the whole page unless htmx asks), from the cache when nothing has changed."""
    version = selectors.batch_version(number)  # first: what is read after it is at least as new
    if version is None:
        raise Http404(f"No batch {number}")
    user = current_user(request)
    can_control = user.has_perm("execution.control_batch")
    needs_username = username_required(request)
    panel_key = (
        None
        if refusal or sign_error
        else screens.panel_key(
            version, selected=selected, can_control=can_control, username_required=needs_username
        )
    )

    def render_panel(csrf_token: str) -> str:
        batch = selectors.batch_by_number(number)
        screen, current = selectors.batch_panel(batch, selected)
        if current is not None:  # each signature of the shown step with its status (11.70)
            signature_status.annotate(
                current.signatures, signature_status.step_statuses(batch.number, current)
            )
        context: dict[str, Any] = {
            **_material_context(batch, current),
            "screen": screen,
            "batch": batch,
            "current": current,
            "refusal": refusal or [],
            "sign_error": sign_error,
            "username_required": needs_username,
            "can_control": can_control,
            "meaning": Meaning.PERFORMED.value,
            "meaning_label": Meaning.PERFORMED.label,
            "csrf_token": csrf_token,
        }
        return render_to_string("execution/_panel.html", context)

    token = get_token(request)
    if getattr(request, "htmx", False):
        return HttpResponse(
            screens.cached_html(panel_key, csrf_token=token, render=render_panel), status=status
        )

    def render_page(csrf_token: str) -> str:
        panel = screens.cached_html(panel_key, csrf_token=csrf_token, render=render_panel)
        context = {"number": number, "panel": mark_safe(panel), "csrf_token": csrf_token}  # noqa: S308 (our render)
        return render_to_string("execution/batch.html", context, request=request)

    page_key = (
        None
        if panel_key is None
        or request.method != "GET"  # the menu marks the page it is on
        or len(messages.get_messages(request))  # a message shows once: never cached
        else screens.page_key(panel_key, user_id=user.pk, permissions=user.get_all_permissions())
    )
    return HttpResponse(screens.cached_html(page_key, csrf_token=token, render=render_page), status=status)


@login_required
def batch(request: HttpRequest, number: str) -> HttpResponse:
    require(request.user, "execution.view_batch")
    return _panel(request, number, selected=request.GET.get("step"))


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
        elif action == "dispense":
            manual = request.POST.get("manual_weight", "").strip()
            witness = _signer(request, Meaning.VERIFIED, allow_witness=True) if manual else None
            services.step_dispense(
                actor=actor,
                user=user,
                batch=batch,
                step_key=key,
                source=request.POST.get("source", ""),
                scale=request.POST.get("scale", ""),
                manual_weight=manual or None,
                manual_unit=request.POST.get("manual_unit", ""),
                reason=request.POST.get("reason", ""),
                witness=witness,
                other_lot_reason=request.POST.get("other_lot_reason", ""),
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
    except Refused as refused:  # a gate, or input the materials service refused (a weight that is no number)
        return _panel(
            request,
            number,
            selected=key,
            refusal=[r.message for r in refused.verdict.reasons],
            status=422,
        )
    except (SignatureRefused, ReasonRequired) as exc:
        return _panel(request, number, selected=key, sign_error=str(exc), status=422)
    if signer is not None and not signer.witness:
        signing_session_open(signer)
    return _panel(request, number, selected=None if action != "correct" else key)


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
        return _panel(request, number, refusal=[r.message for r in refused.verdict.reasons], status=422)
    except (SignatureRefused, ReasonRequired) as exc:
        return _panel(request, number, sign_error=str(exc), status=422)
    signing_session_open(signer)
    return _panel(request, number)


@login_required
@require_POST
def scan(request: HttpRequest, number: str) -> HttpResponse:
    """A barcode scanner types a code and Enter: a step's code opens that step."""
    require(request.user, "execution.view_batch")
    batch = _batch(number)
    code = request.POST.get("code", "").strip()
    step_key = request.POST.get("step", "")
    if step_key and not batch.steps.filter(key=code).exists():
        require(request.user, "execution.execute_batch")
        try:
            services.step_scan(
                actor=Actor.of(request.user, via="web"),
                user=current_user(request),
                batch=batch,
                step_key=step_key,
                scan=code,
            )
        except services.ExecutionRefused as exc:
            return _panel(
                request,
                number,
                selected=step_key,
                refusal=[r.message for r in exc.verdict.reasons],
                status=422,
            )
        return _panel(request, number, selected=step_key)
    if not batch.steps.filter(key=code).exists():
        return _panel(
            request,
            number,
            refusal=[f"The scanned code {code!r} is not a step of batch {batch.number}."],
            status=422,
        )
    return _panel(request, number, selected=code)


def _may_read_records(request: HttpRequest) -> None:
    if not (
        request.user.has_perm("execution.view_batch") or request.user.has_perm("accounts.view_audit_trail")
    ):
        raise PermissionDenied("Your roles do not allow reading batch records.")


@login_required
def batch_record(request: HttpRequest, number: str) -> HttpResponse:
    _may_read_records(request)
    batch = _batch(number)
    screen = selectors.batch_screen(batch)
    content, statuses = signature_status.batch_statuses(batch)
    signature_status.annotate(
        [*screen.batch_signatures, *(sig for s in screen.steps for sig in s.signatures)], statuses
    )
    # Every step's values, materials and equipment from the record's content, as the PDF prints them;
    # "performed by" and every name as it stood when the person acted (21 CFR 11.50).
    recorded = {s["key"]: s for s in content["steps"]}
    for s in screen.steps:
        step = recorded[s.step.key]
        for role in ("started", "completed", "verified"):
            setattr(s.step, f"{role}_name", _printed(step[f"{role}_by"]))
        s.record = record_page.step_rows(step)  # type: ignore[attr-defined]
    context = {
        "screen": screen,
        "batch": batch,
        "created_name": _printed(content["header"]["created_by"]),
        "configuration": content["header"]["configuration"],
        "signature_records": content["signature_records"],
    }
    return render(request, "execution/record.html", context)


def _printed(person: dict[str, Any] | None) -> str:
    """A name as it stood then, and the name now beside it when it has changed since."""
    if not person:
        return ""
    return person["name"] + (f" (now {person['name_now']})" if person.get("name_now") else "")


@login_required
def batch_record_document(request: HttpRequest, number: str, fmt: str) -> HttpResponse:
    """The executed record as a file: PDF, JSON or BatchML (one click on the record page)."""
    _may_read_records(request)
    if fmt not in documents.FORMATS:
        raise Http404(f"No record format {fmt}")
    doc = documents.batch_document(_batch(number), fmt)
    response = HttpResponse(doc.data, content_type=doc.content_type)
    response["Content-Disposition"] = f'attachment; filename="{doc.filename}"'
    return response


@login_required
def scale_reading(request: HttpRequest) -> HttpResponse:
    """The live reading the booth screen polls (MT-SICS SI, stable or not): shown, never recorded."""
    require(request.user, "execution.execute_batch")
    code = request.GET.get("scale", "")[:40]
    reading = dispensing.live_reading(code) if code else {"error": "Choose a scale."}
    return render(request, "execution/_reading.html", {"reading": reading, "code": code})


@login_required
@require_POST
def dispensed_label(request: HttpRequest, number: str, code: str) -> HttpResponse:
    """The label of a container weighed out for this batch (211.101(b)(4)): printed at the booth, logged."""
    require(request.user, "execution.execute_batch")
    batch = _batch(number)
    container = (
        Container.objects.select_related("lot__material")
        .filter(code=code, dispensed_for=batch.number)
        .first()
    )
    if container is None:
        raise Http404(f"No container {code} was dispensed for batch {batch.number}")
    entry = container.ledger.order_by("id").first()
    dispense = Dispense(
        batch=batch.number,
        product_name=batch.recipe.product.name,
        strength="",
        dispensed_by=entry.user.printed_name if entry else "",
        dispensed_at=entry.at if entry else timezone.now(),
    )
    label = dataclasses.replace(
        container_label(container, print_count=container.prints.count() + 1), dispense=dispense
    )
    content = render_pdf(label)
    try:
        stock.label_print_record(
            actor=Actor.of(request.user, via="web"),
            container=container,
            fmt="pdf",
            content=content,
            reason=request.POST.get("reason", ""),
        )
    except ReasonRequired as exc:
        return _panel(request, batch.number, refusal=[str(exc)], status=422)
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{code}.pdf"'
    return response
