"""Recipes, batches and steps over the API: the services the pages use, with the same gates and audit.

A gate's refusal is 409 with every reason; a recipe file's problems are 422
with their lines. Signatures always take user ID and password here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from pydantic import Field

from batchline.audit.services import Actor
from batchline.execution import selectors, services
from batchline.execution.models import Batch
from batchline.recipes import document as doc
from batchline.recipes import services as recipe_services
from batchline.recipes.compare import compare
from batchline.recipes.models import MasterRecipe
from batchline.recipes.selectors import recipe_review
from batchline.rules import states
from batchline.signatures import status as signature_status
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signer_authenticate
from batchline.web.access import current_user, require

from .schemas import Problem, SignatureIn


class Refusal(Schema):
    detail: str
    code: str
    reasons: list[dict[str, str]]


class FileProblems(Schema):
    detail: str
    code: str
    problems: list[dict[str, Any]]


def _signer(request: HttpRequest, signature: SignatureIn, meaning: str) -> VerifiedSigner:
    return signer_authenticate(
        request=request, username=signature.username, password=signature.password, meaning=meaning
    )


def witness_of(request: HttpRequest, witness: SignatureIn | None) -> VerifiedSigner | None:
    """The second person confirming a value typed by hand, authenticated before anything is written."""
    if witness is None:
        return None
    return signer_authenticate(
        request=request,
        username=witness.username,
        password=witness.password,
        meaning=Meaning.VERIFIED,
        witness=True,
    )


def _actor(request: HttpRequest) -> Actor:
    return Actor.of(request.user, via="api")


# --- recipes -----------------------------------------------------------------------------

recipes = Router(tags=["recipes"])


class RecipeOut(Schema):
    id: int
    code: str
    version: int
    name: str
    status: str
    nominal_quantity: Decimal
    nominal_unit: str
    author: str
    effective_at: Any = None


def _recipe_out(r: MasterRecipe) -> dict[str, Any]:
    return {
        "id": r.pk,
        "code": r.code,
        "version": r.version,
        "name": r.name,
        "status": r.status,
        "nominal_quantity": r.nominal_quantity,
        "nominal_unit": r.nominal_unit,
        "author": r.author.username,
        "effective_at": r.effective_at,
    }


@recipes.get("", response=list[RecipeOut])
def recipe_list(request: HttpRequest) -> list[dict[str, Any]]:
    require(request.user, "recipes.view_masterrecipe")
    return [_recipe_out(r) for r in MasterRecipe.objects.select_related("author")]


class RecipeDetail(RecipeOut):
    document: dict[str, Any]


@recipes.get("/{int:recipe_id}", response=RecipeDetail)
def recipe_get(request: HttpRequest, recipe_id: int) -> dict[str, Any]:
    require(request.user, "recipes.view_masterrecipe")
    r = get_object_or_404(MasterRecipe.objects.select_related("author"), pk=recipe_id)
    return {**_recipe_out(r), "document": r.document}


@recipes.get("/{int:recipe_id}/export", response={200: str})
def recipe_export(request: HttpRequest, recipe_id: int) -> HttpResponse:
    """The version as a YAML recipe file, ready to import elsewhere."""
    require(request.user, "recipes.view_masterrecipe")
    r = get_object_or_404(MasterRecipe, pk=recipe_id)
    return HttpResponse(doc.dump_yaml(doc.from_canonical(r.document)), content_type="application/yaml")


class ImportIn(Schema):
    text: str = Field(
        min_length=1,
        max_length=doc.MAX_FILE_BYTES + 1,  # one more: the file check refuses it in words
        description=f"the recipe file, YAML or JSON; at most {doc.MAX_FILE_BYTES // 1048576} MB, "
        f"no anchors or aliases, nested at most {doc.MAX_DEPTH} levels",
    )
    reason: str = Field(default="", max_length=2000)


@recipes.post("/import", response={201: RecipeOut, 403: Problem, 422: FileProblems})
def recipe_import(request: HttpRequest, payload: ImportIn) -> Any:
    require(request.user, "recipes.author_recipe")
    try:
        recipe = recipe_services.recipe_import(
            actor=_actor(request), text=payload.text, reason=payload.reason
        )
    except doc.RecipeInvalid as exc:
        return Status(
            422,
            {
                "detail": "The recipe file was not imported.",
                "code": "RECIPE_INVALID",
                "problems": [
                    {"line": p.line, "where": ".".join(map(str, p.path)), "message": p.message}
                    for p in exc.problems
                ],
            },
        )
    return Status(201, _recipe_out(recipe))


class TransitionIn(Schema):
    command: Literal["submit", "return", "approve", "make_effective", "retire"]
    reason: str = Field(default="", max_length=2000)
    signature: SignatureIn


@recipes.post(
    "/{int:recipe_id}/transition", response={200: RecipeOut, 403: Problem, 409: Refusal, 422: Problem}
)
def recipe_transition(request: HttpRequest, recipe_id: int, payload: TransitionIn) -> Any:
    if not (
        request.user.has_perm("recipes.author_recipe") or request.user.has_perm("recipes.approve_recipe")
    ):
        require(request.user, "recipes.approve_recipe")
    recipe = get_object_or_404(MasterRecipe, pk=recipe_id)
    meaning = states.RECIPE[payload.command].meaning or Meaning.APPROVED
    signer = _signer(request, payload.signature, meaning)
    recipe = recipe_services.recipe_transition(
        actor=_actor(request), recipe=recipe, command=payload.command, signer=signer, reason=payload.reason
    )
    return _recipe_out(recipe)


class NewVersionIn(Schema):
    reason: str = Field(
        default="",
        max_length=2000,
        description="the reason for change, kept with the new version; required for a new version of the "
        "effective one",
    )


@recipes.post("/{int:recipe_id}/new-version", response={201: RecipeOut, 403: Problem, 422: Problem})
def recipe_new_version(request: HttpRequest, recipe_id: int, payload: NewVersionIn) -> Any:
    require(request.user, "recipes.author_recipe")
    recipe = get_object_or_404(MasterRecipe, pk=recipe_id)
    reason = payload.reason if payload else ""
    return Status(
        201,
        _recipe_out(recipe_services.recipe_new_version(actor=_actor(request), recipe=recipe, reason=reason)),
    )


@recipes.get("/{int:recipe_id}/compare/{int:other_id}", response=list[dict[str, Any]])
def recipe_compare(request: HttpRequest, recipe_id: int, other_id: int) -> list[dict[str, Any]]:
    """Every changed field from one version to another (path, kind, old, new), most important first.

    ``tier`` ranks it (1 limits and quantities, 2 materials, equipment, signatures and steps,
    3 texts, 4 order alone) and ``words`` is the sentence that covers it; ``/review`` reads the
    same change as one sentence per change, with its reason and what it affects.
    """
    require(request.user, "recipes.view_masterrecipe")
    a = get_object_or_404(MasterRecipe, pk=recipe_id)
    b = get_object_or_404(MasterRecipe, pk=other_id)
    return [c.as_dict() for c in compare(a.document, b.document)]


@recipes.get("/{int:recipe_id}/compare/{int:other_id}/review", response=dict[str, Any])
def recipe_compare_review(request: HttpRequest, recipe_id: int, other_id: int) -> dict[str, Any]:
    """The change as a reviewer reads it: the reason for change, one sentence per change by
    importance (the order of steps in one last line), and for a newer version what it affects:
    open batches on the older version (they keep it), other versions in draft or review, lots in
    stock of the materials whose charge changed.
    """
    require(request.user, "recipes.view_masterrecipe")
    a = get_object_or_404(MasterRecipe, pk=recipe_id)
    b = get_object_or_404(MasterRecipe, pk=other_id)
    return recipe_review(a=a, b=b).as_dict()


# --- batches -----------------------------------------------------------------------------

batches = Router(tags=["batches"])


class BatchIn(Schema):
    recipe_id: int
    number: str = Field(min_length=1, max_length=40)
    planned_quantity: Decimal | str = Field(
        description="a JSON number, or the text as typed (read in the site's notation: GET /configuration)"
    )


class BatchOut(Schema):
    number: str
    recipe_code: str
    recipe_version: int
    state: str
    planned_quantity: Decimal
    unit: str


def _batch_out(b: Batch) -> dict[str, Any]:
    return {
        "number": b.number,
        "recipe_code": b.recipe.code,
        "recipe_version": b.recipe.version,
        "state": b.state,
        "planned_quantity": b.planned_quantity,
        "unit": b.unit,
    }


def _batch(number: str) -> Batch:
    return get_object_or_404(Batch.objects.select_related("recipe"), number=number)


@batches.get("", response=list[BatchOut])
def batch_list(request: HttpRequest) -> list[dict[str, Any]]:
    require(request.user, "execution.view_batch")
    return [_batch_out(b) for b in Batch.objects.select_related("recipe")]


@batches.post("", response={201: BatchOut, 403: Problem, 409: Refusal})
def batch_create(request: HttpRequest, payload: BatchIn) -> Any:
    require(request.user, "execution.control_batch")
    recipe = get_object_or_404(MasterRecipe, pk=payload.recipe_id)
    batch = services.batch_create(
        actor=_actor(request), recipe=recipe, number=payload.number, planned_quantity=payload.planned_quantity
    )
    return Status(201, _batch_out(Batch.objects.select_related("recipe").get(pk=batch.pk)))


@batches.get("/{number}", response=BatchOut)
def batch_get(request: HttpRequest, number: str) -> dict[str, Any]:
    require(request.user, "execution.view_batch")
    return _batch_out(_batch(number))


class CommandIn(Schema):
    command: Literal["release", "hold", "resume", "abort"]
    reason: str = Field(default="", max_length=2000)
    signature: SignatureIn


@batches.post("/{number}/command", response={200: BatchOut, 403: Problem, 409: Refusal, 422: Problem})
def batch_command(request: HttpRequest, number: str, payload: CommandIn) -> Any:
    require(request.user, "execution.control_batch")
    batch = _batch(number)
    signer = _signer(request, payload.signature, Meaning.PERFORMED)
    services.batch_command(
        actor=_actor(request), batch=batch, command=payload.command, signer=signer, reason=payload.reason
    )
    return _batch_out(_batch(number))


@batches.get("/{number}/record", response=dict[str, Any])
def batch_record(request: HttpRequest, number: str) -> dict[str, Any]:
    """The electronic batch record as JSON: every value, correction, signature (with its status:
    valid, superseded, broken; ``signatures.status``) and exception."""
    if not (
        request.user.has_perm("execution.view_batch") or request.user.has_perm("accounts.view_audit_trail")
    ):
        require(request.user, "execution.view_batch")
    batch = _batch(number)
    record = selectors.batch_record(batch)
    _, statuses = signature_status.statuses_of(batch)
    for sig in [*record["signatures"], *(x for step in record["steps"] for x in step["signatures"])]:
        found = statuses.get(sig["id"])
        sig["status"] = found.as_dict() if found else None
    return record


class StepOut(Schema):
    key: str
    title: str
    operation: str
    kind: str
    state: str


@batches.get("/{number}/steps", response=list[StepOut])
def step_list(request: HttpRequest, number: str) -> Any:
    require(request.user, "execution.view_batch")
    return _batch(number).steps.order_by("seq")


class CompleteIn(Schema):
    values: dict[str, str | Decimal] = Field(
        default_factory=dict,
        max_length=200,
        description="input name → the value as typed (a number read in the site's notation), or a JSON number",
    )
    checklist: list[bool] = Field(default_factory=list, max_length=50)
    signature: SignatureIn | None = None
    confirm_out_of_specification: bool = Field(
        default=False,
        description="the person confirms recording values outside their specification (each raises an "
        "exception); without it such values are answered 409 CONFIRM_OUT_OF_SPECIFICATION and nothing is written",
    )


class VerifyIn(Schema):
    signature: SignatureIn


class CorrectIn(Schema):
    name: str = Field(min_length=1, max_length=40)
    text: str = Field(min_length=1, max_length=2000)
    reason: str = Field(min_length=1, max_length=2000)
    signature: SignatureIn
    witness: SignatureIn | None = Field(
        default=None,
        description="only for an input read from a machine: the second person confirming the value typed "
        "in place of the reading (without one it is refused, WITNESS_REQUIRED); ignored for other inputs",
    )
    confirm_out_of_specification: bool = Field(
        default=False,
        description="the person confirms recording values outside their specification (each raises an "
        "exception); without it such values are answered 409 CONFIRM_OUT_OF_SPECIFICATION and nothing is written",
    )


def _step_out(batch: Batch, key: str) -> dict[str, Any]:
    step = batch.steps.get(key=key)
    return {
        "key": step.key,
        "title": step.title,
        "operation": step.operation,
        "kind": step.kind,
        "state": step.state,
    }


@batches.post("/{number}/steps/{key}/start", response={200: StepOut, 403: Problem, 409: Refusal})
def step_start(request: HttpRequest, number: str, key: str) -> Any:
    require(request.user, "execution.execute_batch")
    batch = _batch(number)
    user = current_user(request)
    services.step_start(actor=_actor(request), user=user, batch=batch, step_key=key)
    return _step_out(batch, key)


@batches.post(
    "/{number}/steps/{key}/complete", response={200: StepOut, 403: Problem, 409: Refusal, 422: Problem}
)
def step_complete(request: HttpRequest, number: str, key: str, payload: CompleteIn) -> Any:
    require(request.user, "execution.execute_batch")
    batch = _batch(number)
    user = current_user(request)
    signer = _signer(request, payload.signature, Meaning.PERFORMED) if payload.signature else None
    services.step_complete(
        actor=_actor(request),
        user=user,
        batch=batch,
        step_key=key,
        entries=payload.values,
        checklist=payload.checklist,
        signer=signer,
        confirm_out_of_specification=payload.confirm_out_of_specification,
    )
    return _step_out(batch, key)


class ScanIn(Schema):
    scan: str = Field(max_length=200, description="what the barcode scanner typed: a container label")


@batches.post("/{number}/steps/{key}/scan", response={200: StepOut, 403: Problem, 409: Refusal})
def step_scan(request: HttpRequest, number: str, key: str, payload: ScanIn) -> Any:
    """Scan a container on a material charge step: judged at the server's time, then consumed."""
    require(request.user, "execution.execute_batch")
    batch = _batch(number)
    user = current_user(request)
    services.step_scan(actor=_actor(request), user=user, batch=batch, step_key=key, scan=payload.scan)
    return _step_out(batch, key)


