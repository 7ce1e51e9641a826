"""Process values from the machine on a running step: the recipe's monitors, the alarms they raise on the
batch, their acknowledgement, and the step that waits for it (issue 15)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from django.db import transaction

from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor, record_create
from batchline.equipment import services as eq
from batchline.equipment.models import Site
from batchline.execution import monitoring
from batchline.execution.models import BatchException, ProcessAlarm
from batchline.execution.services import ExecutionRefused
from batchline.recipes.document import RecipeInvalid, parse
from batchline.rules.alarms import AlarmJudge
from tests.conftest import make_user
from tests.execution.test_engine import A, complete, effective_recipe, product_master_data, start

pytestmark = pytest.mark.django_db
GATEWAY = Actor(id=None, username="gateway", name="Equipment gateway", via="system")

RECIPE = """\
format: batchline.recipe/1
recipe: {code: DRY-1, name: Drying, product_code: DRYT, product_name: Dried granules, batch_size: {quantity: 10, unit: kg}}
operations:
  - key: dry
    name: Drying
    steps:
      - {key: dryer, kind: equipment_id, title: Identify the dryer, equipment_class: FBD}
      - key: drying
        kind: instruction
        title: Dry the granules
        monitors:
          - {name: inlet_temp, label: Inlet air temperature, unit: "°C", equipment: dryer, specification: {low: 50, high: 70}, action: {low: 55, high: 65}, deadband: 0.5, min_seconds: 10, critical: true}
          - {name: airflow, label: Air flow, unit: "m**3/h", equipment: dryer, action: {low: 800, high: 1200}}
"""


@pytest.fixture
def plant():
    return make_monitoring_plant()


def make_monitoring_plant():
    """The recipe made effective, a clean dryer, a batch with the dryer identified and drying running."""
    return make_dryer_plant(RECIPE, "drying")


def make_dryer_plant(recipe_text: str, running: str):
    """A recipe of product DRYT made effective, a clean dryer FBD-01, a batch with the dryer identified
    at step ``dryer`` and step ``running`` started."""
    people = {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "operator": make_user("operator", ["operator"]),
        "engineer": make_user("engineer", ["administrator"]),
        "auditor": make_user("auditor", ["auditor"]),
    }
    recipe = effective_recipe(people, recipe_text)
    product_master_data(people["author"], "DRYT", "Dried granules", "kg")
    engineer = A(people["engineer"])
    with transaction.atomic():
        site = record_create(Site(code="s1", name="Site 1"), actor=engineer)
    fbd = eq.equipment_class_create(actor=engineer, code="FBD", name="Fluid-bed dryer")
    eq.equipment_create(actor=engineer, site=site, code="FBD-01", name="Dryer 1", equipment_class=fbd)
    eq.cleaning_start(actor=A(people["operator"]), code="FBD-01")
    eq.cleaning_end(actor=A(people["operator"]), code="FBD-01")
    from tests.execution.test_engine import new_batch

    batch = new_batch(people, recipe, quantity="10")
    start(people, batch, "dryer")
    from batchline.execution import services as ex

    ex.step_scan(
        actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="dryer", scan="EQ:FBD-01"
    )
    complete(people, batch, "dryer")
    start(people, batch, running)
    return people, batch


def judge(w: monitoring.Watched, values: list[str | None], every: int = 5) -> list:
    """Feed values as the gateway would, every ``every`` seconds from the step's start; record each event."""
    j = AlarmJudge(w.limits)
    kept = []
    for i, v in enumerate(values):
        at = w.started_at + dt.timedelta(seconds=i * every)
        for event in j.value(at, None if v is None else D(v), usable=v is not None):
            kept.append(
                monitoring.event_record(actor=GATEWAY, watched=w, judged=event, tag="ns=2;s=FBD.Inlet")
            )
    return kept


