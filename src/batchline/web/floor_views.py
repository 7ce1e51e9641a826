"""The floor: the batches on it, and a new batch from the supervisor's form.

What the form cannot take (a planned quantity of ``1e400``, of more digits than a
batch holds, a recipe that is not effective) is answered 422 in words with the
form as it was typed, and nothing is created.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor
from batchline.execution import selectors, services
from batchline.recipes.models import MasterRecipe, RecipeStatus
from batchline.signatures.services import username_required

from .access import record_id, require


def _floor(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    context = {
        "batches": selectors.floor_batches(),
        "awaiting_review": selectors.batches_awaiting_review()[:50],
        "recipes": MasterRecipe.objects.filter(status=RecipeStatus.EFFECTIVE).order_by("code"),
        "can_control": request.user.has_perm("execution.control_batch"),
        "username_required": username_required(request),
        "new_batch_error": error,
        # What was typed comes back with the refusal (web/templates/execution/floor.html).
        "new_batch": request.POST if error else {},
    }
    return render(request, "execution/floor.html", context, status=status)


@login_required
def floor(request: HttpRequest) -> HttpResponse:
    require(request.user, "execution.view_batch")
    return _floor(request)


@login_required
@require_POST
def batch_new(request: HttpRequest) -> HttpResponse:
    """A new batch from the floor's form; what the form cannot take is answered 422 in words, the form kept."""
    require(request.user, "execution.control_batch")
    recipe = MasterRecipe.objects.filter(pk=record_id(request.POST.get("recipe"))).first()
    if recipe is None:
        return _floor(request, error="Choose an effective recipe. Nothing was created.", status=422)
    try:
        batch = services.batch_create(
            actor=Actor.of(request.user, via="web"),
            recipe=recipe,
            number=request.POST.get("number", ""),
            # Read by the service in the site's notation, like every typed number; refused in words.
            planned_quantity=request.POST.get("planned_quantity", ""),
        )
    except services.ExecutionRefused as exc:
        return _floor(request, error=f"{exc} Nothing was created.", status=422)
    messages.success(request, f"Batch {batch.number} created. Release it to the floor when ready.")
    return HttpResponseRedirect(reverse("batch", args=[batch.number]))


@login_required
def server_clock(request: HttpRequest) -> JsonResponse:
    """The server's time, for the page's timers to count from (they show it; nothing records it)."""
    return JsonResponse(
        {"now_ms": int(timezone.now().timestamp() * 1000)}, headers={"Cache-Control": "no-store"}
    )
