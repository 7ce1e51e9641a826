"""The form editor for a draft recipe: header, operations and steps, reordered with buttons.

Each form posts one change; the service applies it to the stored draft and
checks the whole recipe as a file import would (:func:`recipes.services.recipe_revise`).
A refused change comes back on the same form with every problem named, and
nothing is saved. Buttons, not drag and drop: they work with gloves, a
keyboard and a screen reader, and each press is one audited change.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from batchline.accounts.roles import ROLES
from batchline.audit.services import Actor
from batchline.configuration import selectors as configuration
from batchline.recipes import document as doc
from batchline.recipes import editing, services
from batchline.recipes.models import MasterRecipe
from batchline.rules import numbers

from .access import require

KINDS = [
    ("instruction", "Instruction to acknowledge"),
    ("data_entry", "Data entry"),
    ("checklist", "Checklist"),
    ("timer", "Timer or hold"),
    ("calculation", "Calculation"),
    ("verification", "Second-person verification"),
    ("signature", "Signature"),
    ("material_charge", "Material identification and charge"),
    ("equipment_id", "Equipment identification"),
]
INPUT_TYPES = [("number", "Number"), ("text", "Text"), ("choice", "Choice"), ("yes_no", "Yes / no")]
BLANK_ROWS = 2  # empty input and calculation rows offered under the filled ones


def _problems(exc: doc.RecipeInvalid) -> list[str]:
    return [f"{p.place()}: {p.message}" if p.path else p.message for p in exc.problems]


def _refused(exc: Exception) -> list[str]:
    if isinstance(exc, doc.RecipeInvalid):
        return _problems(exc)
    assert isinstance(exc, services.RecipeRefused)
    return [r.message for r in exc.verdict.reasons]


# --- the editor page ---------------------------------------------------------------------------


def _editor(request: HttpRequest, recipe: MasterRecipe, *, status: int = 200, **extra: Any) -> HttpResponse:
    context = {
        "recipe": recipe,
        "doc": doc.from_canonical(recipe.document),
        "seen": services.document_digest(recipe.document),
        "kinds": dict(KINDS),
        **extra,
    }
    return render(request, "recipes/editor.html", context, status=status)


@login_required
def recipe_editor(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "recipes.author_recipe")
    return _editor(request, get_object_or_404(MasterRecipe, pk=pk))


class TypedNumbers:
    """Numbers the author typed, read in the site's notation into the recipe's plain form ("0,5" → "0.5").

    What cannot be read is kept as typed, for the form to show again, and its
    problem in words is collected: the recipe document itself always holds
    numbers with a point, whatever the site writes.
    """

    def __init__(self) -> None:
        self.notation = configuration.notation()
        self.problems: list[str] = []

    def __call__(self, value: str, where: str) -> str | None:
        text = value.strip()
        if not text:
            return None
        try:
            return f"{numbers.read(text, self.notation):f}"
        except numbers.NotANumber as exc:
            self.problems.append(numbers.sentence(where, exc))
            return text

    def refuse(self) -> None:
        if self.problems:
            raise doc.RecipeInvalid([doc.Problem((), p) for p in self.problems])


def _change(post: QueryDict, data: dict[str, Any]) -> dict[str, Any]:
    """The one change a button or small form on the editor page asks for."""
    action = post.get("action", "")
    if action == "header":
        typed = TypedNumbers()
        quantity = typed(post.get("quantity", ""), "Nominal batch size") or ""
        typed.refuse()
        return editing.set_header(
            data,
            name=post.get("name", "").strip(),
            quantity=quantity,
            unit=post.get("unit", "").strip(),
            description=post.get("description", "").strip(),
        )
    if action in ("move_step", "move_operation"):
        delta = -1 if post.get("direction") == "up" else 1
        if action == "move_step":
            return editing.move_step(data, post.get("step", ""), delta)
        return editing.move_operation(data, post.get("operation", ""), delta)
    if action == "delete_step":
        return editing.delete_step(data, post.get("step", ""))
    if action == "delete_operation":
        return editing.delete_operation(data, post.get("operation", ""))
    if action == "rename_operation":
        return editing.rename_operation(data, post.get("operation", ""), name=post.get("name", "").strip())
    if action == "add_operation":
        taken = editing.keys_in(data)
        name, first = post.get("name", "").strip(), post.get("first_step", "").strip()
        op_key = editing.suggest_key(name, taken)
        step = {"key": editing.suggest_key(first, taken | {op_key}), "kind": "instruction", "title": first}
        return editing.add_operation(data, key=op_key, name=name, first_step=step)
    raise doc.RecipeInvalid([doc.Problem((), f"Unknown editor action {action!r}.")])


@login_required
@require_POST
def recipe_editor_change(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "recipes.author_recipe")
    recipe = get_object_or_404(MasterRecipe, pk=pk)
    try:
        recipe = services.recipe_revise(
            actor=Actor.of(request.user, via="web"),
            recipe=recipe,
            change=lambda data: _change(request.POST, data),
            seen=request.POST.get("seen") or None,
        )
    except (doc.RecipeInvalid, services.RecipeRefused) as exc:
        recipe.refresh_from_db()
        return _editor(request, recipe, status=422, problems=_refused(exc))
    if request.htmx:  # type: ignore[attr-defined]
        return _editor(request, recipe)
    messages.success(request, "Draft saved.")
    return HttpResponseRedirect(reverse("recipe_editor", args=[pk]))


# --- one step's form ----------------------------------------------------------------------------


def _limits(post: QueryDict, prefix: str, read: TypedNumbers, what: str) -> dict[str, str | None] | None:
    low = read(post.get(f"{prefix}_low", ""), f"{what}, from")
    high = read(post.get(f"{prefix}_high", ""), f"{what}, to")
    return {"low": low, "high": high} if low or high else None


def _rows(post: QueryDict, prefix: str) -> list[str]:
    """Row indexes of a repeated group that the author filled in (blank rows are left out)."""
    indexes = sorted(
        {
            int(k.split("-")[1])
            for k in post
            if k.startswith(f"{prefix}-") and k.count("-") == 2 and k.split("-")[1].isdigit() and len(k) < 40
        }
    )
    return [
        f"{prefix}-{i}"
        for i in indexes
        if not post.get(f"{prefix}-{i}-delete")
        and (post.get(f"{prefix}-{i}-name", "").strip() or post.get(f"{prefix}-{i}-label", "").strip())
    ]


def step_from_form(post: QueryDict, taken: set[str], read: TypedNumbers) -> dict[str, Any]:
    """The step as recipe data, from the step form; the types are checked with the rest of the recipe.

    Typed numbers are read in the site's notation by ``read``, which collects what it cannot read.
    """
    title = post.get("title", "").strip()
    inputs: list[dict[str, Any]] = []
    for row in _rows(post, "in"):
        label = post.get(f"{row}-label", "").strip()
        name = post.get(f"{row}-name", "").strip() or editing.suggest_key(label, taken)
        taken = taken | {name}
        inputs.append(
            {
                "name": name,
                "label": label,
                "type": post.get(f"{row}-type", "number"),
                "unit": post.get(f"{row}-unit", "").strip(),
                "target": read(post.get(f"{row}-target", ""), f"{label or name}: target"),
                "plausible": _limits(post, f"{row}-plausible", read, f"{label or name}: plausible"),
                "specification": _limits(post, f"{row}-spec", read, f"{label or name}: specification"),
                "action": _limits(post, f"{row}-action", read, f"{label or name}: action limits"),
                "choices": [c.strip() for c in post.get(f"{row}-choices", "").split(";") if c.strip()],
                "critical": bool(post.get(f"{row}-critical")),
                "scales": bool(post.get(f"{row}-scales")),
                "required": bool(post.get(f"{row}-required")),
            }
        )
    calculations: list[dict[str, Any]] = []
    for row in _rows(post, "calc"):
        label = post.get(f"{row}-label", "").strip()
        name = post.get(f"{row}-name", "").strip() or editing.suggest_key(label, taken)
        taken = taken | {name}
        calculations.append(
            {
                "name": name,
                "label": label,
                "formula": post.get(f"{row}-formula", "").strip(),
                "unit": post.get(f"{row}-unit", "").strip(),
                "decimals": post.get(f"{row}-decimals", "").strip() or 2,
                "specification": _limits(post, f"{row}-spec", read, f"{label or name}: specification"),
                "critical": bool(post.get(f"{row}-critical")),
            }
        )
    timer_min = read(post.get("timer_min", ""), "Timer: at least (min)")
    timer_max = read(post.get("timer_max", ""), "Timer: at most (min)")
    material_code = post.get("material_code", "").strip()
    material = (
        {
            "code": material_code,
            "quantity": read(post.get("material_quantity", ""), "Material quantity"),
            "unit": post.get("material_unit", "").strip(),
            "scales": bool(post.get("material_scales")),
            "tolerance_percent": read(post.get("material_tolerance_percent", ""), "Tolerance ± %"),
            "tolerance_absolute": read(post.get("material_tolerance_absolute", ""), "Tolerance ± quantity"),
            "potency_adjust": bool(post.get("material_potency")),
            "compensates": post.get("material_compensates", "").strip() or None,
        }
        if material_code
        else None
    )
    return {
        "material": material,
        "equipment_class": post.get("equipment_class", "").strip() or None,
        "qualification": post.get("qualification", "").strip().upper() or None,
        "key": post.get("key", "").strip() or editing.suggest_key(title, taken),
        "kind": post.get("kind", "instruction"),
        "title": title,
        "instruction": post.get("instruction", "").strip(),
        "sop": post.get("sop", "").strip(),
        "role": post.get("role", "operator"),
        "signs": bool(post.get("signs")),
        "verify": bool(post.get("verify")),
        "after": post.getlist("after") if post.get("order") == "after" else None,
        "inputs": inputs,
        "checklist": [line.strip() for line in post.get("checklist", "").splitlines() if line.strip()],
        "timer": {"min_minutes": timer_min or None, "max_minutes": timer_max or None}
        if timer_min or timer_max
        else None,
        "calculations": calculations,
    }


def _value_names(data: dict[str, Any]) -> set[str]:
    return {
        v["name"]
        for op in data["operations"]
        for step in op["steps"]
        for v in step.get("inputs", []) + step.get("calculations", [])
    }


def _numbered(prefix: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each repeated row with the prefix of its form fields (``in-0``, ``in-1``…)."""
    return [{**row, "p": f"{prefix}-{i}", "n": i + 1} for i, row in enumerate(rows)]


