"""Master recipe versions and their signed life-cycle (MBR-01), on a real database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchline.audit.services import Actor, ReasonRequired
from batchline.recipes import document as doc
from batchline.recipes import services
from batchline.recipes.models import MasterRecipe, Product
from batchline.signatures.models import Signature
from batchline.signatures.services import signature_intact, signer_authenticate
from tests.conftest import PASSWORD, entries, make_user
from tests.signatures.test_signing import station

pytestmark = pytest.mark.django_db
SMALL = (Path(__file__).parent / "small.yaml").read_text()


@pytest.fixture
def people(db):
    return {
        "author": make_user("author", ["recipe_author"]),
        "author2": make_user("author2", ["recipe_author", "qa_approver"]),
        "approver": make_user("approver", ["qa_approver"]),
        "operator": make_user("operator", ["operator"]),
    }


def act(user, recipe, command, meaning, reason=""):
    signer = signer_authenticate(
        request=station(user), username=user.username, password=PASSWORD, meaning=meaning
    )
    return services.recipe_transition(
        actor=Actor.of(user, via="web"), recipe=recipe, command=command, signer=signer, reason=reason
    )


def imported(people) -> MasterRecipe:
    return services.recipe_import(actor=Actor.of(people["author"], via="web"), text=SMALL)


@pytest.mark.req("MBR-01", "P11-05")
def test_an_import_creates_a_draft_version_with_its_product_all_audited(people) -> None:
    recipe = imported(people)
    assert (recipe.code, recipe.version, recipe.status) == ("TST-1", 1, "draft")
    assert Product.objects.get().code == "TST"
    assert recipe.document == doc.canonical(doc.parse(SMALL))
    assert [e.action for e in entries(record_type="recipes.masterrecipe")] == ["create"]
    again = imported(people)
    assert again.version == 2


@pytest.mark.req("A11-05")
def test_a_bad_file_imports_nothing(people) -> None:
    before = (MasterRecipe.objects.count(), Product.objects.count(), len(entries()))
    with pytest.raises(doc.RecipeInvalid):
        services.recipe_import(
            actor=Actor.of(people["author"], via="web"), text=SMALL.replace("mean(w1, w2)", "w9")
        )
    assert (MasterRecipe.objects.count(), Product.objects.count(), len(entries())) == before


@pytest.mark.req("MBR-01", "P11-13", "P11-14")
def test_the_life_cycle_is_signed_at_every_step(people) -> None:
    recipe = imported(people)
    act(people["author"], recipe, "submit", "performed")
    act(people["approver"], recipe, "approve", "approved")
    recipe = act(people["approver"], recipe, "make_effective", "approved")
    assert recipe.status == "effective" and recipe.effective_at is not None
    sigs = Signature.objects.filter(record_type="recipes.masterrecipe", record_id=str(recipe.pk)).order_by(
        "id"
    )
    assert [(s.signer_username, s.meaning) for s in sigs] == [
        ("author", "performed"),
        ("approver", "approved"),
        ("approver", "approved"),
    ]
    assert all(signature_intact(s, recipe.signed_content()) for s in sigs)


@pytest.mark.req("MBR-01", "P11-07")
def test_the_author_never_approves_their_own_version(people) -> None:
    recipe = services.recipe_import(actor=Actor.of(people["author2"], via="web"), text=SMALL)
    act(people["author2"], recipe, "submit", "performed")
    with pytest.raises(services.RecipeRefused) as refused:
        act(people["author2"], recipe, "approve", "approved")
    assert refused.value.verdict.codes == ["AUTHOR_APPROVES"]
    assert MasterRecipe.objects.get(pk=recipe.pk).status == "in_review"


def test_a_transition_needs_its_permission(people) -> None:
    recipe = imported(people)
    act(people["author"], recipe, "submit", "performed")
    with pytest.raises(services.RecipeRefused) as refused:
        act(people["author"], recipe, "approve", "performed")
    assert refused.value.verdict.codes == ["NOT_AUTHORISED"]


@pytest.mark.req("S88-05")
def test_an_illegal_transition_is_refused_in_words(people) -> None:
    recipe = imported(people)
    with pytest.raises(services.RecipeRefused) as refused:
        act(people["approver"], recipe, "make_effective", "approved")
    assert str(refused.value) == "The recipe is draft: 'make effective' is possible only when it is approved."


def test_returning_a_version_to_draft_needs_a_reason(people) -> None:
    recipe = imported(people)
    act(people["author"], recipe, "submit", "performed")
    with pytest.raises(ReasonRequired):
        act(people["approver"], recipe, "return", "reviewed")
    assert (
        act(people["approver"], recipe, "return", "reviewed", reason="limits of w1 unclear").status == "draft"
    )


@pytest.mark.req("MBR-01")
def test_only_a_draft_is_edited_and_an_effective_version_changes_by_a_new_version(people) -> None:
    author = Actor.of(people["author"], via="web")
    recipe = imported(people)
    edited = services.recipe_update(
        actor=author, recipe=recipe, text=SMALL.replace("Dry mix", "Dry mixing"), reason="wording"
    )
    assert edited.document["operations"][0]["steps"][1]["title"] == "Dry mixing"
    act(people["author"], recipe, "submit", "performed")
    act(people["approver"], recipe, "approve", "approved")
    act(people["approver"], recipe, "make_effective", "approved")
    with pytest.raises(services.RecipeRefused) as refused:
        services.recipe_update(actor=author, recipe=recipe, text=SMALL)
    assert refused.value.verdict.codes == ["NOT_A_DRAFT"]
    v2 = services.recipe_new_version(actor=author, recipe=recipe, reason="tighter weights")
    assert (v2.version, v2.status, v2.document) == (
        2,
        "draft",
        MasterRecipe.objects.get(pk=recipe.pk).document,
    )


@pytest.mark.req("MBR-01")
def test_a_new_effective_version_supersedes_the_old_one(people) -> None:
    v1 = imported(people)
    for r in (v1,):
        act(people["author"], r, "submit", "performed")
        act(people["approver"], r, "approve", "approved")
        act(people["approver"], r, "make_effective", "approved")
    v2 = services.recipe_new_version(actor=Actor.of(people["author"], via="web"), recipe=v1, reason="r")
    act(people["author"], v2, "submit", "performed")
    act(people["approver"], v2, "approve", "approved")
    act(people["approver"], v2, "make_effective", "approved")
    statuses = dict(MasterRecipe.objects.values_list("version", "status"))
    assert statuses == {1: "superseded", 2: "effective"}
    supersede = entries(record_type="recipes.masterrecipe", record_id=str(v1.pk))[-1]
    assert supersede.action == "supersede" and json.loads(supersede.changes)["status"] == [
        "effective",
        "superseded",
    ]


@pytest.mark.req("MBR-01", "A11-13", "P11-05")
def test_a_new_version_of_the_effective_one_says_why_and_keeps_the_reason(people) -> None:
    author = Actor.of(people["author"], via="web")
    v1 = imported(people)
    act(people["author"], v1, "submit", "performed")
    act(people["approver"], v1, "approve", "approved")
    act(people["approver"], v1, "make_effective", "approved")
    before = (MasterRecipe.objects.count(), len(entries()))
    with pytest.raises(ReasonRequired) as refused:
        services.recipe_new_version(actor=author, recipe=v1, reason="   ")
    assert "Say why TST-1 version 1 changes" in str(refused.value)
    assert (MasterRecipe.objects.count(), len(entries())) == before

    v2 = services.recipe_new_version(actor=author, recipe=v1, reason=" Hardness limit per CC-2026-014 ")
    assert MasterRecipe.objects.get(pk=v2.pk).change_reason == "Hardness limit per CC-2026-014"
    (created,) = entries(record_type="recipes.masterrecipe", record_id=str(v2.pk))
    assert created.reason == "Hardness limit per CC-2026-014"
    assert json.loads(created.changes)["change_reason"] == [None, "Hardness limit per CC-2026-014"]
    # A copy of a draft changes nothing approved: no reason is asked, and none is made up.
    v3 = services.recipe_new_version(actor=author, recipe=v2)
    assert v3.change_reason == ""
