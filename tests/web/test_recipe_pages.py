"""Recipe pages: import with line-numbered problems, preview, edit a draft, signed life-cycle, compare."""

from __future__ import annotations

import html

import pytest

from batchline.recipes.models import MasterRecipe
from tests.conftest import PASSWORD, make_user
from tests.recipes.test_recipe_services import SMALL

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    return {
        n: make_user(n, r)
        for n, r in (("author", ["recipe_author"]), ("approver", ["qa_approver"]), ("auditor", ["auditor"]))
    }


def signed(data: dict, user: str) -> dict:
    return {**data, "signer_username": user, "signer_password": PASSWORD}


@pytest.mark.req("MBR-01", "A11-05")
def test_an_author_imports_edits_and_submits_and_qa_approves_through_the_pages(people, login) -> None:
    author = login(people["author"])
    bad = author.post("/recipes/import/", {"text": SMALL.replace("mean(w1, w2)", "mean(w1, w7)")})
    text = html.unescape(bad.content.decode())
    assert bad.status_code == 422 and "line 34" in text and "'w7', which no step records" in text
    assert not MasterRecipe.objects.exists()
    response = author.post("/recipes/import/", {"text": SMALL})
    recipe = MasterRecipe.objects.get()
    assert response.url == f"/recipes/{recipe.pk}/"
    page = author.get(response.url).content.decode()
    assert (
        "Preview, as the operator sees it" in page
        and "Tablet weights" in page
        and "Submit for review…" in page
    )

    edit = author.get(f"/recipes/{recipe.pk}/edit/").content.decode()
    assert "code: TST-1" in edit
    assert (
        author.post(
            f"/recipes/{recipe.pk}/edit/", {"text": SMALL.replace("kind: timer", "kind: nap"), "reason": "x"}
        ).status_code
        == 422
    )
    assert (
        author.post(
            f"/recipes/{recipe.pk}/edit/",
            {"text": SMALL.replace("Dry mix", "Dry blend"), "reason": "wording"},
        ).status_code
        == 302
    )

    assert author.post(f"/recipes/{recipe.pk}/submit/", signed({}, "author")).status_code == 302
    approver = login(people["approver"])
    refused = approver.post(f"/recipes/{recipe.pk}/make_effective/", signed({}, "approver"))
    assert refused.status_code == 422 and "possible only when it is approved" in html.unescape(
        refused.content.decode()
    )
    assert approver.post(f"/recipes/{recipe.pk}/approve/", signed({}, "approver")).status_code == 302
    assert (
        approver.post(f"/recipes/{recipe.pk}/make_effective/", {"signer_password": PASSWORD}).status_code
        == 302
    )
    recipe.refresh_from_db()
    assert recipe.status == "effective"
    page = approver.get(f"/recipes/{recipe.pk}/").content.decode()
    assert page.count("binding intact") == 3

    refused = author.post(f"/recipes/{recipe.pk}/new-version/", {"reason": " "})
    assert refused.status_code == 422 and "Say why TST-1 version 1 changes" in refused.content.decode()
    assert not MasterRecipe.objects.filter(version=2).exists()
    v2 = author.post(f"/recipes/{recipe.pk}/new-version/", {"reason": "Clearance includes cleaning"})
    new = MasterRecipe.objects.get(version=2)
    author.post(
        f"/recipes/{new.pk}/edit/",
        {
            "text": SMALL.replace("Line clearance", "Line clearance and cleaning check").replace(
                "high: 630}, critical: true}\n          - {name: w2",
                "high: 625}, critical: true}\n          - {name: w2",
            )
        },
    )
    assert f"/recipes/{recipe.pk}/compare/{new.pk}/" in author.get(f"/recipes/{new.pk}/").content.decode()
    diff = html.unescape(author.get(f"/recipes/{recipe.pk}/compare/{new.pk}/").content.decode())
    assert "operations[prep].steps[clearance].title" in diff and "Line clearance and cleaning check" in diff
    assert "Reason for change:</strong> Clearance includes cleaning" in diff
    limit = (
        "Step 'Tablet weights' (weights): Weight 1 upper specification limit changed from 630 mg to 625 mg"
    )
    title = "Step 'Line clearance and cleaning check' (clearance): title changed from 'Line clearance'"
    assert limit in diff and title in diff and diff.index(limit) < diff.index(title)
    assert "No open batch runs version 1." in diff and "No material's charge changed." in diff
    assert v2.status_code == 302


@pytest.mark.req("P11-07")
def test_an_auditor_reads_recipes_and_changes_nothing(people, login) -> None:
    from batchline.audit.services import Actor
    from batchline.recipes import services

    recipe = services.recipe_import(actor=Actor.of(people["author"], via="web"), text=SMALL)
    auditor = login(people["auditor"])
    assert auditor.get("/recipes/").status_code == 200
    assert auditor.get(f"/recipes/{recipe.pk}/").status_code == 200
    for url, data in [
        ("/recipes/import/", {"text": SMALL}),
        (f"/recipes/{recipe.pk}/edit/", {"text": SMALL}),
        (f"/recipes/{recipe.pk}/new-version/", {}),
        *[
            (f"/recipes/{recipe.pk}/{c}/", signed({"reason": "r"}, "auditor"))
            for c in ("submit", "return", "approve", "make_effective", "retire")
        ],
    ]:
        assert auditor.post(url, data).status_code == 403, url
    assert MasterRecipe.objects.count() == 1
