"""Entries only from registered stations and their instruments; the station recorded with each entry
(21 CFR 11.10(h), P11-08; issue 12).

The suite is seeded with the control off (tests/settings.py); here a configuration version switches
it on, as a site's approved change does. Requests come through Django's client with the terminal's
address as REMOTE_ADDR; the weighings read the MT-SICS simulator over real TCP.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone

from batchline.approvals import services as approvals
from batchline.audit.services import Actor
from batchline.configuration import definitions
from batchline.equipment.models import LogbookEntry, Station
from batchline.equipment.stations import client_address
from batchline.execution.models import BatchException, StepValue
from batchline.masterdata.services import master_create, master_retire
from batchline.materials.models import Container, LedgerEntry, Lot, Material
from tests.api.test_api import token_for
from tests.configuration.test_configuration import signer
from tests.conftest import configure, entries
from tests.execution.test_dispensing import make_dispensing_plant
from tests.execution.test_engine import start

pytestmark = pytest.mark.django_db

BOOTH = "10.20.1.0/29"  # the booth's tablets, on DHCP
AT_BOOTH = "10.20.1.5"
STRANGER = "10.9.9.9"
REFUSED_WORDS = (
    f"This terminal ({STRANGER}) is not a registered station: entries are accepted only from registered "
    "stations (21 CFR 11.10(h)). Ask the engineer to register it."
)


def register(people, code="BOOTH-01-T1", address=BOOTH, devices="SCALE-01"):
    """A station through master data: the engineer requests it, QA approves it, both signed."""
    engineer, approver = people["engineer"], people["approver"]
    request = master_create(
        actor=Actor.of(engineer, via="web"),
        signer=signer(engineer, "requested"),
        kind="station",
        values={"code": code, "name": "Booth 1 tablet", "site": "s1", "address": address, "devices": devices},
        reason="booth 1 commissioned (CC-2026-101)",
    )
    approvals.change_approve(
        actor=Actor.of(approver, via="web"),
        signer=signer(approver, "approved"),
        request=request,
        comment="ok",
    )
    return Station.objects.get(code=code)


@pytest.fixture
def booth(db, sim):
    """A running weighing on a booth whose tablets are registered with SCALE-01; the control on."""
    people, batch = make_dispensing_plant(sim)
    start(people, batch, "disp_api")
    register(people)
    configure(registered_stations_only=True)
    client = Client()
    client.force_login(people["operator"])
    return people, batch, sim, client


def weigh(client, batch, address, scale="SCALE-01"):
    return client.post(
        f"/batches/{batch.number}/steps/disp_api/dispense/",
        {"source": "C-000001", "scale": scale},
        REMOTE_ADDR=address,
    )


def api(user, method, path, address, body=None):
    kwargs = {"headers": {"Authorization": f"Bearer {token_for(user)}"}, "REMOTE_ADDR": address}
    if body is not None:
        kwargs |= {"data": json.dumps(body), "content_type": "application/json"}
    return getattr(Client(), method)(f"/api/v1{path}", **kwargs)


def nothing_weighed(batch):
    return (
        not StepValue.objects.filter(step__batch=batch).exists()
        and not LedgerEntry.objects.filter(kind="dispense").exists()
    )


@pytest.mark.req("P11-08", "WD-02")
def test_a_weighing_from_an_unregistered_terminal_is_refused_in_words_and_recorded_with_its_address(
    booth,
) -> None:
    _people, batch, sim, client = booth
    sim.place("2041.0")
    response = weigh(client, batch, STRANGER)
    assert response.status_code == 422
    assert REFUSED_WORDS in response.content.decode()
    assert nothing_weighed(batch)
    (event,) = entries(action="station_refused")
    assert event.record_id == STRANGER and event.actor_username == "operator"
    assert "step dispense, batch" in event.reason and "STATION_NOT_REGISTERED" in event.reason
    # Not a product exception: nothing happened to the batch, the attempt is a security event.
    assert not BatchException.objects.filter(batch=batch).exists()


@pytest.mark.req("P11-08", "WD-02", "DI-04")
def test_a_weighing_at_a_registered_station_names_it_on_the_value_and_the_ledger(booth) -> None:
    _people, batch, sim, client = booth
    sim.place("2041.0")
    response = weigh(client, batch, AT_BOOTH)
    assert response.status_code == 200, response.content[:800]
    value = StepValue.objects.get(step__batch=batch, name="dispensed")
    assert value.station == "BOOTH-01-T1"
    assert set(LedgerEntry.objects.filter(kind="dispense").values_list("station", flat=True)) == {
        "BOOTH-01-T1"
    }
    (created,) = entries(record_type="execution.stepvalue", action="create")
    assert json.loads(created.changes)["station"] == [None, "BOOTH-01-T1"]  # in the trail, like every field
    page = client.get(f"/batches/{batch.number}/?step=disp_api", REMOTE_ADDR=AT_BOOTH).content.decode()
    assert "BOOTH-01-T1" in page
    # Reads stay allowed from anywhere; the record names the station of the value and the weighing.
    record = client.get(f"/batches/{batch.number}/record/json/", REMOTE_ADDR=STRANGER)
    assert record.status_code == 200
    content = json.loads(record.content)
    assert {w["station"] for w in content["weighings"]} == {"BOOTH-01-T1"}


@pytest.mark.req("P11-08", "WD-02")
def test_a_scale_not_registered_to_the_station_is_refused_and_the_attempt_is_an_exception(booth) -> None:
    _people, batch, sim, client = booth
    sim.place("2041.0")
    response = weigh(client, batch, AT_BOOTH, scale="SCALE-09")
    assert response.status_code == 422
    assert (
        "SCALE-09 is not registered to station BOOTH-01-T1: weigh on SCALE-01." in response.content.decode()
    )
    assert nothing_weighed(batch)
    (refused,) = BatchException.objects.filter(batch=batch)
    assert refused.code == "REFUSED_INSTRUMENT_NOT_AT_STATION" and refused.equipment == "SCALE-09"
    # Its live reading is not shown at this station either.
    reading = client.get("/scales/reading/?scale=SCALE-09", REMOTE_ADDR=AT_BOOTH).content.decode()
    assert "SCALE-09 is not registered to station BOOTH-01-T1" in reading
    assert (
        "SCALE-09" not in client.get("/scales/reading/?scale=SCALE-01", REMOTE_ADDR=AT_BOOTH).content.decode()
    )


@pytest.mark.req("P11-08")
def test_a_retired_station_is_refused(booth) -> None:
    people, batch, sim, client = booth
    engineer = people["engineer"]
    approvals.change_approve(
        actor=Actor.of(people["approver"], via="web"),
        signer=signer(people["approver"], "approved"),
        request=master_retire(
            actor=Actor.of(engineer, via="web"),
            signer=signer(engineer, "requested"),
            kind="station",
            code="BOOTH-01-T1",
            reason="booth 1 tablets replaced",
        ),
        comment="ok",
    )
    sim.place("2041.0")
    response = weigh(client, batch, AT_BOOTH)
    assert response.status_code == 422
    assert f"This terminal ({AT_BOOTH}) is not a registered station" in response.content.decode()
    assert nothing_weighed(batch)


@pytest.mark.req("P11-08")
def test_with_the_control_off_an_unregistered_terminal_is_accepted_and_no_station_named(booth) -> None:
    _people, batch, sim, client = booth
    configure(registered_stations_only=False)
    sim.place("2041.0")
    assert weigh(client, batch, STRANGER, scale="SCALE-01").status_code == 200
    assert StepValue.objects.get(step__batch=batch, name="dispensed").station == ""
    assert not entries(action="station_refused")


@pytest.mark.req("P11-08")
def test_the_api_refuses_an_unregistered_terminal_and_names_the_station_of_a_registered_one(booth) -> None:
    people, batch, sim, _client = booth
    op = people["operator"]
    sim.place("2041.0")
    path = f"/batches/{batch.number}/steps/disp_api/dispense"
    refused = api(op, "post", path, STRANGER, {"source": "C-000001", "scale": "SCALE-01"})
    assert refused.status_code == 409
    assert refused.json()["code"] == "STATION_NOT_REGISTERED" and refused.json()["detail"] == REFUSED_WORDS
    assert nothing_weighed(batch)
    assert api(op, "get", f"/batches/{batch.number}/steps", STRANGER).status_code == 200  # reads stay allowed
    wrong = api(op, "post", path, AT_BOOTH, {"source": "C-000001", "scale": "SCALE-09"})
    assert wrong.status_code == 409 and wrong.json()["code"] == "INSTRUMENT_NOT_AT_STATION"
    accepted = api(op, "post", path, AT_BOOTH, {"source": "C-000001", "scale": "SCALE-01"})
    assert accepted.status_code == 200, accepted.content[:800]
    assert StepValue.objects.get(step__batch=batch, name="dispensed").station == "BOOTH-01-T1"


@pytest.mark.req("P11-08", "LOG-01")
def test_a_logbook_entry_is_taken_only_at_a_station_and_names_it(booth) -> None:
    people, _batch, _sim, _client = booth
    path = "/equipment/SCALE-01/cleaning/start"
    refused = api(people["operator"], "post", path, STRANGER, {"text": "wiped down"})
    assert refused.status_code == 409 and refused.json()["detail"] == REFUSED_WORDS
    assert not LogbookEntry.objects.filter(kind="cleaning_start").exists()
    accepted = api(people["operator"], "post", path, AT_BOOTH, {"text": "wiped down"})
    assert accepted.status_code == 200, accepted.content[:500]
    assert LogbookEntry.objects.get(kind="cleaning_start").station == "BOOTH-01-T1"


@pytest.mark.req("P11-08", "MAT-01")
def test_a_goods_receipt_from_an_unregistered_terminal_is_refused_and_nothing_received(booth) -> None:
    people, _batch, _sim, _client = booth
    clerk = Client()
    clerk.force_login(people["warehouse"])
    lots = Lot.objects.count()
    response = clerk.post(
        "/lots/receive/",
        {
            "material": str(Material.objects.get(code="PCM").pk),
            "number": "L-NEW",
            "expires_at": (timezone.now() + dt.timedelta(days=700)).strftime("%Y-%m-%dT%H:%M"),
            "containers": "10",
        },
        REMOTE_ADDR=STRANGER,
    )
    assert REFUSED_WORDS in response.content.decode()
    assert Lot.objects.count() == lots and not Container.objects.filter(lot__number="L-NEW").exists()


def test_the_terminal_is_the_connecting_address_unless_a_trusted_proxy_forwarded_it() -> None:
    forged = {"REMOTE_ADDR": "10.9.9.9", "HTTP_X_FORWARDED_FOR": "10.20.1.5"}
    assert client_address(forged) == "10.9.9.9"  # no proxy trusted: the header is anyone's
    assert client_address(forged, ("192.168.0.1",)) == "10.9.9.9"
    proxied = {"REMOTE_ADDR": "192.168.0.1", "HTTP_X_FORWARDED_FOR": "10.20.1.99, 10.20.1.5"}
    # The proxy appended the terminal at the right end; what the client wrote on the left is not read.
    assert client_address(proxied, ("192.168.0.0/24",)) == "10.20.1.5"
    assert client_address({"REMOTE_ADDR": "::ffff:10.20.1.5"}) == "10.20.1.5"


def test_a_new_installation_has_the_control_on_and_an_upgraded_one_keeps_its_floor_working() -> None:
    assert definitions.seed_values({})["registered_stations_only"] is True
    assert (
        definitions.seed_values({"BATCHLINE_REGISTERED_STATIONS_ONLY": "off"})["registered_stations_only"]
        is False
    )
    older = {k: v for k, v in definitions.SEED_DEFAULTS.items() if k != "registered_stations_only"}
    assert definitions.config_from(7, older).registered_stations_only is False