@pytest.mark.req("S95-06", "IPC-01", "RBE-01", "DEV-01")
def test_a_critical_parameter_out_of_specification_from_the_machine_stops_the_batch_and_waits_for_acknowledgement(
    plant,
) -> None:
    people, batch = plant
    watched = {w.name: w for w in monitoring.watched()}
    assert set(watched) == {"inlet_temp", "airflow"}
    inlet = watched["inlet_temp"]
    assert (inlet.batch, inlet.step_key, inlet.equipment, inlet.critical) == (
        batch.number,
        "drying",
        "FBD-01",
        True,
    )

    kept = judge(inlet, ["60", "66", "66", "66", "71", "72", "71.5", "60"])
    assert [(a.event, a.level) for a in kept] == [
        ("raised", "high"),
        ("changed", "high-high"),
        ("cleared", "high-high"),
    ]
    alarm, worse, _cleared = kept
    assert alarm.exception.code == "PROCESS_ALARM" and not alarm.exception.blocks
    assert worse.exception.code == "CRITICAL_OUT_OF_SPECIFICATION" and worse.exception.blocks
    assert "Inlet air temperature on FBD-01: 71 °C" in worse.exception.message
    assert "above its specification 50–70 °C (high-high)" in worse.exception.message
    assert "(extreme 72 °C)" in worse.exception.message
    assert worse.equipment == "FBD-01" and worse.tag == "ns=2;s=FBD.Inlet"
    assert [a.needs_acknowledgement for a in kept] == [True, True, False]

    # Replayed after a gateway restart: nothing kept twice, nothing raised twice.
    assert judge(inlet, ["60", "66", "66", "66", "71", "72", "71.5", "60"]) == [None, None, None]
    assert BatchException.objects.filter(batch=batch).count() == 2

    with pytest.raises(ExecutionRefused) as refused:
        complete(people, batch, "drying")
    assert "ALARM_UNACKNOWLEDGED" in refused.value.verdict.codes
    assert "Acknowledge the process alarms of Inlet air temperature first (2 open)" in str(refused.value)

    with pytest.raises(monitoring.AlarmRefused, match="Say what was done"):
        monitoring.alarm_acknowledge(actor=A(people["operator"]), alarm_id=alarm.pk, comment=" ")
    with pytest.raises(monitoring.AlarmRefused, match="do not allow"):
        monitoring.alarm_acknowledge(actor=A(people["auditor"]), alarm_id=alarm.pk, comment="seen")
    for a in (alarm, worse):
        monitoring.alarm_acknowledge(
            actor=A(people["operator"]),
            alarm_id=a.pk,
            comment="Steam valve reset; temperature back in range.",
        )
    with pytest.raises(monitoring.AlarmRefused, match="already"):
        monitoring.alarm_acknowledge(actor=A(people["operator"]), alarm_id=alarm.pk, comment="again")
    acked = AuditEntry.objects.filter(record_type="execution.processalarm", action="acknowledge")
    assert {(e.actor_username, e.reason) for e in acked} == {
        ("operator", "Steam valve reset; temperature back in range.")
    }
    # Acknowledged, the step may complete as far as its alarms go; the critical exception still stops
    # the batch until QA dispositions it.
    with pytest.raises(ExecutionRefused) as refused:
        complete(people, batch, "drying")
    assert "ALARM_UNACKNOWLEDGED" not in refused.value.verdict.codes
    assert "is stopped" in str(refused.value)


@pytest.mark.req("S95-06", "DI-05")
def test_a_lost_signal_is_an_exception_of_its_own_and_a_non_critical_parameter_only_alarms(plant) -> None:
    _people, batch = plant
    watched = {w.name: w for w in monitoring.watched()}
    lost, back, raised = judge(watched["airflow"], ["1000", None, "1300", "1300"])
    assert (lost.event, lost.exception.code, lost.exception.blocks) == ("signal lost", "SIGNAL_LOST", False)
    assert back.event == "signal back" and back.exception is None and not back.needs_acknowledgement
    assert (raised.event, raised.level, raised.exception.code) == ("raised", "high", "PROCESS_ALARM")
    (critical_loss,) = judge(watched["inlet_temp"], ["60", None])
    assert critical_loss.exception.code == "CRITICAL_SIGNAL_LOST" and critical_loss.exception.blocks
    batch.refresh_from_db()
    assert batch.blocking_exceptions == 1
    assert ProcessAlarm.objects.filter(step__batch=batch).count() == 4


