"""The periodic evaluation on a real database (Annex 11 §11): the period's records, as they are, and what
Batchline does not record said in words."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from batchline.accounts.alerts import security_alert_raise
from batchline.backup.services import backup_create
from batchline.integrity import verification
from tests.configuration import configure
from tests.conftest import SETUP, make_user
from tests.execution.test_engine import complete, new_batch, run_to_weights
from tests.periodic.helpers import prepare, sign_report
from tests.quality.test_quality_services import make_people, raise_deviation

pytestmark = pytest.mark.django_db


@pytest.mark.req("A11-15", "VAL-10", "A11-10", "A11-14")
@pytest.mark.django_db(transaction=True)
def test_it_reports_the_periods_exceptions_deviations_verification_changes_and_backups(
    live_db, tmp_path
) -> None:
    # Committed data (live_db): the backup reads the database as another connection would.
    began = timezone.now()
    people, recipe = make_people()
    people["admin"] = make_user("admin", ["administrator"])
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    complete(people, batch, "weights", entries={"w1": "598", "w2": "640"}, confirm_out_of_specification=True)
    deviation = raise_deviation(people, [batch.number])
    configure(late_entry_minutes=30)
    verification.checkpoint_now()
    verification.scheduled_verify()
    security_alert_raise(kind="lockout", message="Account eve locked after 5 failed logins.", actor=SETUP)
    backup_create(tmp_path / "nightly.backup", actor=SETUP)
    review = sign_report(people["approver"], prepare(people["admin"]))

    report = prepare(people["admin"], "periodic_evaluation", period_start=began)
    data = report.data()
    assert report.number.startswith("PE-") and report.period_start == began
    (oos,) = [t for t in data["exceptions"]["by_type"] if t["category"] == "critical_value"]
    assert (oos["count"], oos["waiting"]) == (1, 1)
    assert data["exceptions"]["by_severity"]["critical"] == 1
    assert [d["number"] for d in data["deviations"]["raised"]] == [deviation.number]
    assert data["deviations"]["by_classification"] == {"major": 1}
    assert data["deviations"]["capa"]["open_without_reference"] == [deviation.number]
    assert "keeps no CAPA record of its own" in data["deviations"]["capa"]["note"]
    assert data["audit_trail"]["scheduled_runs"] == 1 and data["audit_trail"]["runs_ok"] == 1
    assert data["audit_trail"]["checkpoints"]["count"] >= 1  # the backup takes one too
    (change,) = data["configuration_changes"]
    assert change["changes"] == ["Late entry (minutes): 60 → 30"]
    assert {(r["recipe"], r["event"]) for r in data["recipe_changes"]} >= {(recipe.code, "created")}
    assert [a["kind"] for a in data["security_alerts"]] == ["lockout"]
    (backup,) = data["backups"]["backups"]
    assert backup["file"].endswith("nightly.backup") and len(backup["sha256"]) == 64
    assert data["backups"]["restores"] == [] and "scratch database" in data["backups"]["note"]
    assert [r["number"] for r in data["access_reviews"]] == [review.number]
    assert "keeps no incident log" in data["incidents"]["note"]
    assert data["findings"] == [
        "1 open deviation names no CAPA yet.",
        "1 critical security alert was raised.",
    ]


@pytest.mark.req("A11-15", "VAL-10")
def test_a_quiet_period_says_what_did_not_happen_and_the_next_starts_where_the_last_signed_one_ended(
    personas,
) -> None:
    first = sign_report(personas["qa_approver"], prepare(personas["admin"], "periodic_evaluation"))
    assert first.period_start is None
    second = prepare(personas["admin"], "periodic_evaluation")
    assert second.period_start == first.period_end
    data = second.data()
    assert data["exceptions"] == {"total": 0, "by_type": [], "by_severity": {}}
    assert data["findings"] == [
        "No scheduled verification of the audit trail ran in the period: is the worker running?",
        "No backup was recorded in the period.",
        "No access review was signed in the period.",
    ]
    assert data["previous"]["number"] == first.number


@pytest.mark.req("A11-15")
def test_a_period_that_ends_before_it_starts_is_refused(personas) -> None:
    from batchline.periodic.services import ReportRefused

    now = timezone.now()
    with pytest.raises(ReportRefused, match="must end after it starts"):
        prepare(
            personas["admin"], "periodic_evaluation", period_start=now, period_end=now - dt.timedelta(days=1)
        )
