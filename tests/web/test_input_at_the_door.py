"""Input no record should hold is refused at the door, in words, and nothing is written (A11-05, DI-05).

Control characters in what a person types (a terminal escape, a bell: invisible
on the screen, yet recorded and exported), text that is no text, a field of
100,000 characters, a JSON NaN: each is a 400 with words, on the pages and the
API alike. A scan field keeps the GS1 group separator a GS1 DataMatrix carries.
"""

from __future__ import annotations

import json

import pytest

from batchline.audit.models import AuditEntry
from batchline.execution.models import Batch, BatchException, StepValue
from batchline.labels.gs1 import GS
from tests.api.test_api import token_for
from tests.conftest import PASSWORD
from tests.execution.test_engine import make_plant, new_batch, run_to_weights

pytestmark = pytest.mark.django_db


def post_json(client, token: str, path: str, body: object, raw: str | None = None):
    return client.post(
        f"/api/v1{path}",
        raw if raw is not None else json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


@pytest.fixture
def running(db):
    people, recipe = make_plant()
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    return people, batch


@pytest.mark.req("A11-05", "DI-05")
@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("600\x1b[31m", "contains the control character U+001B"),
        ("6\x07", "contains the control character U+0007"),
        ("600" + GS, "contains the control character U+001D"),  # a GS outside a scan field
        ("6\x85", "contains the control character U+0085"),
        ("6" * 100_000, "is 100,000 characters long: at most 20,000 are accepted"),
    ],
    ids=["escape", "bell", "group-separator", "c1-control", "100000-characters"],
)
def test_a_typed_value_that_is_no_text_is_refused_at_the_door_on_the_page_and_the_api(
    running, login, client, typed: str, words: str
) -> None:
    people, batch = running
    before = (AuditEntry.objects.count(), BatchException.objects.count())
    page = login(people["operator"]).post(
        f"/batches/{batch.number}/steps/weights/complete/", {"value_w1": typed, "value_w2": "600"}
    )
    assert page.status_code == 400 and words in page.content.decode()
    assert "Nothing was changed." in page.content.decode()
    token = token_for(people["operator"])
    before = (AuditEntry.objects.count(), BatchException.objects.count())
    api = post_json(
        client, token, f"/batches/{batch.number}/steps/weights/complete", {"values": {"w1": typed}}
    )
    assert api.status_code == 400, api.content
    assert api.json()["code"] == "UNREADABLE_INPUT" and words in api.json()["detail"]
    assert "values.w1" in api.json()["detail"]
    assert (AuditEntry.objects.count(), BatchException.objects.count()) == before
    assert not StepValue.objects.exists()


@pytest.mark.req("A11-05")
def test_text_with_lines_and_tabs_is_text(running, login) -> None:
    people, batch = running
    sup = login(people["supervisor"])
    response = sup.post(
        f"/batches/{batch.number}/command/hold/",
        {"reason": "line 1\n\tline 2\r\n", "signer_password": "wrong"},
    )
    assert response.status_code == 422  # past the door: the signature is what is refused
    assert "password" in response.content.decode()


@pytest.mark.req("A11-05", "WD-05")
def test_a_scan_field_keeps_the_gs1_group_separator_and_refuses_other_control_characters(
    running, login, client
) -> None:
    people, batch = running
    op = login(people["operator"])
    scanned = "]d201095011015300031727013110L-0042" + GS + "21C-000999"
    # Past the door: the scanner's GS reaches the scan parser, which reads the label and answers in words.
    response = op.post(f"/batches/{batch.number}/scan/", {"code": scanned, "step": "weights"})
    assert response.status_code == 422 and "control character" not in response.content.decode()
    refused = op.post(f"/batches/{batch.number}/scan/", {"code": "C-000001\x1b", "step": "weights"})
    assert refused.status_code == 400 and "U+001B" in refused.content.decode()
    token = token_for(people["operator"])
    api = post_json(client, token, f"/batches/{batch.number}/steps/weights/scan", {"scan": scanned})
    assert api.status_code == 409 and api.json()["code"] != "UNREADABLE_INPUT"
    api = post_json(client, token, f"/batches/{batch.number}/steps/weights/scan", {"scan": "C-1\x07"})
    assert api.status_code == 400 and api.json()["code"] == "UNREADABLE_INPUT"


@pytest.mark.req("A11-05", "DI-05")
@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ('{"values": {"w1": NaN}}', "NaN is not a number in JSON"),
        ('{"values": {"w1": -Infinity}}', "-Infinity is not a number in JSON"),
        ('{"values": {"w1": "\\ud800"}}', "contains characters that are not text"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
    ids=["nan", "infinity", "lone-surrogate", "deep"],
)
def test_json_that_is_no_json_or_no_text_is_refused_in_words(running, client, raw: str, words: str) -> None:
    people, batch = running
    token = token_for(people["operator"])
    before = AuditEntry.objects.count()
    response = post_json(client, token, f"/batches/{batch.number}/steps/weights/complete", None, raw=raw)
    assert response.status_code == 400 and words in response.json()["detail"]
    assert AuditEntry.objects.count() == before and not StepValue.objects.exists()


@pytest.mark.req("A11-05")
@pytest.mark.parametrize("field", ["number", "planned_quantity"])
def test_a_100000_character_batch_number_or_quantity_is_refused_at_the_door(
    running, login, field: str
) -> None:
    people, _batch = running
    form = {"recipe": "1", "number": "B-9", "planned_quantity": "1000"} | {field: "9" * 100_000}
    response = login(people["supervisor"]).post("/batches/new/", form)
    assert response.status_code == 400 and "is 100,000 characters long" in response.content.decode()
    assert Batch.objects.count() == 1


@pytest.mark.req("A11-05", "P11-13")
def test_a_signing_comment_longer_than_a_signature_keeps_is_refused_not_cut_short(running, login) -> None:
    people, batch = running
    supervisor = login(people["supervisor"])
    before = AuditEntry.objects.count()
    response = supervisor.post(
        f"/batches/{batch.number}/command/hold/",
        {"reason": "check", "signer_password": PASSWORD, "signer_comment": "c" * 2001},
    )
    assert response.status_code == 422
    assert (
        "The comment is 2,001 characters long: at most 2,000. Nothing was signed."
        in response.content.decode()
    )
    assert AuditEntry.objects.count() == before
    batch.refresh_from_db()
    assert batch.state == "running"


@pytest.mark.req("A11-05")
def test_a_field_name_that_is_no_text_is_named_back_as_replacement_characters(client) -> None:
    response = client.post(
        "/batches/new/", '{"\\ud800\\u0007": "x"}', content_type="application/json"
    )  # a page posted JSON: the door answers in plain text, which cannot carry a lone surrogate
    assert response.status_code == 400 and "“\ufffd\ufffd”" in response.content.decode()
