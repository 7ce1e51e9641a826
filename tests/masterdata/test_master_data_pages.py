"""The master-data pages: items of each kind, a new one, a change, a retirement, and a QA approver's decision (issue 12)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import transaction

from batchline.accounts.models import User
from batchline.approvals.models import ChangeRequest, RequestState
from batchline.audit.models import AuditEntry
from batchline.audit.services import record_create, record_update
from batchline.equipment.models import Equipment, EquipmentClass, Site, Station
from batchline.masterdata.services import changes_due_apply
from batchline.materials.models import Material
from tests.conftest import PASSWORD, SETUP
from tests.masterdata.test_master_data import MATERIAL, approve, change, request_new

pytestmark = pytest.mark.django_db

FORM = {f"f_{name}": value for name, value in MATERIAL.items()} | {"f_potency_required": "no"}


def signed(username: str, **fields: str) -> dict[str, str]:
    return {**fields, "signer_username": username, "signer_password": PASSWORD}


def form(html: str, testid: str) -> str:
    return re.search(rf'<form[^>]*data-testid="{testid}".*?</form>', html, re.S).group(0)


def card_of(html: str, number: str) -> str:
    """A request's card: from its number to the next card or the end of the list."""
    return re.search(
        rf'data-request="{number}".*?(?=data-testid="md-request"|<h2>Change</h2>|</main>)', html, re.S
    ).group(0)


def waiting_request(number_or_code: str) -> ChangeRequest:
    return ChangeRequest.objects.get(subject_id=number_or_code, state=RequestState.REQUESTED)


@pytest.fixture
def plant(personas):
    with transaction.atomic():
        site = record_create(Site(code="main", name="Main plant", time_zone="Europe/Berlin"), actor=SETUP)
    return personas, site


@pytest.fixture
def lactose(plant):
    people, _site = plant
    approve(people["qa_approver"], request_new(people["admin"], "material", MATERIAL))
    return Material.objects.get(code="LAC-200")


@pytest.mark.req("A11-14", "P11-11", "P11-05", "P11-07")
def test_a_new_material_is_requested_on_its_page_and_in_use_once_a_qa_approver_signs(plant, login) -> None:
    people, _site = plant
    admin = login(people["admin"])
    home = admin.get("/").content.decode()
    assert 'href="/master-data/"' in home  # in the menu for who may see it
    page = admin.get("/master-data/material/").content.decode()
    create = form(page, "md-create")
    # The form is the kind's fields: labels with units, choices as selects, a yes/no as a checkbox.
    assert '<label for="n-shelf_life_days">Shelf life <span class="unit">(days)</span></label>' in create
    assert '<select id="n-kind" name="f_kind"' in create and '<option value="excipient">Excipient' in create
    assert 'type="checkbox" id="n-potency_required" name="f_potency_required" value="yes"' in create
    assert 'type="datetime-local"' in create and "Europe/Berlin" in create

    response = admin.post(
        "/master-data/material/", signed("admin", **FORM, reason="new supplier qualified (CC-2026-041)")
    )
    assert response.status_code == 302
    shown = admin.get(response["Location"]).content.decode()
    request = waiting_request("LAC-200")
    assert f"{request.number} requested: a QA approver approves it before it takes effect" in shown
    assert not Material.objects.filter(code="LAC-200").exists()
    assert "1 request waiting" in admin.get("/master-data/").content.decode()

    approver = login(people["qa_approver"])
    changes = approver.get("/master-data/changes/").content.decode()
    card = card_of(changes, request.number)
    assert 'Shelf life <span class="badge warn">GMP</span></td><td class="wrap-any">—</td>' in card
    assert ">1095 days</td>" in card and "new supplier qualified" in card and "Item code" not in card
    assert "Admin Person — Requested" in card
    approved = approver.post(
        f"/master-data/changes/{request.pk}/approve/",
        signed("qa_approver", signer_comment="checked against the specification"),
    )
    assert approved.status_code == 302 and approved["Location"] == "/master-data/changes/"
    assert (
        f"{request.number} approved: in force now." in approver.get("/master-data/changes/").content.decode()
    )

    assert Material.objects.get(code="LAC-200").shelf_life_days == 1095
    listed = approver.get("/master-data/material/").content.decode()
    assert 'href="/master-data/material/LAC-200/"' in listed and "Lactose monohydrate 200 mesh" in listed
    item = approver.get("/master-data/material/LAC-200/").content.decode()
    assert 'data-testid="md-value-shelf_life_days">1095 days<' in item
    assert "Qa Approver Person — Approved" in item and "approved, in force" in item
    history = re.search(r'data-testid="md-history".*?</table>', item, re.S).group(0)
    assert "created (approved request)" in history and "CC-2026-041" in history
    assert "<strong>Shelf life</strong>: — → 1095 days" in history