@pytest.mark.req("IPC-01", "S95-06")
def test_a_recipe_reads_the_machine_only_of_an_earlier_equipment_step_with_limits_and_a_known_unit() -> None:
    bad = RECIPE.replace("equipment: dryer, action", "equipment: drying, action").replace(
        'unit: "m**3/h", equipment', 'unit: "parsecs per fortnight", equipment'
    )
    with pytest.raises(RecipeInvalid) as invalid:
        parse(bad)
    said = str(invalid.value)
    assert (
        "'airflow' is read from the unit of 'drying', which must be an equipment identification step" in said
    )
    with pytest.raises(RecipeInvalid, match="give its limits"):
        parse(RECIPE.replace(", action: {low: 800, high: 1200}", ""))
    with pytest.raises(RecipeInvalid, match="action limits lie outside the specification limits"):
        parse(RECIPE.replace("action: {low: 55, high: 65}", "action: {low: 45, high: 65}"))
    # A recipe without monitors hashes as it always did: the field is not written when empty.
    from batchline.recipes.document import canonical

    plain = parse(RECIPE.split("        monitors:")[0])
    assert all("monitors" not in step for op in canonical(plain)["operations"] for step in op["steps"])


@pytest.mark.req("S95-06", "DI-01")
def test_the_api_lists_a_steps_process_alarms_and_an_operator_acknowledges_one(plant) -> None:
    from django.test import Client

    from tests.api.test_api import token_for

    people, batch = plant
    inlet = {w.name: w for w in monitoring.watched()}["inlet_temp"]
    judge(inlet, ["60", "66", "66", "66"])
    operator = Client(headers={"Authorization": f"Bearer {token_for(people['operator'])}"})
    base = f"/api/v1/batches/{batch.number}/steps/drying/alarms"
    (alarm,) = operator.get(base).json()
    assert (alarm["event"], alarm["level"], alarm["exception_code"], alarm["equipment"]) == (
        "raised",
        "high",
        "PROCESS_ALARM",
        "FBD-01",
    )
    assert alarm["needs_acknowledgement"] and alarm["acknowledged_by"] == ""
    url = f"{base}/{alarm['id']}/acknowledge"
    refused = operator.post(url, {"comment": " "}, content_type="application/json")
    assert refused.status_code == 409 and refused.json()["reasons"][0]["code"] == "COMMENT_REQUIRED"
    auditor = Client(headers={"Authorization": f"Bearer {token_for(people['auditor'])}"})
    assert auditor.post(url, {"comment": "seen"}, content_type="application/json").status_code == 403
    done = operator.post(url, {"comment": "Inlet damper reset."}, content_type="application/json")
    assert done.status_code == 200, done.content
    assert (done.json()["acknowledged_by"], done.json()["comment"]) == ("operator", "Inlet damper reset.")
    assert (
        operator.post(
            f"{base}/999999/acknowledge", {"comment": "x"}, content_type="application/json"
        ).status_code
        == 409
    )


@pytest.mark.req("S95-06", "BR-01", "DI-02")
def test_the_batch_record_shows_each_process_value_its_limits_alarms_and_acknowledgements(
    plant, tmp_path, login
) -> None:
    import re

    from batchline.reports.content import record_content
    from batchline.reports.pdf import render_pdf
    from tests.reports.test_records import pdf_text

    people, batch = plant
    inlet = {w.name: w for w in monitoring.watched()}["inlet_temp"]
    j = AlarmJudge(inlet.limits, since=inlet.started_at)
    for i, v in enumerate(["60", "66", "66", "66"]):
        for event in j.value(inlet.started_at + dt.timedelta(seconds=5 * i + 1), D(v)):
            monitoring.event_record(actor=GATEWAY, watched=inlet, judged=event, tag="ns=2;s=FBD.Inlet")
    (alarm,) = ProcessAlarm.objects.filter(needs_acknowledgement=True)
    monitoring.alarm_acknowledge(actor=A(people["operator"]), alarm_id=alarm.pk, comment="Damper reset.")

    content = record_content(batch)
    (drying,) = content["process_values"]
    assert drying["step"] == "drying"
    assert [(m["name"], m["specification"], m["action"], m["critical"]) for m in drying["monitors"]] == [
        ("inlet_temp", "50–70 °C", "55–65 °C", True),
        ("airflow", "", "800–1200 m**3/h", False),
    ]
    assert [(e["event"], e["level"], e["value"]) for e in drying["events"]] == [
        ("first value", "in range", "60"),
        ("raised", "high", "66"),
    ]
    raised = drying["events"][1]
    assert raised["exception_code"] == "PROCESS_ALARM" and raised["acknowledged"]["username"] == "operator"
    # The alarm's audit entries travel with the record (its trail extract).
    assert {"create", "acknowledge"} <= {
        a["action"] for a in content["audit_trail"] if a["record_type"] == "execution.processalarm"
    }

    page = login(people["operator"]).get(f"/batches/{batch.number}/record/")
    assert page.status_code == 200
    section = page.content.decode()
    assert 'data-testid="record-process-values"' in section and "Damper reset." in section
    flat = re.sub(r"\s+", " ", pdf_text(render_pdf(content, time_zone="UTC"), tmp_path))
    assert "Process values from the machine" in flat and "Damper reset." in flat
    assert "PROCESS_ALARM" in flat


