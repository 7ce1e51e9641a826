"""Master recipe services: import, edit drafts, new versions, the signed life-cycle (MBR-01).

Each function is one transaction: the change, its audit entries and, for a
life-cycle transition, the e-signature. Signers are re-authenticated by the
caller with ``signer_authenticate`` before the transaction opens.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from batchline import arrivals
from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor, ReasonRequired, record_create, record_update
from batchline.rules import states
from batchline.rules.verdict import Refused
from batchline.signatures.services import VerifiedSigner, signature_apply

from . import document as doc
from .models import MasterRecipe, Product, RecipeStatus

# Which permission each life-cycle command needs, beyond the signature meaning.
COMMAND_PERMISSION = {
    "submit": "recipes.author_recipe",
    "return": "recipes.approve_recipe",
    "approve": "recipes.approve_recipe",
    "make_effective": "recipes.approve_recipe",
    "retire": "recipes.approve_recipe",
}


class RecipeRefused(Refused):
    """A recipe action was refused; ``verdict.reasons`` say why."""


_refuse = RecipeRefused.because


def _person(actor: Actor) -> int:
    if actor.id is None:
        raise _refuse("PERSON_REQUIRED", "Recipes are written by a person, not by the system.")
    return actor.id


def _product(actor: Actor, header: doc.Header) -> Product:
    product = Product.objects.filter(code=header.product_code).first()
    if product is not None:
        return product
    try:
        with transaction.atomic():  # a savepoint: two first imports of one product race for its row
            return record_create(Product(code=header.product_code, name=header.product_name), actor=actor)
    except IntegrityError as exc:
        raise _refuse(
            "CONCURRENT_CHANGE",
            f"Product {header.product_code} was created by someone else at the same moment; try again.",
        ) from exc


def _lock_versions(code: str) -> int:
    """Lock the recipe's versions (FOR UPDATE cannot take an aggregate) and return the highest, or 0."""
    versions = list(
        MasterRecipe.objects.select_for_update().filter(code=code).values_list("version", flat=True)
    )
    return max(versions, default=0)


def _insert_version(recipe: MasterRecipe, *, actor: Actor, reason: str) -> MasterRecipe:
    try:
        with transaction.atomic():  # a savepoint: the same version written at the same moment is refused
            return record_create(recipe, actor=actor, reason=reason)
    except IntegrityError as exc:
        raise _refuse(
            "CONCURRENT_CHANGE",
            f"Another version of {recipe.code} was written at the same moment; try again.",
        ) from exc


def writers_of(recipe: MasterRecipe) -> set[int]:
    """Everyone who created or edited this version, from its audit trail (four eyes, MBR-01)."""
    editors = AuditEntry.objects.filter(
        record_type="recipes.masterrecipe", record_id=str(recipe.pk), action__in=("create", "update")
    ).values_list("actor_id", flat=True)
    return {recipe.author_id, *(e for e in editors if e is not None)}


def recipe_import(*, actor: Actor, text: str, reason: str = "") -> MasterRecipe:
    """Create the next draft version of the recipe the file describes.

    Raises :class:`~.document.RecipeInvalid` with lines and reasons; nothing is written then.
    """
    return recipe_create(actor=actor, document=doc.parse(text), reason=reason or "imported")


def recipe_create(*, actor: Actor, document: doc.RecipeDocument, reason: str = "") -> MasterRecipe:
    """Create the next draft version of ``document``'s recipe code (a new code starts at version 1)."""
    header = document.recipe
    with transaction.atomic():
        # Row locks first, then the product (whose creation takes the audit chain's lock):
        # one lock order everywhere.
        last = _lock_versions(header.code)
        product = _product(actor, header)
        recipe = MasterRecipe(
            product=product,
            code=header.code,
            version=last + 1,
            name=header.name,
            status=RecipeStatus.DRAFT,
            nominal_quantity=header.batch_size.quantity,
            nominal_unit=header.batch_size.unit,
            document=doc.canonical(document),
            author_id=_person(actor),
            created_at=timezone.now(),
        )
        return _insert_version(recipe, actor=actor, reason=reason or "created")


def document_digest(document: dict[str, Any]) -> str:
    """What an editor form saw, so a save over someone else's newer change is refused, not lost."""
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]


def _lock_draft(recipe: MasterRecipe) -> MasterRecipe:
    locked = MasterRecipe.objects.select_for_update().get(pk=recipe.pk)
    if locked.status != RecipeStatus.DRAFT:
        raise _refuse(
            "NOT_A_DRAFT",
            f"{locked.code} version {locked.version} is {locked.get_status_display().lower()}: "
            "only a draft can be edited; make a new version instead.",
        )
    return locked


def _store_draft(locked: MasterRecipe, parsed: doc.RecipeDocument, *, actor: Actor, reason: str) -> None:
    if parsed.recipe.code != locked.code:
        raise _refuse("CODE_CHANGED", f"The file is for recipe {parsed.recipe.code}, not {locked.code}.")
    record_update(
        locked,
        actor=actor,
        values={
            "name": parsed.recipe.name,
            "nominal_quantity": parsed.recipe.batch_size.quantity,
            "nominal_unit": parsed.recipe.batch_size.unit,
            "document": doc.canonical(parsed),
        },
        reason=reason,
    )


