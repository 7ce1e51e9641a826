"""Goods receipts and lot dispositions over the API: the receiving page's and the lot page's services,
permissions, refusals, audit entries and signatures, for a client with a personal token (issue 14)."""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from batchline.accounts import services as accounts
from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor
from batchline.materials import services as stock
from batchline.materials.models import Container, LedgerEntry, Lot
from batchline.signatures.models import Signature
from tests.api.test_api import api
from tests.conftest import PASSWORD, configure, entries, make_user

pytestmark = pytest.mark.django_db

LOT = "2026/0153"  # a slash, as many plants number their lots
DETAIL = f"/inventory/lots/PCM/{LOT}"


@pytest.fixture
def site(db):
    people = {
        n: make_user(n, [r])
        for n, r in (
            ("clerk", "warehouse"),
            ("qa", "qa_approver"),
            ("qa2", "qa_approver"),
            ("reviewer", "qa_reviewer"),
            ("auditor", "auditor"),
            ("operator", "operator"),
        )
    }
    material = stock.material_create(
        actor=Actor.of(people["clerk"], via="web"), code="PCM", name="Paracetamol", kind="api", unit="kg"
    )
    return people, material


# The certificate's expiry as a plant types it: the site's local time, no offset.
IN_A_YEAR = (timezone.localdate() + dt.timedelta(days=365)).isoformat() + "T18:00:00"


def receipt(**changes: Any) -> dict[str, Any]:
    return {
        "material": "PCM",
        "number": LOT,
        "expires_at": IN_A_YEAR,
        "containers": [25, "12.5"],
        "supplier": "Acme Fine Chemicals",
        "supplier_lot": "AFC-88",
        "potency": "99.6",
        "location": "WH-A-01",
        **changes,
    }


def received(people) -> Lot:
    response = api(people["clerk"], "post", "/inventory/lots", receipt())
    assert response.status_code == 201, response.content
    return Lot.objects.get(number=LOT)


class Nothing:
    """Whether a request wrote anything: GMP records, or audit entries other than the caller's token
    and the records of a refused attempt GMP keeps (named in ``allowed``)."""

    def __init__(self, *allowed: str) -> None:
        self.allowed = set(allowed)
        self.mark = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
        self.counts = self.now()

    @staticmethod
    def now() -> tuple[int, ...]:
        return tuple(m.objects.count() for m in (Lot, Container, LedgerEntry, Signature))

    def written(self) -> list[str]:
        later = AuditEntry.objects.filter(id__gt=self.mark).exclude(record_type="accounts.apitoken")
        return [f"{e.action} {e.record_type}" for e in later if e.action not in self.allowed]

    def holds(self) -> bool:
        return self.now() == self.counts and not self.written()


@pytest.mark.req("MAT-05", "MAT-01", "NFR-05", "NFR-02", "P11-05", "DI-09")
def test_a_goods_receipt_over_the_api_makes_the_lot_in_quarantine_with_its_containers_audited(
    site, settings
) -> None:
    people, _material = site
    settings.TIME_ZONE = "Europe/Zurich"
    response = api(people["clerk"], "post", "/inventory/lots", receipt())
    assert response.status_code == 201, response.content
    lot = response.json()
    assert (lot["material"], lot["number"], lot["status"], lot["usable"]) == ("PCM", LOT, "quarantine", False)
    assert lot["not_usable_because"] == [
        f"Lot {LOT} of Paracetamol is in quarantine: only released lots can be used."
    ]
    assert [(c["code"], c["quantity"], c["unit"], c["location"]) for c in lot["container_list"]] == [
        ("C-000001", "25", "kg", "WH-A-01"),
        ("C-000002", "12.5", "kg", "WH-A-01"),
    ]
    assert (lot["quantity"], lot["potency"], lot["supplier_lot"], lot["signatures"]) == (
        "37.5",
        "99.6",
        "AFC-88",
        [],
    )
    # A time without an offset is the site's, as the receiving page reads a typed one.
    zurich = dt.datetime.fromisoformat(IN_A_YEAR).replace(tzinfo=ZoneInfo("Europe/Zurich"))
    assert Lot.objects.get().expires_at == zurich

    made = entries(record_type="materials.lot") + entries(record_type="materials.ledgerentry")
    assert [(e.action, e.via, e.actor_username, e.reason) for e in made] == [
        ("create", "api", "clerk", "received"),
        ("create", "api", "clerk", ""),
        ("create", "api", "clerk", ""),
    ]
    assert [e.kind for e in LedgerEntry.objects.order_by("id")] == ["receipt", "receipt"]
    assert api(people["auditor"], "get", DETAIL).json() == lot


