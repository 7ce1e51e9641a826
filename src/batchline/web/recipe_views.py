"""Master recipe pages: list, preview, import, edit a draft, compare, and the signed life-cycle."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor, DoesNotFit, ReasonRequired
from batchline.recipes import document as doc
from batchline.recipes import services
from batchline.recipes.models import MasterRecipe
from batchline.recipes.selectors import recipe_review
from batchline.rules import states
from batchline.rules.changes import TIER_NAMES
from batchline.signatures.models import Meaning, Signature
from batchline.signatures.services import (
    SignatureRefused,
    signature_intact,
    signer_authenticate,
    signing_session_open,
    username_required,
)

from .access import current_user, require

# The buttons, labelled; who may press each comes from the service's own table.
LABELS = {
    "submit": "Submit for review",
    "return": "Return to draft",
    "approve": "Approve",
    "make_effective": "Make effective",
    "retire": "Retire",
}


@login_required
def recipe_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "recipes.view_masterrecipe")
    recipes = MasterRecipe.objects.select_related("author").order_by("code", "-version")
    return render(request, "recipes/list.html", {"recipes": recipes})


def _problems_page(
    request: HttpRequest, template: str, context: dict[str, Any], exc: doc.RecipeInvalid
) -> HttpResponse:
    return render(request, template, {**context, "problems": [str(p) for p in exc.problems]}, status=422)


@login_required
def recipe_import(request: HttpRequest) -> HttpResponse:
    require(request.user, "recipes.author_recipe")
    if request.method != "POST":
        return render(request, "recipes/import.html", {"text": ""})
    upload = request.FILES.get("file")
    refused = doc.too_large(upload.size or 0) if upload else None
    if refused:  # refused before the file is read
        return _problems_page(request, "recipes/import.html", {"text": ""}, refused)
    text = upload.read().decode("utf-8", errors="replace") if upload else request.POST.get("text", "")
    try:
        recipe = services.recipe_import(actor=Actor.of(request.user, via="web"), text=text)
    except doc.RecipeInvalid as exc:
        return _problems_page(request, "recipes/import.html", {"text": text}, exc)
    except services.RecipeRefused as exc:
        problems = [r.message for r in exc.verdict.reasons]
        return render(request, "recipes/import.html", {"text": text, "problems": problems}, status=409)
    messages.success(request, f"Imported {recipe.code} version {recipe.version} as a draft.")
    return HttpResponseRedirect(reverse("recipe", args=[recipe.pk]))


def _detail(request: HttpRequest, recipe: MasterRecipe, *, status: int = 200, **extra: Any) -> HttpResponse:
    user = current_user(request)
    parsed = doc.from_canonical(recipe.document)
    sigs = Signature.objects.filter(record_type="recipes.masterrecipe", record_id=str(recipe.pk)).order_by(
        "signed_at"
    )
    content = recipe.signed_content()
    actions = [
        (command, label, states.RECIPE[command].meaning, states.RECIPE[command].reason_required)
        for command, label in LABELS.items()
        if recipe.status in states.RECIPE[command].source
        and user.has_perm(services.COMMAND_PERMISSION[command])
    ]
    versions = MasterRecipe.objects.filter(code=recipe.code).exclude(pk=recipe.pk).order_by("-version")
    context = {
        "recipe": recipe,
        "doc": parsed,
        "preds": parsed.predecessors(),
        "signatures": [{"signature": s, "intact": signature_intact(s, content)} for s in sigs],
        "actions": actions,
        "versions": versions,
        "can_author": user.has_perm("recipes.author_recipe"),
        "username_required": username_required(request),
        **extra,
    }
    return render(request, "recipes/detail.html", context, status=status)


@login_required
def recipe_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "recipes.view_masterrecipe")
    return _detail(request, get_object_or_404(MasterRecipe, pk=pk))


@login_required
@require_POST
def recipe_transition(request: HttpRequest, pk: int, command: str) -> HttpResponse:
    if command not in services.COMMAND_PERMISSION:
        return HttpResponse(status=404)
    require(request.user, services.COMMAND_PERMISSION[command])
    recipe = get_object_or_404(MasterRecipe, pk=pk)
    try:
        signer = signer_authenticate(
            request=request,
            username=request.POST.get("signer_username"),
            password=request.POST.get("signer_password", ""),
            meaning=states.RECIPE[command].meaning or Meaning.APPROVED,
        )
        services.recipe_transition(
            actor=Actor.of(request.user, via="web"),
            recipe=recipe,
            command=command,
            signer=signer,
            reason=request.POST.get("reason", ""),
        )
    except services.RecipeRefused as exc:
        return _detail(request, recipe, status=422, refusal=[r.message for r in exc.verdict.reasons])
    except (SignatureRefused, ReasonRequired) as exc:
        return _detail(request, recipe, status=422, refusal=[str(exc)])
    signing_session_open(signer)
    messages.success(request, f"{recipe.code} version {recipe.version}: {command.replace('_', ' ')} signed.")
    return HttpResponseRedirect(reverse("recipe", args=[pk]))


@login_required
def recipe_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """A draft edited as its recipe file: every problem comes back with its line."""
    require(request.user, "recipes.author_recipe")
    recipe = get_object_or_404(MasterRecipe, pk=pk)
    if request.method != "POST":
        return render(
            request,
            "recipes/edit.html",
            {"recipe": recipe, "text": doc.dump_yaml(doc.from_canonical(recipe.document))},
        )
    text = request.POST.get("text", "")
    try:
        services.recipe_update(
            actor=Actor.of(request.user, via="web"),
            recipe=recipe,
            text=text,
            reason=request.POST.get("reason", ""),
        )
    except doc.RecipeInvalid as exc:
        return _problems_page(request, "recipes/edit.html", {"recipe": recipe, "text": text}, exc)
    except services.RecipeRefused as exc:
        return render(
            request, "recipes/edit.html", {"recipe": recipe, "text": text, "problems": [str(exc)]}, status=422
        )
    messages.success(request, "Draft saved.")
    return HttpResponseRedirect(reverse("recipe", args=[pk]))


@login_required
@require_POST
def recipe_new_version(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "recipes.author_recipe")
    source = get_object_or_404(MasterRecipe, pk=pk)
    try:
        recipe = services.recipe_new_version(
            actor=Actor.of(request.user, via="web"), recipe=source, reason=request.POST.get("reason", "")
        )
    except ReasonRequired as exc:
        return _detail(request, source, status=422, refusal=[str(exc)])
    except (DoesNotFit, services.RecipeRefused) as exc:
        return _detail(request, source, status=422, refusal=[r.message for r in exc.verdict.reasons])
    messages.success(request, f"Version {recipe.version} created as a draft.")
    return HttpResponseRedirect(reverse("recipe", args=[recipe.pk]))


@login_required
def recipe_compare(request: HttpRequest, pk: int, other: int) -> HttpResponse:
    """Version ``pk`` against ``other``: the reason, the changes by importance, what the change affects."""
    require(request.user, "recipes.view_masterrecipe")
    a, b = get_object_or_404(MasterRecipe, pk=pk), get_object_or_404(MasterRecipe, pk=other)
    review = recipe_review(a=a, b=b)
    context = {
        "a": a,
        "b": b,
        "review": review,
        "lines": [
            {"tier": int(d.tier), "name": TIER_NAMES[d.tier], "words": d.words}
            for d in review.comparison.lines
        ],
        "affected": review.affected,
        "materials": sorted(review.comparison.materials),
        "changes": review.comparison.changes,
    }
    return render(request, "recipes/compare.html", context)
