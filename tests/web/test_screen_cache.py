"""The execution screen is served from a cache, and still shows the current truth after every write."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from batchline.accounts.services import user_update
from batchline.execution import services as ex
from tests.conftest import PASSWORD
from tests.execution.test_engine import A, age, complete, make_plant, new_batch, sign, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(db):
    return make_plant()


URL = "/batches/B-001/"


def screen(c: Client, url: str = URL, **headers: str) -> str:
    response = c.get(url, **headers)
    assert response.status_code == 200
    return response.content.decode()


def reads_steps(c: Client, url: str = URL) -> bool:
    """Whether serving ``url`` read the batch's steps (False: it came from the cache)."""
    with CaptureQueriesContext(connection) as ctx:
        screen(c, url)
    return any("execution_batchstep" in q["sql"] for q in ctx.captured_queries)


def step_state(html: str, key: str) -> str:
    found = re.search(
        rf'data-step="{key}">\s*<span class="step-title">[^<]*</span>\s*<span class="step-state">([^<]*)<',
        html,
    )
    assert found, key
    return found.group(1)


@pytest.mark.req("NFR-06", "S88-05", "IPC-01", "DI-05", "P11-13")
def test_the_cached_screen_shows_every_write_at_once(plant, login) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    c = login(people["operator"])
    html = screen(c)
    assert step_state(html, "clearance") == "not started"
    assert not reads_steps(c), "the second look comes from the cache"
    assert not reads_steps(c)

    start(people, batch, "clearance")
    assert step_state(screen(c), "clearance") == "in progress"
    complete(people, batch, "clearance", checklist=[True, True], signer=sign(people["operator"]))
    html = screen(c, f"{URL}?step=clearance")
    assert step_state(html, "clearance") == "complete"
    assert "Operator Person — Performed —" in html  # the signature's manifestation

    mix = start(people, batch, "mix")
    age(mix, 5)
    complete(people, batch, "mix")
    start(people, batch, "weights")
    assert reads_steps(c, f"{URL}?step=clearance"), "the head moved: read once more"
    assert not reads_steps(c, f"{URL}?step=clearance")
    complete(people, batch, "weights", entries={"w1": "598", "w2": "640"}, confirm_out_of_specification=True)
    html = screen(c, f"{URL}?step=weights")
    assert "640 mg" in html and "598 mg" in html
    exceptions = html.split('data-testid="exceptions"')[1]
    assert "No exceptions." not in exceptions and "640" in exceptions and "Tablet weights" in exceptions

    # A correction: the new value on top, the original still there.
    ex.value_correct(
        user=people["operator"],
        actor=A(people["operator"]),
        batch=batch,
        step_key="weights",
        name="w2",
        text="604",
        reason="transcription error",
        signer=sign(people["operator"]),
    )
    html = screen(c, f"{URL}?step=weights")
    assert "604 mg" in html and "correction: transcription error" in html and "(original)" in html

    # A person's printed name is GMP data too: renamed, the screen says so at once.
    user_update(
        actor=A(people["supervisor"]),
        user=people["operator"],
        full_name="Olga Renamed",
        email="",
        reason="name change",
    )
    assert "by Olga Renamed" in screen(c, f"{URL}?step=weights")

    # The batch's own state.
    ex.batch_command(
        actor=A(people["supervisor"]),
        batch=batch,
        command="hold",
        signer=sign(people["supervisor"]),
        reason="cleaning check",
    )
    assert 'data-testid="batch-state">Held<' in screen(c)


@pytest.mark.req("NFR-06", "P11-19", "P11-20")
def test_each_person_sees_their_own_commands_and_signing_dialog(plant, login) -> None:
    people, recipe = plant
    new_batch(people, recipe)
    operator, supervisor = login(people["operator"]), login(people["supervisor"])
    operator2 = login(people["operator2"])
    screen(operator), screen(supervisor), screen(operator2)  # all filed in the cache
    assert "Hold…" not in screen(operator)
    assert "(operator)</span>" in screen(operator) and "(operator2)</span>" in screen(operator2)
    html = screen(supervisor)
    assert "Hold…" in html and 'name="signer_username"' in html  # first signing: user ID and password

    response = supervisor.post(
        f"{URL}command/hold/",
        {"reason": "check", "signer_username": "supervisor", "signer_password": PASSWORD},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = screen(supervisor)
    # The session has signed: the password alone now.
    assert "Resume…" in html and 'name="signer_username"' not in html
    # Another session of the same person has not signed yet: user ID and password again.
    assert screen(login(people["supervisor"])).count('name="signer_username"') > 1


@pytest.mark.req("NFR-06", "P11-04")
def test_a_cached_page_carries_the_requests_own_csrf_token(plant) -> None:
    people, recipe = plant
    new_batch(people, recipe)
    c = Client(enforce_csrf_checks=True)
    c.force_login(people["operator"])
    first, second = screen(c), screen(c)
    tokens = set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', second))
    assert len(tokens) == 1 and re.fullmatch(r"[A-Za-z0-9]{64}", next(iter(tokens)))
    assert tokens.isdisjoint(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', first))
    response = c.post(f"{URL}scan/", {"code": "mix", "csrfmiddlewaretoken": tokens.pop()})
    assert response.status_code == 200 and "Dry mix" in response.content.decode()
    assert c.post(f"{URL}scan/", {"code": "mix"}).status_code == 403


@pytest.mark.req("NFR-06")
def test_a_message_is_shown_once_and_never_cached(plant, login) -> None:
    people, recipe = plant
    c = login(people["supervisor"])
    response = c.post(
        "/batches/new/", {"recipe": str(recipe.pk), "number": "B-001", "planned_quantity": "500"}, follow=True
    )
    assert "Batch B-001 created" in response.content.decode()
    assert "Batch B-001 created" not in screen(c)
    assert "Batch B-001 created" not in screen(c)


@pytest.mark.req("NFR-06")
def test_refusals_and_open_transactions_are_never_cached(plant, login) -> None:
    people, recipe = plant
    new_batch(people, recipe)
    c = login(people["operator"])
    refused = c.post(f"{URL}steps/mix/start/", HTTP_HX_REQUEST="true")
    assert refused.status_code == 422 and "Not done." in refused.content.decode()
    assert "Not done." not in screen(c)
    assert "Not done." not in screen(c, HTTP_HX_REQUEST="true")

    caches["screens"].clear()
    with transaction.atomic():
        screen(c)
        assert reads_steps(c), "inside a transaction the head may yet roll back: no cache"


@pytest.mark.req("NFR-06")
def test_an_unknown_batch_is_404_and_htmx_gets_the_panel_alone(plant, login) -> None:
    people, recipe = plant
    ex.batch_create(actor=A(people["supervisor"]), recipe=recipe, number="B-001", planned_quantity=Decimal(5))
    c = login(people["operator"])
    assert c.get("/batches/NOPE/").status_code == 404
    panel = screen(c, HTTP_HX_REQUEST="true")
    assert panel.lstrip().startswith('<div id="execution"') and "<html" not in panel
    assert "<html" in screen(c)