def _step_page(
    request: HttpRequest,
    recipe: MasterRecipe,
    *,
    operation: str,
    step: dict[str, Any],
    original: str | None,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    parsed = doc.from_canonical(recipe.document)
    blank = {"type": "number", "required": True}
    context = {
        "recipe": recipe,
        "operation": operation,
        "operation_name": next((op.name for op in parsed.operations if op.key == operation), operation),
        "step": step,
        "original": original,
        "inputs": _numbered("in", [*step.get("inputs", []), *[blank] * BLANK_ROWS]),
        "calculations": _numbered("calc", [*step.get("calculations", []), *[{}] * BLANK_ROWS]),
        "checklist_text": "\n".join(step.get("checklist", [])),
        "others": [(s.key, s.title) for _, s in parsed.steps() if s.key != original],
        "seen": services.document_digest(recipe.document),
        "kinds": KINDS,
        "input_types": INPUT_TYPES,
        "roles": [(name, label) for name, (label, _, _) in ROLES.items()],
        **extra,
    }
    return render(request, "recipes/step_form.html", context, status=status)


def _save_step(
    request: HttpRequest, recipe: MasterRecipe, *, operation: str, original: str | None
) -> HttpResponse:
    taken = editing.keys_in(recipe.document) | _value_names(recipe.document)
    read = TypedNumbers()
    step = step_from_form(request.POST, taken - ({original} if original else set()), read)
    try:
        read.refuse()
        services.recipe_revise(
            actor=Actor.of(request.user, via="web"),
            recipe=recipe,
            change=lambda data: editing.put_step(data, operation=operation, step=step, replaces=original),
            seen=request.POST.get("seen") or None,
            reason=request.POST.get("reason", ""),
        )
    except (doc.RecipeInvalid, services.RecipeRefused) as exc:
        recipe.refresh_from_db()
        return _step_page(
            request,
            recipe,
            operation=operation,
            step=step,
            original=original,
            status=422,
            problems=_refused(exc),
        )
    messages.success(request, f"Step “{step['title']}” saved.")
    return HttpResponseRedirect(reverse("recipe_editor", args=[recipe.pk]) + f"#step-{step['key']}")


@login_required
def recipe_step_edit(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    require(request.user, "recipes.author_recipe")
    recipe = get_object_or_404(MasterRecipe, pk=pk)
    try:
        operation, step = editing.step_of(doc.from_canonical(recipe.document), key)
    except doc.RecipeInvalid:
        return HttpResponse(status=404)
    if request.method == "POST":
        return _save_step(request, recipe, operation=operation, original=key)
    return _step_page(request, recipe, operation=operation, step=step, original=key)


@login_required
def recipe_step_add(request: HttpRequest, pk: int, operation: str) -> HttpResponse:
    require(request.user, "recipes.author_recipe")
    recipe = get_object_or_404(MasterRecipe, pk=pk)
    if not any(op["key"] == operation for op in recipe.document["operations"]):
        return HttpResponse(status=404)
    if request.method == "POST":
        return _save_step(request, recipe, operation=operation, original=None)
    step = {"kind": request.GET.get("kind", "instruction"), "role": "operator"}
    return _step_page(request, recipe, operation=operation, step=step, original=None)


# --- a new recipe -------------------------------------------------------------------------------


@login_required
def recipe_new(request: HttpRequest) -> HttpResponse:
    """A new recipe from its header, its first operation and first step; the rest in the editor."""
    require(request.user, "recipes.author_recipe")
    form = {k: request.POST.get(k, "").strip() for k in request.POST} if request.method == "POST" else {}
    if request.method != "POST":
        return render(request, "recipes/new.html", {"form": form})
    op_key = editing.suggest_key(form.get("operation", ""), set())
    typed = TypedNumbers()
    quantity = typed(form.get("quantity", ""), "Nominal batch size") or ""
    if typed.problems:
        return render(request, "recipes/new.html", {"form": form, "problems": typed.problems}, status=422)
    data = {
        "recipe": {
            "code": form.get("code", "").upper(),
            "name": form.get("name", ""),
            "product_code": form.get("product_code", "").upper(),
            "product_name": form.get("product_name", ""),
            "batch_size": {"quantity": quantity, "unit": form.get("unit", "")},
            "description": form.get("description", ""),
        },
        "operations": [
            {
                "key": op_key,
                "name": form.get("operation", ""),
                "steps": [
                    {
                        "key": editing.suggest_key(form.get("first_step", ""), {op_key}),
                        "kind": "instruction",
                        "title": form.get("first_step", ""),
                    }
                ],
            }
        ],
    }
    code = form.get("code", "").upper()
    if MasterRecipe.objects.filter(code=code).exists():
        problem = f"Recipe {code} exists already: open it and make a new version, or choose another code."
        return render(request, "recipes/new.html", {"form": form, "problems": [problem]}, status=422)
    try:
        recipe = services.recipe_create(
            actor=Actor.of(request.user, via="web"),
            document=doc.validate(data),
            reason="created in the editor",
        )
    except (doc.RecipeInvalid, services.RecipeRefused) as exc:
        return render(request, "recipes/new.html", {"form": form, "problems": _refused(exc)}, status=422)
    messages.success(request, f"{recipe.code} version {recipe.version} created as a draft.")
    return HttpResponseRedirect(reverse("recipe_editor", args=[recipe.pk]))