@pytest.mark.req("P11-07", "P11-04", "MAT-05")
def test_only_the_warehouse_receives_and_a_read_only_token_writes_nothing(site) -> None:
    people, _material = site
    check = Nothing()
    for who in ("qa", "auditor", "operator"):
        refused = api(people[who], "post", "/inventory/lots", receipt())
        assert refused.status_code == 403 and "receive_material" in refused.json()["detail"], who
    _token, raw = accounts.token_create(
        actor=Actor.of(people["clerk"], via="web"), user=people["clerk"], name="ERP reader", scope="read"
    )
    read_only = Client().post(
        "/api/v1/inventory/lots",
        data=receipt(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert read_only.status_code == 403 and "read-only" in read_only.json()["detail"]
    assert api(None, "post", "/inventory/lots", receipt()).status_code == 401
    assert check.holds(), check.written()


@pytest.mark.req("A11-05", "MAT-05", "MAT-02")
@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"containers": [25, 0]}, 409, "The container quantity must be more than zero, not 0."),
        ({"containers": ["-3"]}, 409, "must be more than zero"),
        ({"containers": []}, 409, "A delivery has at least one container."),
        ({"containers": ["a lot"]}, 409, "The container quantity"),
        ({"containers": [1e13]}, 409, "has too many digits"),
        ({"containers": [True]}, 422, None),
        ({"number": "  "}, 409, "Give the lot (receiving) number."),
        ({"number": "L" * 41}, 422, None),
        ({"material": "NOPE"}, 409, "No material 'NOPE' is in the master data"),
        ({"expires_at": None}, 409, "Give the expiry date and time from the certificate."),
        ({"expires_at": "2020-01-01T00:00:00+00:00"}, 409, "expired before it arrived"),
        ({"expires_at": "31.02.2027"}, 422, None),
        ({"expires_at": "0001-01-01T00:00:00+05:00"}, 409, "lies outside the calendar Batchline keeps"),
        ({"potency": "lots"}, 409, "The potency"),
        ({"potency": 250}, 409, "Potency 250 % is not plausible (0 to 200 %)."),
        ({"location": "x" * 61}, 422, None),
    ],
)
def test_bad_receipts_are_refused_in_words_and_nothing_is_received(site, change, status, words) -> None:
    people, _material = site
    check = Nothing()
    response = api(people["clerk"], "post", "/inventory/lots", receipt(**change))
    assert response.status_code == status, response.content
    if words:
        assert words in response.json()["detail"], response.json()
    else:
        assert response.json()["detail"]
    assert check.holds(), check.written()


def page_problem(client: Client, material, **changes: Any) -> str:
    """What the receiving page answers to the same delivery, as text."""
    data = receipt(**changes)
    form = {
        "material": material.pk,
        "number": data["number"],
        "expires_at": dt.datetime.fromisoformat(data["expires_at"]).strftime("%Y-%m-%dT%H:%M"),
        "containers": " ".join(str(q) for q in data["containers"]),
        "potency": data["potency"],
    }
    response = client.post("/lots/receive/", form)
    assert response.status_code == 422
    return html.unescape(response.content.decode())


@pytest.mark.req("MAT-05", "NFR-05")
def test_the_api_refuses_a_receipt_with_the_sentence_the_receiving_page_shows(site, login) -> None:
    people, material = site
    page = login(people["clerk"])
    for change in ({"potency": "lots"}, {"containers": ["25", "0"]}):
        refused = api(people["clerk"], "post", "/inventory/lots", receipt(**change)).json()
        assert refused["detail"] in page_problem(page, material, **change), refused
    received(people)
    check = Nothing()
    again = api(people["clerk"], "post", "/inventory/lots", receipt())
    assert again.status_code == 409 and again.json()["code"] == "DUPLICATE"
    assert again.json()["detail"] == f"Lot {LOT} of PCM was received already."
    assert again.json()["detail"] in page_problem(page, material)
    assert check.holds(), check.written()


