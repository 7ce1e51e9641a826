"""The signing dialog's optional comment is kept with the signature and in the trail (issue 11).

It was thrown away on completion, verification and recipe submission.
"""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from batchline.audit.models import AuditEntry
from batchline.recipes import services as recipes
from batchline.signatures.models import Signature
from batchline.signatures.services import signer_authenticate
from tests.conftest import PASSWORD
from tests.execution.test_engine import A, complete, make_plant, new_batch, start
from tests.recipes.test_recipe_services import SMALL
from tests.signatures.test_signing import station

pytestmark = pytest.mark.django_db


def dialog(user, meaning: str, comment: str):
    """What a signing dialog posts: password and the optional comment."""
    request = station(user)
    request.POST = RequestFactory().post("/", {"signer_password": PASSWORD, "signer_comment": comment}).POST
    return signer_authenticate(request=request, username=user.username, password=PASSWORD, meaning=meaning)


@pytest.mark.req("P11-13", "P11-05")
def test_the_comment_typed_in_the_signing_dialog_is_kept_on_completion_and_in_the_trail() -> None:
    people, recipe = make_plant()
    batch = new_batch(people, recipe)
    start(people, batch, "clearance")
    complete(
        people,
        batch,
        "clearance",
        checklist=[True, True],
        signer=dialog(people["operator"], "performed", "  line cleared after the night shift  "),
    )
    signature = Signature.objects.filter(record_type="execution.batchstep", meaning="performed").latest("pk")
    assert signature.comment == "line cleared after the night shift"
    entry = AuditEntry.objects.filter(
        action="sign", record_type="signatures.signature", record_id=str(signature.pk)
    ).get()
    assert entry.reason == "line cleared after the night shift"


@pytest.mark.req("P11-13")
def test_the_comment_is_kept_on_a_recipe_submission(client) -> None:
    people, _ = make_plant()
    draft = recipes.recipe_import(actor=A(people["author"]), text=SMALL.replace("code: ", "code: X", 1))
    recipes.recipe_transition(
        actor=A(people["author"]),
        recipe=draft,
        command="submit",
        signer=dialog(people["author"], "performed", "ready for QA: new hardness limits"),
    )
    signature = Signature.objects.filter(record_type="recipes.masterrecipe", record_id=str(draft.pk)).get()
    assert signature.comment == "ready for QA: new hardness limits"