@pytest.mark.req("S95-06", "BR-03")
def test_an_archive_of_a_batch_with_process_alarms_verifies(plant) -> None:
    from batchline.keys import installation_public_key
    from batchline.reports.archive import archive_export
    from batchline.reports.verify import verify_archive

    people, batch = plant
    inlet = {w.name: w for w in monitoring.watched()}["inlet_temp"]
    judge(inlet, ["60", "66", "66", "66"])
    (alarm,) = ProcessAlarm.objects.filter(needs_acknowledgement=True)
    monitoring.alarm_acknowledge(actor=A(people["operator"]), alarm_id=alarm.pk, comment="Damper reset.")
    data, manifest_hash = archive_export(batch)
    report = verify_archive(data, public_key=installation_public_key(), manifest_sha256=manifest_hash)
    assert report.ok, report.problems


@pytest.mark.req("S95-06", "P11-06", "BR-02")
def test_the_release_binds_what_the_judges_of_the_process_values_said(plant) -> None:
    from batchline.reports.content import record_content
    from batchline.rules.bindings import approved_record

    people, batch = plant
    before = approved_record(record_content(batch))
    inlet = {w.name: w for w in monitoring.watched()}["inlet_temp"]
    judge(inlet, ["60", "66", "66", "66"])
    (alarm,) = ProcessAlarm.objects.filter(needs_acknowledgement=True)
    monitoring.alarm_acknowledge(actor=A(people["operator"]), alarm_id=alarm.pk, comment="Damper reset.")
    bound = approved_record(record_content(batch))
    (values,) = bound["process_values"]
    assert [e["event"] for e in values["events"]] == ["raised"] and values["events"][0][
        "comment"
    ] == "Damper reset."
    # Someone who can write to the database rewrites the acknowledgement: what a stage signed differs.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ProcessAlarm._meta.db_table} SET comment = %s WHERE id = %s",
            ["Nothing happened.", alarm.pk],
        )
    assert approved_record(record_content(batch)) != bound
    assert before["process_values"] == [{"step": "drying", "events": [], "trends": []}]


@pytest.mark.req("S95-06", "A11-05")
def test_a_refused_acknowledgement_on_the_screen_says_why_and_writes_nothing(plant, login) -> None:
    people, batch = plant
    inlet = {w.name: w for w in monitoring.watched()}["inlet_temp"]
    judge(inlet, ["60", "66", "66", "66"])
    (alarm,) = ProcessAlarm.objects.filter(needs_acknowledgement=True)
    operator = login(people["operator"])  # logging in is audited: counted from here
    before = AuditEntry.objects.count()
    page = operator.post(
        f"/batches/{batch.number}/steps/drying/acknowledge/", {"alarm": alarm.pk, "comment": "  "}
    )
    assert page.status_code == 422
    text = page.content.decode()
    assert "Say what was done about the alarm." in text and "Nothing was recorded." in text
    assert "except this refused attempt" not in text
    assert AuditEntry.objects.count() == before