@pytest.mark.req("P11-08", "MAT-05")
def test_a_receipt_from_a_terminal_that_is_no_registered_station_is_refused_and_the_attempt_kept(
    site,
) -> None:
    people, _material = site
    configure(registered_stations_only=True)
    check = Nothing("station_refused")
    response = api(people["clerk"], "post", "/inventory/lots", receipt())
    assert response.status_code == 409 and response.json()["code"] == "STATION_NOT_REGISTERED"
    assert "not a registered station" in response.json()["detail"]
    assert check.holds(), check.written()
    (event,) = entries(action="station_refused")
    assert event.via == "api" and event.actor_username == "clerk" and "lot receive" in event.reason


def dispose(user, status="released", reason="CoA checked, identity test passed", password=PASSWORD, **kw):
    body = {
        "status": status,
        "reason": reason,
        "signature": {"username": user.username, "password": password},
    }
    return api(user, "post", f"{DETAIL}/disposition", {**body, **kw})


@pytest.mark.req("MAT-01", "P11-07", "P11-13", "P11-14", "P11-18", "NFR-05")
def test_qa_releases_a_lot_over_the_api_under_a_signature_bound_to_the_lot(site) -> None:
    people, _material = site
    received(people)
    response = dispose(people["qa"])
    assert response.status_code == 200, response.content
    lot = response.json()
    assert (lot["status"], lot["usable"], lot["not_usable_because"]) == ("released", True, [])
    (sig,) = lot["signatures"]
    assert (sig["meaning"], sig["signer_username"], sig["signer_name"], sig["binding_intact"]) == (
        "released",
        "qa",
        "Qa Person",
        True,
    )
    assert sig["method"] == "id+password" and sig["comment"] == "CoA checked, identity test passed"
    assert sig["manifestation"].startswith("Qa Person — Released — ")
    (change,) = entries(record_type="materials.lot", action="disposition")
    assert (change.via, change.actor_username, change.reason) == (
        "api",
        "qa",
        "CoA checked, identity test passed",
    )
    assert json.loads(change.changes) == {"status": ["quarantine", "released"]}
    assert entries(record_type="signatures.signature")[-1].via == "api"

    # Blocking it is signed as approved; correcting the expiry shows the earlier signatures as
    # given to the lot as it stood then, and is signed itself.
    assert dispose(people["qa2"], "blocked", "supplier notice SN-12").json()["status"] == "blocked"
    later = (timezone.now() + dt.timedelta(days=200)).isoformat()
    corrected = api(
        people["qa"],
        "post",
        f"{DETAIL}/expiry",
        {"expires_at": later, "reason": "CoA rev. 2", "signature": {"username": "qa", "password": PASSWORD}},
    )
    assert corrected.status_code == 200, corrected.content
    assert [(s["meaning"], s["binding_intact"]) for s in corrected.json()["signatures"]] == [
        ("released", False),
        ("approved", False),
        ("approved", True),
    ]


@pytest.mark.req("MAT-03", "MAT-01", "P11-07")
def test_qa_extends_a_retest_date_over_the_api_never_past_the_expiry(site) -> None:
    people, _material = site
    received(people)
    sign = {"username": "qa", "password": PASSWORD}
    past_expiry = (timezone.now() + dt.timedelta(days=400)).isoformat()
    check = Nothing()
    refused = api(
        people["qa"],
        "post",
        f"{DETAIL}/retest",
        {"retest_at": past_expiry, "reason": "T-1", "signature": sign},
    )
    assert (
        refused.status_code == 409
        and refused.json()["detail"] == f"Lot {LOT} expires before that retest date."
    )
    assert check.holds(), check.written()
    soon = timezone.now() + dt.timedelta(days=90)
    done = api(
        people["qa"],
        "post",
        f"{DETAIL}/retest",
        {"retest_at": soon.isoformat(), "reason": "T-2 assay", "signature": sign},
    )
    assert done.status_code == 200 and Lot.objects.get().retest_at == soon
    by_clerk = api(
        people["clerk"],
        "post",
        f"{DETAIL}/retest",
        {"retest_at": soon.isoformat(), "reason": "x", "signature": sign},
    )
    assert by_clerk.status_code == 403


@pytest.mark.req("P11-07", "MAT-01")
def test_only_a_qa_approver_dispositions_a_lot_and_a_refusal_writes_nothing(site) -> None:
    people, _material = site
    received(people)
    check = Nothing()
    for who in ("clerk", "reviewer", "auditor", "operator"):
        refused = dispose(people[who])
        assert refused.status_code == 403 and "disposition_lot" in refused.json()["detail"], who
    assert check.holds(), check.written()
    assert Lot.objects.get().status == "quarantine"


