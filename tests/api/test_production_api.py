"""Recipes, batches and steps through the API: the same services, gates, signatures and audit."""

from __future__ import annotations

import pytest

from batchline.audit.models import AuditEntry
from batchline.execution.models import StepValue
from batchline.recipes.models import MasterRecipe
from tests.api.test_api import api
from tests.conftest import PASSWORD, make_user
from tests.recipes.test_recipe_services import SMALL

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    return {
        n: make_user(n, r)
        for n, r in (
            ("author", ["recipe_author"]),
            ("approver", ["qa_approver"]),
            ("supervisor", ["supervisor"]),
            ("operator", ["operator"]),
        )
    }


def sig(user: str) -> dict:
    return {"username": user, "password": PASSWORD}


def effective_recipe(people) -> int:
    created = api(people["author"], "post", "/recipes/import", {"text": SMALL})
    assert created.status_code == 201, created.content
    rid = created.json()["id"]
    for who, command in (("author", "submit"), ("approver", "approve"), ("approver", "make_effective")):
        r = api(
            people[who], "post", f"/recipes/{rid}/transition", {"command": command, "signature": sig(who)}
        )
        assert r.status_code == 200, r.content
    return rid


@pytest.mark.req("NFR-05", "A11-05")
def test_a_bad_recipe_file_through_the_api_names_its_lines_and_imports_nothing(people) -> None:
    before = AuditEntry.objects.count()
    r = api(
        people["author"],
        "post",
        "/recipes/import",
        {"text": SMALL.replace("unit: mg", "unit: furlong-ish", 1)},
    )
    assert r.status_code == 422
    (problem,) = r.json()["problems"]
    assert problem["line"] == 28 and "unknown unit" in problem["message"]
    assert not MasterRecipe.objects.exists()
    assert AuditEntry.objects.count() == before + 1  # the API token's creation


@pytest.mark.req("NFR-05", "MBR-01", "MBR-02")
def test_recipe_life_cycle_export_and_comparison_over_the_api(people) -> None:
    rid = effective_recipe(people)
    assert api(people["operator"], "get", f"/recipes/{rid}").status_code == 403
    exported = api(people["approver"], "get", f"/recipes/{rid}/export")
    assert exported.status_code == 200 and "code: TST-1" in exported.content.decode()
    refused = api(people["author"], "post", f"/recipes/{rid}/new-version", {"reason": ""})
    assert refused.status_code == 422 and "Say why TST-1 version 1 changes" in refused.json()["detail"]
    v2 = api(people["author"], "post", f"/recipes/{rid}/new-version", {"reason": "tighter weight"}).json()[
        "id"
    ]
    from batchline.audit.services import Actor
    from batchline.recipes import services as recipes

    recipes.recipe_update(
        actor=Actor.of(people["author"], via="api"),
        recipe=MasterRecipe.objects.get(pk=v2),
        text=SMALL.replace(
            "high: 630}, critical: true}\n          - {name: w2",
            "high: 625}, critical: true}\n          - {name: w2",
        ),
    )
    diff = api(people["approver"], "get", f"/recipes/{rid}/compare/{v2}").json()
    assert diff == [
        {
            "path": "operations[press].steps[weights].inputs[w1].specification.high",
            "kind": "changed",
            "old": "630",
            "new": "625",
            "tier": 1,
            "words": "Step 'Tablet weights' (weights): Weight 1 upper specification limit changed "
            "from 630 mg to 625 mg",
        }
    ]
    review = api(people["approver"], "get", f"/recipes/{rid}/compare/{v2}/review").json()
    assert review["reason_for_change"] == "tighter weight"
    assert review["lines"] == [{"tier": 1, "words": diff[0]["words"]}]
    assert review["affects"] == {
        "older_version": 1,
        "open_batches": [],
        "other_versions": [],
        "lots_in_stock": [],
    }
    assert review["changes"] == diff
    refused = api(
        people["approver"],
        "post",
        f"/recipes/{v2}/transition",
        {"command": "make_effective", "signature": sig("approver")},
    )
    assert refused.status_code == 409 and refused.json()["code"] == "ILLEGAL_TRANSITION", refused.content


