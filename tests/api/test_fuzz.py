"""Property-based fuzzing of every API operation (schemathesis over the OpenAPI document).

The operations are read from the API's own OpenAPI document, so an endpoint
added later is fuzzed without editing this file. Schemathesis generates valid
and invalid input (wrong types, missing fields, strings where numbers go);
half the examples of an operation that names a batch, a step, a recipe, a lot or a
person are aimed at real ones (a running batch at its data entry step), so
the input reaches the services instead of stopping at "no such batch".
Whatever the input, the API answers without a server error, and a refused
request (4xx) writes nothing: no audit entry but the record of a refused
attempt where GMP asks for one. The audit trail is the measure, since every
GMP write appends to it (DESIGN invariant 1): a record added by any app,
today's or a later one's, is covered.

Bounded for two cores: a dozen examples per operation, derandomized, so a run
takes about a minute and CI never fails on a new random find (run with
``--hypothesis-seed=random`` to explore).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from batchline.audit.models import AuditEntry
from batchline.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)

# Refused attempts GMP records: allowed on a refusal (the failed signature, the refused step action).
REFUSAL_ACTIONS = {
    "signature_failed",
    "login_failed",
    "password_change_failed",
    "sign_as_other_refused",
    "refused_after_release",
    "lockout",
    "address_lockout",
    # An ERP message refused is kept with its reason (A11-07: a rejected exchange is reported).
    "message_refused",
}
# The path parameters aimed at real records, half the time.
AIMED = frozenset({"number", "key", "recipe_id", "other_id", "user_id", "material"})


def written_since(mark: int) -> list[str]:
    """GMP writes after audit entry ``mark``, other than the records of a refused attempt."""
    found = []
    for e in AuditEntry.objects.filter(id__gt=mark).order_by("id"):
        if e.action in REFUSAL_ACTIONS or e.record_type == "execution.batchexception":
            continue
        if e.record_type == "execution.batch" and set(json.loads(e.changes)) == {"blocking_exceptions"}:
            continue  # a blocking refusal counted on its batch
        found.append(f"{e.action} {e.record_type}:{e.record_id}")
    return found


def last_entry() -> int:
    return AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.fixture
def keep_connection():
    """Calls go straight to the WSGI application; like Django's test client, keep the test's connection open."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


class World:
    """Real records to aim at, made on first need (most operations name none), and whose turn it is."""

    def __init__(self) -> None:
        self._ids: dict[str, Any] | None = None
        self.examples = 0

    def ids(self) -> dict[str, Any]:
        if self._ids is None:
            from tests.execution.test_engine import make_plant, new_batch, run_to_weights

            people, recipe = make_plant()
            batch = new_batch(people, recipe)
            run_to_weights(people, batch)
            self._ids = {
                "number": batch.number,
                "key": "weights",
                "recipe_id": recipe.pk,
                "other_id": recipe.pk,
                "user_id": people["operator"].pk,
                # With the batch's number, its output lot (inventory/lots/{material}/{number}).
                "material": "TST",
            }
        return self._ids


@pytest.fixture
def world(db) -> World:
    """One per operation's test: its database is rolled back after it, the examples share it."""
    return World()


@pytest.fixture
def token(db, keep_connection) -> str:
    from tests.api.test_api import token_for
    from tests.conftest import make_user

    # Every role: the widest reach, so generated input gets past the permission checks to the services.
    roles = ["administrator", "supervisor", "operator", "warehouse", "recipe_author", "qa_reviewer"]
    user = make_user("fuzzer", [*roles, "qa_approver", "engineer", "erp_interface", "lims_interface"])
    return token_for(user)


@pytest.mark.req("A11-05", "NFR-05", "DI-05")
@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_makes_the_api_fail_or_write_on_refusal(case, token, world) -> None:
    world.examples += 1
    aimed = [p for p in (case.path_parameters or {}) if p in AIMED]
    if aimed and world.examples % 2 == 0:
        real = world.ids()
        case.path_parameters = {**case.path_parameters, **{p: real[p] for p in aimed}}
    mark = last_entry()
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    if 400 <= response.status_code < 500:
        leaked = written_since(mark)
        assert not leaked, (
            case.method,
            case.formatted_path,
            response.status_code,
            response.text[:300],
            leaked,
        )


@pytest.mark.req("A11-05", "NFR-05")
def test_every_operation_of_the_openapi_document_is_fuzzed(client) -> None:
    """The fuzzed operations are the document's own list: a new endpoint is in it without a change here."""
    document = client.get("/api/v1/openapi.json").json()
    listed = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    fuzzed = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    assert fuzzed == listed
    assert len({p for m, p in listed if m == "POST"}) >= 30