class DispenseIn(Schema):
    source: str = Field(max_length=200, description="the source container's label, as scanned")
    scale: str = Field(max_length=40, description="the scale's equipment code; it is read over MT-SICS")
    manual_weight: str | None = Field(
        default=None, max_length=40, description="only when the scale is down: the weight typed by hand"
    )
    manual_unit: str = Field(default="", max_length=30)
    reason: str = Field(default="", max_length=500, description="why the scale was not used")
    witness: SignatureIn | None = Field(
        default=None, description="the second person confirming a manual weight"
    )


@batches.post(
    "/{number}/steps/{key}/dispense", response={200: StepOut, 403: Problem, 409: Refusal, 422: Problem}
)
def step_dispense(request: HttpRequest, number: str, key: str, payload: DispenseIn) -> Any:
    """Weigh material out of a container on a weigh-and-dispense step (a stable reading, in tolerance)."""
    require(request.user, "execution.execute_batch")
    batch = _batch(number)
    user = current_user(request)
    witness = witness_of(request, payload.witness)
    services.step_dispense(
        actor=_actor(request),
        user=user,
        batch=batch,
        step_key=key,
        source=payload.source,
        scale=payload.scale,
        manual_weight=payload.manual_weight,
        manual_unit=payload.manual_unit,
        reason=payload.reason,
        witness=witness,
    )
    return _step_out(batch, key)


