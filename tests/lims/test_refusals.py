"""One effect per result, and a clear refusal that writes nothing for a result that cannot be taken."""

from __future__ import annotations

import pytest
from django.test import Client

from batchline.audit.models import AuditEntry
from batchline.execution.models import BatchException, StepValue
from batchline.lims.models import LabResult
from tests.lims.plant import blend_samples, make_lims_plant, new_batch, post_json, result

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(db):
    return make_lims_plant()


def last_entry() -> int:
    return AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.mark.req("A11-07", "IPC-01", "DEV-01")
def test_the_same_result_posted_twice_has_one_effect(plant) -> None:
    people, recipe, _lot = plant
    batch = new_batch(people, recipe)
    top, _bottom = blend_samples(people, batch)
    first = post_json(people["lims"], result(top, "93.0"))
    mark = last_entry()
    again = post_json(people["lims"], result(top, "93.0"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True and again.json()["exception"] == first.json()["exception"]
    assert last_entry() == mark  # nothing written the second time
    assert LabResult.objects.count() == 1 and StepValue.objects.filter(sample=top).count() == 1
    assert BatchException.objects.filter(code="LAB_OUT_OF_SPECIFICATION").count() == 1
    batch.refresh_from_db()
    assert batch.blocking_exceptions == 1
    # Other content under a known ID is refused: a retest is a new result with its own ID.
    changed = post_json(people["lims"], result(top, "98.0"))
    assert changed.status_code == 422 and [r["code"] for r in changed.json()["reasons"]] == [
        "RESULT_ID_REUSED"
    ]
    assert "A changed or repeated result is sent under a new ID" in changed.json()["detail"]
    assert last_entry() == mark


REFUSALS = [
    # (what the LIMS sends, the refusal's code, words it must say)
    (
        {"sample": "LB-999-S01"},
        "UNKNOWN_SAMPLE",
        "names sample 'LB-999-S01', which Batchline does not know",
    ),
    ({"unit": "zorkmid"}, "UNKNOWN_UNIT", "is not a unit Batchline knows; send it in %"),
    (
        {"unit": "mg"},
        "UNIT_NOT_CONVERTIBLE",
        "is in mg, which cannot be converted to %, the unit of the limits",
    ),
    (
        {"test": "Dissolution"},
        "WRONG_TEST",
        "is for “Dissolution”, but sample LB-001-S01 was taken for “Blend assay”",
    ),
    ({"value": "about 99"}, "NOT_A_NUMBER", "'about 99' is not a number Batchline can record"),
    ({"value": "99,5"}, "NOT_A_NUMBER", "with a point as its decimal sign"),
    ({"value": "1e30"}, "NOT_A_NUMBER", "at most 19 digits before the point and 9 after"),
    ({"value": "0.0000000001"}, "NOT_A_NUMBER", "at most 19 digits before the point and 9 after"),
    ({"tested_at": "2026-12-07T09:30:00"}, "NO_TIME_ZONE", "gives no time zone"),
]


@pytest.mark.req("A11-07", "A11-05", "IPC-01")
@pytest.mark.parametrize(
    ("change", "code", "words"), REFUSALS, ids=[r[1] + str(i) for i, r in enumerate(REFUSALS)]
)
def test_a_result_that_cannot_be_taken_is_refused_in_words_and_writes_nothing(
    plant, change, code, words
) -> None:
    people, recipe, _lot = plant
    batch = new_batch(people, recipe)
    top, _bottom = blend_samples(people, batch)
    mark = last_entry()
    response = post_json(people["lims"], {**result(top, "99.1"), **change})
    assert response.status_code == 422, response.json()
    assert [r["code"] for r in response.json()["reasons"]] == [code]
    assert words in response.json()["detail"]
    assert last_entry() == mark
    assert not LabResult.objects.exists() and not StepValue.objects.filter(source="laboratory").exists()


@pytest.mark.req("P11-07", "S95-04", "P11-04")
def test_only_the_lims_interface_posts_results(plant) -> None:
    people, recipe, _lot = plant
    batch = new_batch(people, recipe)
    top, _bottom = blend_samples(people, batch)
    mark = last_entry()
    for who in ("operator", "approver", "engineer"):
        response = post_json(people[who], result(top, "99.1"))
        assert response.status_code == 403 and "lims.post_result" in response.json()["detail"]
    anonymous = Client().post(
        "/api/v1/lims/results", data=result(top, "99.1"), content_type="application/json"
    )
    assert anonymous.status_code == 401
    # A read-only token of the interface user does not post either.
    from batchline.accounts import services
    from batchline.audit.services import Actor

    _, raw = services.token_create(actor=Actor.of(people["lims"], via="web"), user=people["lims"], name="ro")
    read_only = Client().post(
        "/api/v1/lims/results",
        data=result(top, "99.1"),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert read_only.status_code == 403
    assert not LabResult.objects.exists()
    assert not AuditEntry.objects.filter(id__gt=mark, record_type="lims.labresult").exists()