def recipe_update(*, actor: Actor, recipe: MasterRecipe, text: str, reason: str = "") -> MasterRecipe:
    """Replace a draft's procedure with the file's. Only drafts change; the code stays."""
    parsed = doc.parse(text)
    with transaction.atomic():
        locked = _lock_draft(recipe)
        _store_draft(locked, parsed, actor=actor, reason=reason)
    return locked


def recipe_revise(
    *,
    actor: Actor,
    recipe: MasterRecipe,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    seen: str | None = None,
    reason: str = "",
) -> MasterRecipe:
    """Apply one editor change (see :mod:`.editing`) to the stored draft, checked like a file.

    ``seen`` is the :func:`document_digest` the author's form was built from; if the
    draft changed since, the save is refused rather than silently undoing that change.
    Raises :class:`~.document.RecipeInvalid` (nothing written) when the result is not a valid recipe.
    """
    with transaction.atomic():
        locked = _lock_draft(recipe)
        if seen is not None and seen != document_digest(locked.document):
            raise _refuse(
                "CHANGED_MEANWHILE",
                "Someone saved this draft after you opened it: reload it and make your change again.",
            )
        _store_draft(locked, doc.validate(change(locked.document)), actor=actor, reason=reason)
    return locked


def recipe_new_version(*, actor: Actor, recipe: MasterRecipe, reason: str = "") -> MasterRecipe:
    """A new draft that starts as a copy of ``recipe`` (a change to an effective recipe is a new version).

    ``reason`` is the reason for the change, stored on the new version and in its creation
    entry; a new version of the effective one is refused without it (A11-13): approvers
    compare against it.
    """
    reason = reason.strip()
    with transaction.atomic():
        recipe = MasterRecipe.objects.get(pk=recipe.pk)  # copy what is stored, not a caller's stale object
        if recipe.status == RecipeStatus.EFFECTIVE and not reason:
            raise ReasonRequired(
                f"Say why {recipe.code} version {recipe.version} changes: the reason for change is kept "
                "with the new version and shown wherever it is compared."
            )
        last = _lock_versions(recipe.code)
        copy = MasterRecipe(
            product_id=recipe.product_id,
            code=recipe.code,
            version=last + 1,
            name=recipe.name,
            status=RecipeStatus.DRAFT,
            nominal_quantity=recipe.nominal_quantity,
            nominal_unit=recipe.nominal_unit,
            document=recipe.document,
            author_id=_person(actor),
            created_at=timezone.now(),
            change_reason=reason,
        )
        return _insert_version(
            copy, actor=actor, reason=reason or f"new version from version {recipe.version}"
        )


def recipe_transition(
    *,
    actor: Actor,
    recipe: MasterRecipe,
    command: str,
    signer: VerifiedSigner | None,
    reason: str = "",
) -> MasterRecipe:
    """Move a recipe version through its life-cycle under the signer's e-signature.

    Locks the version (and, to make one effective, the current effective one).
    The author never approves their own recipe.
    """
    with transaction.atomic():
        locked = MasterRecipe.objects.select_for_update().get(pk=recipe.pk)
        verdict = states.check(states.RECIPE, command, locked.status, what="recipe")
        if not verdict.allowed:
            raise RecipeRefused(verdict)
        t = states.RECIPE[command]
        if t.meaning is None:
            raise _refuse("NOT_BY_HAND", f"'{command}' happens by itself; it is not a user action.")
        if signer is None or signer.user.pk != actor.id:
            raise _refuse("SIGNATURE_REQUIRED", f"'{command}' needs your e-signature.")
        permission = COMMAND_PERMISSION[command]
        if not signer.user.has_perm(permission):
            raise _refuse(
                "NOT_AUTHORISED", f"Your roles do not allow you to {command.replace('_', ' ')} a recipe."
            )
        if t.reason_required and not reason.strip():
            raise ReasonRequired(f"Give a reason to {command.replace('_', ' ')} a recipe.")
        if command in ("approve", "make_effective") and signer.user.pk in writers_of(locked):
            raise _refuse(
                "AUTHOR_APPROVES",
                "You wrote or edited this recipe version: a different person must approve it.",
            )
        values: dict[str, Any] = {"status": t.target}
        if command == "make_effective":
            values["effective_at"] = timezone.now()
            current = (
                MasterRecipe.objects.select_for_update()
                .filter(code=locked.code, status=RecipeStatus.EFFECTIVE)
                .exclude(pk=locked.pk)
                .first()
            )
            if current is not None:
                record_update(
                    current,
                    actor=actor,
                    values={"status": RecipeStatus.SUPERSEDED},
                    action="supersede",
                    reason=f"superseded by version {locked.version}",
                )
        try:
            with transaction.atomic():  # a savepoint: a lost race ends in a refusal, not a server error
                record_update(locked, actor=actor, values=values, action=command, reason=reason)
        except IntegrityError as exc:
            raise _refuse(
                "CONCURRENT_CHANGE", "Another version became effective at the same moment; try again."
            ) from exc
        signature_apply(
            signer=signer,
            meaning=t.meaning,
            record=locked,
            content=locked.signed_content(),
            actor=actor,
            comment=reason,
        )
        if command == "make_effective":
            # Orders from the ERP may be waiting for the product's effective recipe (erp/inbound.py).
            arrivals.announce(f"recipe:{locked.product.code}")
    return locked