@pytest.mark.req("A11-14", "P11-08", "P11-05")
def test_a_station_is_set_up_on_the_page_and_takes_effect_at_its_date_in_the_sites_zone(plant, login) -> None:
    people, site = plant
    with transaction.atomic():
        scales = record_create(
            EquipmentClass(code="bench-scale", name="Bench scale", is_scale=True), actor=SETUP
        )
        record_create(
            Equipment(site=site, code="SCALE-09", name="Scale 9", equipment_class=scales), actor=SETUP
        )
    admin = login(people["admin"])
    create = form(admin.get("/master-data/station/").content.decode(), "md-create")
    # References are the codes in force; a list of them is a box each.
    assert '<option value="main">main</option>' in create
    assert 'name="f_devices" value="SCALE-09"' in create
    response = admin.post(
        "/master-data/station/",
        signed(
            "admin",
            f_code="BOOTH-09",
            f_name="Booth 9 tablet",
            f_site="main",
            f_location="Room 1.09",
            f_address="10.20.9.0/29",
            f_devices=["", "SCALE-09"],
            effective_at="2030-07-01T06:00",
            reason="booth 9 commissioned (CC-2026-050)",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    request = waiting_request("BOOTH-09")
    # Typed in the site's zone (Berlin, summer): 06:00 there is 04:00 UTC.
    assert request.payload["effective_at"] == "2030-07-01T04:00:00+00:00"
    assert request.payload["values"]["devices"] == ["SCALE-09"]

    approver = login(people["qa_approver"])
    card = approver.get("/master-data/changes/").content.decode()
    assert 'data-testid="effective-at">2030-07-01 06:00 CEST<' in card
    approved = approver.post(f"/master-data/changes/{request.pk}/approve/", signed("qa_approver"))
    assert approved.status_code == 302
    message = approver.get("/master-data/station/").content.decode()
    assert f"{request.number} approved: it takes effect at 2030-07-01 06:00 CEST." in message
    assert not Station.objects.filter(code="BOOTH-09").exists()

    assert changes_due_apply(dt.datetime(2030, 7, 1, 4, 0, 1, tzinfo=dt.UTC)) == [request.number]
    item = approver.get("/master-data/station/BOOTH-09/").content.decode()
    assert 'data-testid="md-value-devices">SCALE-09<' in item and "Room 1.09" in item
    assert 'data-testid="md-value-site">main<' in item
    assert "approved, in force" in item and "2030-07-01 06:00 CEST" in item


@pytest.mark.req("A11-14", "P11-05", "LBL-01")
def test_a_gmp_change_waits_for_approval_and_is_shown_waiting(lactose, plant, login) -> None:
    people, _site = plant
    admin = login(people["admin"])
    page = admin.get("/master-data/material/LAC-200/").content.decode()
    change = form(page, "md-change")
    assert 'value="1095"' in change and "needs approval" in change
    assert "changes at once" not in change  # a material's name prints on its labels: approved too
    assert 'data-testid="md-save"' in change and 'data-testid="md-change-sign"' in change
    # Fixed fields are shown, not offered.
    assert 'name="f_unit"' not in change and 'name="f_code"' not in change

    response = admin.post(
        "/master-data/material/LAC-200/change/",
        signed(
            "admin",
            f_name="Lactose 200M",
            f_shelf_life_days="730",
            f_kind="excipient",
            f_retest_days="365",
            reason="SOP-QA-012 revision 4",
        ),
    )
    assert response.status_code == 302
    page = admin.get(response["Location"]).content.decode()
    request = waiting_request("LAC-200")
    assert "Changed now" not in page
    assert f"{request.number} requested: a QA approver approves it before it takes effect" in page
    assert request.payload["values"] == {"name": "Lactose 200M", "shelf_life_days": 730}  # only what differs
    assert 'data-testid="md-value-shelf_life_days">1095 days<' in page  # not until approved
    card = card_of(page, request.number)
    assert "waiting for a QA approver" in card and '>1095 days</td><td class="wrap-any">730 days</td>' in card
    assert "change waiting" in admin.get("/master-data/material/").content.decode()
    assert "approve-" not in card  # the requester is offered no decision

    approver = login(people["qa_approver"])
    item = approver.get("/master-data/material/LAC-200/").content.decode()
    assert f'data-testid="approve-{request.number}"' in item
    approved = approver.post(
        f"/master-data/changes/{request.pk}/approve/", signed("qa_approver", back="item")
    )
    assert approved["Location"] == "/master-data/material/LAC-200/"
    material = Material.objects.get(code="LAC-200")
    assert (material.name, material.shelf_life_days) == ("Lactose 200M", 730)
    history = approver.get("/master-data/material/LAC-200/").content.decode()
    assert "<strong>Shelf life</strong>: 1095 days → 730 days" in history


@pytest.fixture
def scale(plant):
    _people, site = plant
    with transaction.atomic():
        scales = record_create(
            EquipmentClass(code="bench-scale", name="Bench scale", is_scale=True), actor=SETUP
        )
        unit = record_create(
            Equipment(site=site, code="SCALE-09", name="Scale 9", equipment_class=scales), actor=SETUP
        )
        record_update(
            unit,
            actor=SETUP,
            values={"capacity": "6.2", "readability": "0.0001", "minimum_weight": "0.02", "unit": "kg"},
        )
    return unit


@pytest.mark.req("A11-14", "P11-05")
def test_a_name_changes_at_once_with_a_reason_and_no_signature(scale, plant, login) -> None:
    people, _site = plant
    admin = login(people["admin"])
    change = form(admin.get("/master-data/equipment/SCALE-09/").content.decode(), "md-change")
    assert "changes at once" in change and "needs approval" in change
    fields = {"f_name": "Booth 9 scale", "f_capacity": "6.2", "reason": "renamed with the room"}
    response = admin.post("/master-data/equipment/SCALE-09/change/", fields)
    assert response.status_code == 302
    assert Equipment.objects.get(code="SCALE-09").name == "Booth 9 scale"
    assert not ChangeRequest.objects.filter(state=RequestState.REQUESTED).exists()
    page = admin.get("/master-data/equipment/SCALE-09/").content.decode()
    assert "Changed now: Name Scale 9 → Booth 9 scale." in page
    history = re.search(r'data-testid="md-history".*?</table>', page, re.S).group(0)
    assert "<strong>Name</strong>: Scale 9 → Booth 9 scale" in history
    assert "renamed with the room" in history and "Admin Person" in history


@pytest.mark.req("A11-05", "A11-14", "P11-05")
def test_refusals_are_in_words_with_422_the_typed_values_kept_and_nothing_written(
    lactose, plant, login
) -> None:
    people, _site = plant
    admin = login(people["admin"])
    mark = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first()

    # A GMP field saved without a signature: the signing dialog opens, the typed value kept.
    refused = admin.post(
        "/master-data/material/LAC-200/change/", {"f_shelf_life_days": "730", "reason": "SOP revision"}
    )
    page = refused.content.decode()
    assert refused.status_code == 422 and "it is requested with your signature" in page
    assert 'value="730"' in form(page, "md-change") and "SOP revision" in form(page, "md-change")
    assert re.search(r'<dialog id="sign-change"[^>]*data-open', page)

    for fields, words in (
        (
            {"f_shelf_life_days": "three years"},
            "Shelf life: &#x27;three years&#x27; is not a whole number of days",
        ),
        ({"f_retest_days": "180", "signer_password": "wrong"}, "password"),
        ({"f_name": "Lactose", "reason": ""}, "Give a reason"),
        ({"f_name": "Lactose monohydrate 200 mesh"}, "holds these values already"),
        (
            {"f_retest_days": "180", "effective_at": "next week"},
            "Takes effect: &#x27;next week&#x27; is not a date",
        ),
    ):
        data = {"reason": "SOP revision", "signer_username": "admin", "signer_password": PASSWORD} | fields
        refused = admin.post("/master-data/material/LAC-200/change/", data)
        page = refused.content.decode()
        assert refused.status_code == 422 and words in page, (fields, page[:3000])
        for name, value in fields.items():
            if name.startswith("f_"):
                assert f'value="{value}"' in form(page, "md-change"), name

    for fields, words in (
        ({**FORM, "f_shelf_life_days": "3 years"}, "not a whole number of days"),
        ({**FORM, "f_code": "LAC 200"}, "no spaces"),
        ({**FORM, "f_code": "LAC-300", "f_gtin": "04012345678902"}, "not a valid GTIN"),
        ({**FORM, "f_kind": ""}, "Type is required"),
        ({**FORM, "f_code": "LAC-200"}, "exists already"),
    ):
        refused = admin.post("/master-data/material/", signed("admin", **fields, reason="new"))
        page = refused.content.decode()
        assert refused.status_code == 422 and words in page, (fields, page[:3000])
        create = form(page, "md-create")
        assert f'value="{fields["f_code"]}"' in create
        assert f'value="{fields["f_shelf_life_days"]}"' in create
        assert re.search(r'<details class="card mt-1" data-testid="md-new" open', page)

    assert AuditEntry.objects.filter(id__gt=mark).exclude(action="signature_failed").count() == 0
    assert not ChangeRequest.objects.filter(state=RequestState.REQUESTED).exists()
    assert Material.objects.get(code="LAC-200").shelf_life_days == 1095


@pytest.mark.req("P11-07")
def test_an_operator_reads_what_their_roles_show_and_changes_nothing(lactose, plant, login) -> None:
    people, _site = plant
    request = request_new(people["admin"], "material", {**MATERIAL, "code": "LAC-300"})
    operator = login(people["operator"])
    index = operator.get("/master-data/").content.decode()
    assert (
        "Equipment units" in index and "Materials" not in index
    )  # an operator sees equipment, not materials
    assert operator.get("/master-data/material/").status_code == 403
    assert operator.get("/master-data/material/LAC-200/").status_code == 403
    page = operator.get("/master-data/station/").content.decode()
    assert "md-create" not in page
    for url, data in (
        ("/master-data/station/", signed("operator", f_code="B1", f_name="B1", reason="x")),
        ("/master-data/material/LAC-200/change/", {"f_name": "x", "reason": "x"}),
        ("/master-data/material/LAC-200/retire/", signed("operator", reason="x")),
        (f"/master-data/changes/{request.pk}/approve/", signed("operator")),
    ):
        assert operator.post(url, data).status_code == 403, url
    assert operator.get("/master-data/changes/").status_code == 403

    outsider = login(people["outsider"])
    assert 'href="/master-data/"' not in outsider.get("/").content.decode()
    assert outsider.get("/master-data/").status_code == 403

    admin = login(people["admin"])  # requests, never decides
    assert admin.post(f"/master-data/changes/{request.pk}/approve/", signed("admin")).status_code == 403
    assert Material.objects.get(code="LAC-200").name == MATERIAL["name"]
    assert waiting_request("LAC-300").state == RequestState.REQUESTED


@pytest.mark.req("P11-07", "P11-05")
def test_an_auditor_reads_every_kind_its_requests_and_history_but_is_offered_no_form(
    lactose, plant, login
) -> None:
    people, _site = plant
    request_new(people["admin"], "material", {**MATERIAL, "code": "LAC-300"})
    auditor = login(people["auditor"])
    for url in (
        "/master-data/",
        "/master-data/changes/",
        "/master-data/material/",
        "/master-data/material/LAC-200/",
        "/master-data/qualification/",
        "/master-data/station/",
    ):
        response = auditor.get(url)
        page = response.content.decode()
        assert response.status_code == 200, url
        assert '<form method="post" action="/master-data' not in page, url
        assert "data-sign-dialog" not in page, url
    assert "LAC-300: new" in auditor.get("/master-data/changes/").content.decode()
    assert "Shelf life" in auditor.get("/master-data/material/LAC-200/").content.decode()


@pytest.mark.req("P11-03", "A11-14", "P11-05")
def test_a_retirement_is_requested_on_the_page_and_approved_from_the_items_page(
    lactose, plant, login
) -> None:
    people, _site = plant
    admin = login(people["admin"])
    refused = admin.post("/master-data/material/LAC-200/retire/", signed("admin", reason=""))
    assert refused.status_code == 422 and "Give a reason" in refused.content.decode()
    response = admin.post(
        "/master-data/material/LAC-200/retire/", signed("admin", reason="supplier discontinued")
    )
    assert response.status_code == 302
    request = waiting_request("LAC-200")
    assert (
        "approves the retirement before it takes effect" in admin.get(response["Location"]).content.decode()
    )

    approver = login(people["qa_approver"])
    refused = approver.post(
        f"/master-data/changes/{request.pk}/reject/", signed("qa_approver", back="item", signer_comment="")
    )
    page = refused.content.decode()
    assert refused.status_code == 422 and "Say why the change is rejected" in page
    assert re.search(
        rf'<dialog id="reject-{request.pk}"[^>]*data-open', page
    )  # on the item's page, open again
    assert 'data-testid="md-code">LAC-200<' in page
    approved = approver.post(
        f"/master-data/changes/{request.pk}/approve/", signed("qa_approver", back="item")
    )
    assert approved["Location"] == "/master-data/material/LAC-200/"
    item = approver.get("/master-data/material/LAC-200/").content.decode()
    assert 'data-testid="md-retired"' in item and "retired (approved request)" in item
    # The trail's UTC time of the retirement reads in the site's zone, as every time on the page.
    assert re.search(r"— → \d{4}-\d\d-\d\d \d\d:\d\d (CET|CEST)", item) and not re.search(
        r"\d\dT\d\d:\d\d", item
    )
    assert 'data-code="LAC-200"' not in approver.get("/master-data/material/").content.decode()
    listed = approver.get("/master-data/material/?retired=1").content.decode()
    assert 'data-code="LAC-200"' in listed and "retired " in listed
    # A retired item offers no change and no retirement.
    admin_page = admin.get("/master-data/material/LAC-200/").content.decode()
    assert 'data-testid="md-change"' not in admin_page and 'data-testid="md-retire"' not in admin_page


@pytest.mark.req("A11-14")
def test_a_rejection_needs_its_reason_and_changes_nothing(lactose, plant, login) -> None:
    people, _site = plant
    admin = login(people["admin"])
    admin.post(
        "/master-data/material/LAC-200/change/",
        signed("admin", f_retest_days="180", reason="SOP revision"),
    )
    request = waiting_request("LAC-200")
    approver = login(people["qa_approver"])
    refused = approver.post(f"/master-data/changes/{request.pk}/reject/", signed("qa_approver"))
    page = refused.content.decode()
    assert refused.status_code == 422 and "Say why the change is rejected" in page
    assert re.search(rf'<dialog id="reject-{request.pk}"[^>]*data-open', page)
    rejected = approver.post(
        f"/master-data/changes/{request.pk}/reject/",
        signed("qa_approver", signer_comment="retest interval not validated"),
    )
    assert rejected.status_code == 302
    assert Material.objects.get(code="LAC-200").retest_days == 365
    item = approver.get("/master-data/material/LAC-200/").content.decode()
    assert "rejected: nothing changed" in item and "retest interval not validated" in item
    assert "Qa Approver Person — Rejected" in item


def test_an_item_with_a_slash_in_its_code_has_its_page(plant, login) -> None:
    people, _site = plant
    approve(people["qa_approver"], request_new(people["admin"], "material", {**MATERIAL, "code": "PCM/500"}))
    admin = login(people["admin"])
    assert admin.get("/master-data/material/PCM/500/").status_code == 200
    response = admin.post(
        "/master-data/material/PCM/500/change/", signed("admin", f_name="PCM", reason="short")
    )
    assert response.status_code == 302 and waiting_request("PCM/500").payload["values"] == {"name": "PCM"}
    assert admin.get("/master-data/material/NONE/").status_code == 404
    assert admin.get("/master-data/colour/").status_code == 404


def test_decimals_are_shown_and_read_in_the_sites_notation(scale, plant, login) -> None:
    from tests.conftest import configure

    people, _site = plant
    configure(decimal_separator="comma")
    admin = login(people["admin"])
    change = form(admin.get("/master-data/equipment/SCALE-09/").content.decode(), "md-change")
    assert 'name="f_capacity" value="6,2"' in change
    response = admin.post(
        "/master-data/equipment/SCALE-09/change/",
        signed("admin", f_capacity="6,5", f_readability="0,0001", reason="new load cell"),
    )
    assert response.status_code == 302
    assert waiting_request("SCALE-09").payload["values"] == {"capacity": "6.5"}
    refused = admin.post(
        "/master-data/equipment/SCALE-09/change/", signed("admin", f_capacity="6.5", reason="x")
    )
    assert refused.status_code == 422 and "Capacity" in refused.content.decode()


@pytest.mark.req("A11-14", "DI-05")
def test_a_form_opened_before_someone_elses_change_neither_reverts_nor_overwrites_it(scale, login) -> None:
    admin = login(User.objects.get(username="admin"))
    page = admin.get("/master-data/equipment/SCALE-09/").content.decode()
    shown = dict(re.findall(r'name="(was_f_\w+)" value="([^"]*)"', form(page, "md-change")))
    assert shown["was_f_name"] == "Scale 9" and shown["was_f_capacity"] == "6.2"
    # Meanwhile someone renames it.
    change(User.objects.get(username="admin"), "equipment", "SCALE-09", {"name": "Booth 9 scale"}, sign=False)
    stale = {f"f_{k[6:]}": v for k, v in shown.items()} | shown
    # The stale form sends the old name back untouched, and a new capacity: the new name stays.
    saved = admin.post(
        "/master-data/equipment/SCALE-09/change/",
        signed("admin", **{**stale, "f_capacity": "6.5", "reason": "new load cell"}),
    )
    assert saved.status_code == 302, saved.content.decode()[:3000]
    scale.refresh_from_db()
    assert (scale.name, scale.capacity) == ("Booth 9 scale", Decimal("6.2"))  # capacity is GMP: requested
    assert waiting_request("SCALE-09").payload["values"] == {"capacity": "6.5"}
    # Typing over the field someone else changed is refused in words, and nothing is written.
    refused = admin.post(
        "/master-data/equipment/SCALE-09/change/", {**stale, "f_name": "Scale (mine)", "reason": "SOP-WH-3"}
    )
    assert refused.status_code == 422
    assert "Name was changed since you opened this page (it is now Booth 9 scale)" in refused.content.decode()
    scale.refresh_from_db()
    assert scale.name == "Booth 9 scale"


@pytest.mark.req("A11-14")
def test_a_retirement_can_be_dated_on_the_page(lactose, login) -> None:
    admin = login(User.objects.get(username="admin"))
    response = admin.post(
        "/master-data/material/LAC-200/retire/",
        signed("admin", reason="supplier stops at year end", effective_at="2030-12-31T18:00"),
    )
    assert response.status_code == 302
    request = waiting_request("LAC-200")
    assert request.payload["effective_at"] == "2030-12-31T17:00:00+00:00"  # typed in Berlin time
    approve(User.objects.get(username="qa_approver"), request)
    lactose.refresh_from_db()
    assert lactose.retired_at is None  # approved, not yet in effect
    assert changes_due_apply(dt.datetime(2031, 1, 1, tzinfo=dt.UTC)) == [request.number]
    lactose.refresh_from_db()
    assert lactose.retired_at is not None