@pytest.mark.req("NFR-05", "P11-06", "IPC-01", "DV-01", "DI-05")
def test_a_batch_runs_over_the_api(people) -> None:
    rid = effective_recipe(people)
    sup, op = people["supervisor"], people["operator"]
    created = api(sup, "post", "/batches", {"recipe_id": rid, "number": "API-1", "planned_quantity": "1000"})
    assert created.status_code == 201 and created.json()["state"] == "created"
    assert (
        api(
            sup, "post", "/batches/API-1/command", {"command": "release", "signature": sig("supervisor")}
        ).json()["state"]
        == "released"
    )

    out_of_order = api(op, "post", "/batches/API-1/steps/weights/start")
    assert out_of_order.status_code == 409
    assert (
        out_of_order.json()["reasons"][0]["message"]
        == "Step “Tablet weights” cannot start before “Dry mix” is complete."
    )

    assert api(op, "post", "/batches/API-1/steps/clearance/start").status_code == 200
    unsigned = api(op, "post", "/batches/API-1/steps/clearance/complete", {"checklist": [True, True]})
    assert unsigned.status_code == 409 and unsigned.json()["code"] == "SIGNATURE_REQUIRED"
    signed = api(
        op,
        "post",
        "/batches/API-1/steps/clearance/complete",
        {"checklist": [True, True], "signature": sig("operator")},
    )
    assert signed.json()["state"] == "done"

    import datetime as dt

    from django.db import transaction
    from django.utils import timezone

    from batchline.audit.services import Actor, record_update
    from batchline.execution.models import BatchStep

    api(op, "post", "/batches/API-1/steps/mix/start")
    with transaction.atomic():
        step = BatchStep.objects.get(batch__number="API-1", key="mix")
        record_update(
            step,
            actor=Actor(None, "test-clock", "Test clock", "system"),
            values={"started_at": timezone.now() - dt.timedelta(minutes=5)},
        )
    assert api(op, "post", "/batches/API-1/steps/mix/complete", {}).json()["state"] == "done"
    api(op, "post", "/batches/API-1/steps/weights/start")
    implausible = api(
        op, "post", "/batches/API-1/steps/weights/complete", {"values": {"w1": "6000", "w2": "600"}}
    )
    assert implausible.status_code == 409 and implausible.json()["code"] == "VALUE_IMPLAUSIBLE"
    assert not StepValue.objects.exists()
    asked = api(op, "post", "/batches/API-1/steps/weights/complete", {"values": {"w1": "640", "w2": "600"}})
    assert asked.status_code == 409 and asked.json()["code"] == "CONFIRM_OUT_OF_SPECIFICATION"
    assert "570–630 mg" in asked.json()["reasons"][0]["message"] and not StepValue.objects.exists()
    confirmed = {"values": {"w1": "640", "w2": "600"}, "confirm_out_of_specification": True}
    assert api(op, "post", "/batches/API-1/steps/weights/complete", confirmed).status_code == 200
    corrected = api(
        op,
        "post",
        "/batches/API-1/steps/weights/correct",
        {"name": "w1", "text": "600", "reason": "misread", "signature": sig("operator")},
    )
    assert corrected.status_code == 200
    # w1 is critical: its out-of-specification value stopped the batch until QA dispositions it.
    blocked = api(op, "post", "/batches/API-1/steps/mean/start")
    assert blocked.status_code == 409 and blocked.json()["code"] == "EXCEPTION_BLOCKS"
    review = api(people["approver"], "get", "/quality/batches/API-1/review").json()
    open_ids = [e["id"] for e in review["exceptions"] if e["disposition"] is None]
    assert {e["code"] for e in review["exceptions"]} >= {"CRITICAL_OUT_OF_SPECIFICATION", "CORRECTION"}
    accepted = api(
        people["approver"],
        "post",
        "/quality/exceptions/disposition",
        {
            "exceptions": open_ids,
            "decision": "accepted",
            "comment": "Misread scale, corrected with reason; true weight within specification.",
            "signature": sig("approver"),
        },
    )
    assert accepted.status_code == 200, accepted.json()
    api(op, "post", "/batches/API-1/steps/mean/start")
    api(op, "post", "/batches/API-1/steps/mean/complete", {})
    assert (
        api(op, "post", "/batches/API-1/steps/mean/verify", {"signature": sig("operator")}).status_code == 403
    )
    assert (
        api(sup, "post", "/batches/API-1/steps/mean/verify", {"signature": sig("supervisor")}).json()["state"]
        == "done"
    )

    record = api(people["approver"], "get", "/batches/API-1/record").json()
    assert record["state"] == "complete"
    weights = next(s for s in record["steps"] if s["key"] == "weights")
    w1 = [v for v in weights["values"] if v["name"] == "w1"]
    assert [v["text"] for v in w1] == ["640", "600"] and w1[1]["corrects"] == w1[0]["id"]
    assert {e["code"] for e in record["exceptions"]} >= {
        "CRITICAL_OUT_OF_SPECIFICATION",
        "CORRECTION",
        "REFUSED_PREDECESSOR_OPEN",
    }
    mean = next(s for s in record["steps"] if s["key"] == "mean")
    assert [s["meaning"] for s in mean["signatures"]] == ["verified"]
    # Each signature with its status (P11-14): the verification holds what the mean then was.
    assert mean["signatures"][0]["status"]["state"] == "valid"
    assert all(x["status"]["state"] in ("valid", "superseded") for x in record["signatures"])