@batches.post("/{number}/steps/{key}/verify", response={200: StepOut, 403: Problem, 409: Refusal})
def step_verify(request: HttpRequest, number: str, key: str, payload: VerifyIn) -> Any:
    require(request.user, "signatures.sign_verified")
    batch = _batch(number)
    user = current_user(request)
    signer = _signer(request, payload.signature, Meaning.VERIFIED)
    services.step_verify(actor=_actor(request), user=user, batch=batch, step_key=key, signer=signer)
    return _step_out(batch, key)


@batches.post(
    "/{number}/steps/{key}/correct", response={200: StepOut, 403: Problem, 409: Refusal, 422: Problem}
)
def step_correct(request: HttpRequest, number: str, key: str, payload: CorrectIn) -> Any:
    require(request.user, "execution.execute_batch")
    batch = _batch(number)
    signer = _signer(request, payload.signature, Meaning.PERFORMED)
    witness = witness_of(request, payload.witness)
    services.value_correct(
        actor=_actor(request),
        user=current_user(request),
        batch=batch,
        step_key=key,
        name=payload.name,
        text=payload.text,
        reason=payload.reason,
        signer=signer,
        confirm_out_of_specification=payload.confirm_out_of_specification,
        witness=witness,
    )
    return _step_out(batch, key)