@pytest.mark.req("P11-18", "P11-21", "P11-26", "A11-05")
def test_a_disposition_without_the_persons_own_valid_signature_changes_nothing_and_the_attempt_is_kept(
    site,
) -> None:
    people, _material = site
    received(people)
    check = Nothing("signature_failed", "sign_as_other_refused")
    wrong = dispose(people["qa"], password="not-my-password")
    assert wrong.status_code == 403 and wrong.json()["code"] == "BAD_CREDENTIALS"
    as_other = api(
        people["qa"],
        "post",
        f"{DETAIL}/disposition",
        {"status": "released", "reason": "CoA", "signature": {"username": "qa2", "password": PASSWORD}},
    )
    assert as_other.status_code == 403 and as_other.json()["code"] == "SIGN_AS_OTHER"
    assert "you can only sign as yourself" in as_other.json()["detail"]
    assert check.holds(), check.written()
    assert [e.action for e in entries(action__in=["signature_failed", "sign_as_other_refused"])] == [
        "signature_failed",
        "sign_as_other_refused",
    ]
    assert Lot.objects.get().status == "quarantine"


@pytest.mark.req("A11-05", "MAT-01", "P11-20")
@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"status": "lost"}, 422, None),
        ({"signature": {"password": PASSWORD}}, 422, None),
        ({"reason": "   "}, 422, "Give a reason for the lot's new status."),
        ({"signature": None}, 422, None),
        ({"status": "quarantine"}, 409, f"Lot {LOT} is quarantine already."),
    ],
)
def test_bad_dispositions_are_refused_in_words_and_change_nothing(site, body, status, words) -> None:
    people, _material = site
    received(people)
    check = Nothing()
    qa = people["qa"]
    full = {
        "status": "released",
        "reason": "CoA",
        "signature": {"username": "qa", "password": PASSWORD},
        **body,
    }
    response = api(qa, "post", f"{DETAIL}/disposition", full)
    assert response.status_code == status, response.content
    assert words is None or response.json()["detail"] == words
    assert check.holds(), check.written()


@pytest.mark.req("A11-05", "DI-09")
def test_a_lot_that_is_not_there_is_404_in_words(site) -> None:
    people, _material = site
    received(people)
    body = {"status": "released", "reason": "CoA", "signature": {"username": "qa", "password": PASSWORD}}
    missing = api(people["qa"], "post", "/inventory/lots/PCM/2026/0154/disposition", body)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "No lot '2026/0154' of material 'PCM' is known here."
    assert api(people["qa"], "get", "/inventory/lots/LAC/2026/0153").status_code == 404
    assert api(people["qa"], "get", "/inventory/lots/PCM/2026/0153").status_code == 200
    assert Lot.objects.get().status == "quarantine"


@pytest.mark.req("MAT-01", "NFR-05", "RBE-07")
def test_the_api_refuses_a_disposition_with_the_sentence_the_lot_page_shows(site, login) -> None:
    people, _material = site
    lot = received(people)
    with transaction.atomic():  # it joins the batch's creation, whose transaction this stands for
        output = stock.output_lot_register(
            actor=Actor.of(people["clerk"], via="web"),
            batch_number="B-0001",
            product_code="PCM",
            product_name="Paracetamol",
            unit="kg",
            at=timezone.now(),
        )
    page = login(people["qa"])
    for target, status in ((lot, "quarantine"), (output, "released")):
        check = Nothing("login_failed")
        over_api = api(
            people["qa"],
            "post",
            f"/inventory/lots/PCM/{target.number}/disposition",
            {"status": status, "reason": "CoA", "signature": {"username": "qa", "password": PASSWORD}},
        )
        assert over_api.status_code == 409, over_api.content
        on_page = page.post(
            f"/lots/{target.pk}/disposition/",
            {"status": status, "reason": "CoA", "signer_username": "qa", "signer_password": PASSWORD},
        )
        assert on_page.status_code == 422
        assert over_api.json()["detail"] in html.unescape(on_page.content.decode())
        assert check.holds(), check.written()
    assert "is the output of batch B-0001" in over_api.json()["detail"]
