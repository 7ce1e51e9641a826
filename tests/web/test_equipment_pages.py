"""Equipment and training pages and their API through Django's test client."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.audit.services import record_create
from batchline.equipment import services as svc
from batchline.equipment.models import Equipment, LogbookEntry
from batchline.signatures.models import Signature
from batchline.training.models import Qualification, TrainingRecord
from tests.api.test_api import token_for
from tests.conftest import PASSWORD, SETUP, make_user
from tests.equipment.test_equipment_services import A, claim, make_equipment_plant, unit, wind

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(db):
    p = make_equipment_plant()
    p["people"]["qa"] = make_user("qa_reviewer", ["qa_reviewer"])
    return p


def logged_in(user) -> Client:
    c = Client()
    assert c.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    return c


@pytest.mark.req("EQ-01", "EQ-02", "EQ-04")
def test_the_board_shows_each_unit_with_its_effective_status_and_due_dates(plant) -> None:
    claim(plant, code="PRESS-01", batch="B-7")
    wind("GRAN-01", cleaned_at=timezone.now() - dt.timedelta(hours=73))
    wind("SCALE-01", calibration_due_at=timezone.now() - dt.timedelta(hours=1))
    page = logged_in(plant["people"]["operator"]).get("/equipment/").content.decode()
    assert 'data-code="GRAN-01" data-status="clean_hold_expired"' in page
    assert "clean hold ended" in page
    assert 'data-code="PRESS-01" data-status="in_use"' in page and "batch B-7" in page
    assert "calibration overdue since" in page and "check due today" in page


def test_the_board_refreshes_itself_as_a_partial(plant) -> None:
    response = logged_in(plant["people"]["operator"]).get("/equipment/", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith("<div") and 'hx-trigger="every 60s"' in body and "<html" not in body


@pytest.mark.req("LOG-01", "LOG-02")
def test_an_operator_records_a_cleaning_on_the_units_page(plant) -> None:
    c = logged_in(plant["people"]["operator"])
    claim(plant)
    svc.equipment_release(actor=A(plant["people"]["operator"]), code="GRAN-01", batch_number="B-1")
    assert c.post("/equipment/GRAN-01/cleaning_start/", {"text": "manual wash"}).status_code == 302
    assert c.post("/equipment/GRAN-01/cleaning_end/", {"text": "visually clean"}).status_code == 302
    assert unit().status == "clean"
    page = c.get("/equipment/GRAN-01/").content.decode()
    for kind in ("use_start", "use_end", "cleaning_start", "cleaning_end"):
        assert f'data-kind="{kind}"' in page
    assert "B-1" in page and "visually clean" in page


@pytest.mark.req("EQ-01", "P11-06")
def test_a_refused_action_says_why_and_writes_nothing(plant) -> None:
    c = logged_in(plant["people"]["operator"])
    before = AuditEntry.objects.count()
    response = c.post("/equipment/GRAN-01/cleaning_end/", {"text": "x"})
    assert response.status_code == 422
    assert (
        "is clean: &#x27;finish cleaning&#x27; is possible only when it is being cleaned"
        in response.content.decode()
    )
    assert AuditEntry.objects.count() == before


@pytest.mark.req("P11-07")
@pytest.mark.parametrize(
    ("persona", "action", "status"),
    [
        ("auditor", "cleaning_start", 403),
        ("auditor", "note", 403),
        ("operator", "take_out_of_service", 403),
        ("operator", "calibration", 403),
        ("engineer", "take_out_of_service", 302),
        ("supervisor", "note", 302),
    ],
)
def test_actions_follow_the_roles(plant, persona: str, action: str, status: int) -> None:
    c = logged_in(plant["people"][persona])
    response = c.post(f"/equipment/GRAN-01/{action}/", {"text": "t", "reason": "r"})
    assert response.status_code == status


@pytest.mark.req("EQ-04", "P11-13", "P11-14")
def test_a_calibration_is_signed_through_the_page(plant) -> None:
    engineer = plant["people"]["engineer"]
    c = logged_in(engineer)
    due = (timezone.now() + dt.timedelta(days=200)).date().isoformat()
    form = {"passed": "yes", "next_due": due, "text": "cert 12", "signer_username": engineer.username}
    response = c.post("/equipment/GRAN-01/calibration/", {**form, "signer_password": "wrong"})
    assert response.status_code == 422 and "Nothing was signed" in response.content.decode()
    response = c.post("/equipment/GRAN-01/calibration/", {**form, "signer_password": PASSWORD})
    assert response.status_code == 302
    assert unit().calibration_due_at == dt.datetime.fromisoformat(due).replace(
        tzinfo=ZoneInfo("Europe/Zurich")
    )
    page = c.get("/equipment/GRAN-01/").content.decode()
    assert "Performed" in page and "record changed after signature" not in page
    assert Signature.objects.filter(record_type="equipment.logbookentry").count() == 1


@pytest.mark.req("LOG-03")
def test_a_logbook_correction_through_the_page_keeps_the_original(plant) -> None:
    supervisor = plant["people"]["supervisor"]
    c = logged_in(supervisor)
    note = svc.logbook_note(actor=A(supervisor), code="GRAN-01", text="Left gasket worn")
    response = c.post(
        "/equipment/GRAN-01/correct/",
        {
            "entry": note.pk,
            "text": "Right gasket worn",
            "reason": "wrong side",
            "signer_username": supervisor.username,
            "signer_password": PASSWORD,
        },
    )
    assert response.status_code == 302
    page = c.get("/equipment/GRAN-01/").content.decode()
    assert '<span class="original">Left gasket worn</span>' in page and "Right gasket worn" in page
    assert LogbookEntry.objects.get(pk=note.pk).text == "Left gasket worn"


def test_an_unknown_unit_is_404(plant) -> None:
    assert logged_in(plant["people"]["operator"]).get("/equipment/NOPE/").status_code == 404


# --- training -------------------------------------------------------------------------------


@pytest.mark.req("TRN-01", "P11-09")
def test_qa_records_training_and_everyone_sees_their_own(plant) -> None:
    qa, operator = plant["people"]["qa"], plant["people"]["operator"]
    c = logged_in(qa)
    with transaction.atomic():  # a qualification is master data (tests/masterdata): set up here
        record_create(Qualification(code="SOP-GRAN-001", title="Granulation"), actor=SETUP)
    today = timezone.localdate().isoformat()
    response = c.post(
        "/training/records/",
        {"user": operator.pk, "code": "SOP-GRAN-001", "trained_on": today, "reason": "session 12"},
    )
    assert response.status_code == 302
    assert TrainingRecord.objects.get().user == operator
    mine = logged_in(operator).get("/training/?user=qa_reviewer").content.decode()
    assert "SOP-GRAN-001" in mine and 'data-state="current"' in mine  # their own, whatever they ask for
    refused = c.post(
        "/training/records/", {"user": qa.pk, "code": "SOP-GRAN-001", "trained_on": today, "reason": "r"}
    )
    assert refused.status_code == 422 and "Nobody records their own training" in refused.content.decode()
    assert logged_in(operator).post("/training/records/", {}).status_code == 403


# --- API ----------------------------------------------------------------------------------------


@pytest.mark.req("EQ-01", "NFR-05")
def test_the_api_lists_equipment_with_effective_status_and_the_logbook(plant) -> None:
    wind("GRAN-01", cleaned_at=timezone.now() - dt.timedelta(hours=73))
    c = logged_in(plant["people"]["auditor"])
    rows = {r["code"]: r for r in c.get("/api/v1/equipment").json()}
    assert (
        rows["GRAN-01"]["status"] == "clean" and rows["GRAN-01"]["effective_status"] == "clean_hold_expired"
    )
    assert rows["SCALE-01"]["is_scale"] and rows["SCALE-01"]["checked_today"] is False
    log = c.get("/api/v1/equipment/GRAN-01/logbook").json()
    assert [e["kind"] for e in log] == ["note", "cleaning_start", "cleaning_end"]
    assert c.get("/api/v1/equipment/NOPE").status_code == 404


@pytest.mark.req("LOG-01", "P11-07")
def test_cleaning_through_the_api_is_gated_like_the_page(plant) -> None:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token_for(plant['people']['operator'])}"}
    c = Client()
    response = c.post(
        "/api/v1/equipment/GRAN-01/cleaning/end", {}, content_type="application/json", **headers
    )
    assert response.status_code == 409 and response.json()["code"] == "ILLEGAL_TRANSITION"
    response = c.post(
        "/api/v1/equipment/GRAN-01/cleaning/start",
        {"text": "api"},
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 200 and response.json()["status"] == "cleaning"
    auditor = {"HTTP_AUTHORIZATION": f"Bearer {token_for(plant['people']['auditor'])}"}
    response = c.post(
        "/api/v1/equipment/GRAN-01/cleaning/end", {}, content_type="application/json", **auditor
    )
    assert response.status_code == 403 and Equipment.objects.get(code="GRAN-01").status == "cleaning"


@pytest.mark.req("TRN-01")
def test_the_api_lists_training_records_and_only_your_own_without_the_permission(plant) -> None:
    from batchline.training import services as training

    qa = plant["people"]["qa"]
    training.qualification_create(actor=A(qa), code="SOP-X", title="X")
    for who in ("operator", "operator2"):
        training.training_record_add(
            actor=A(qa), user=plant["people"][who], code="SOP-X", trained_at=timezone.now(), reason="r"
        )
    assert len(logged_in(qa).get("/api/v1/training/records?code=SOP-X").json()) == 2
    mine = logged_in(plant["people"]["operator"]).get("/api/v1/training/records").json()
    assert [r["user"] for r in mine] == ["operator"] and mine[0]["state"] == "current"
    assert (
        logged_in(plant["people"]["operator"]).get("/api/v1/training/records?user=operator2").status_code
        == 403
    )
