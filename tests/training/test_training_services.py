"""Qualifications and training records on a real database; the gate execution asks (TRN-01, P11-09)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor, record_update
from batchline.audit.verify import verify
from batchline.training import services as svc
from batchline.training.models import TrainingRecord
from batchline.training.selectors import training_records, user_qualified
from tests.conftest import entries, make_user

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)


def A(user) -> Actor:
    return Actor.of(user, via="web")


@pytest.fixture
def school(db) -> dict[str, Any]:
    people = {
        "qa": make_user("qa_reviewer", ["qa_reviewer"]),
        "operator": make_user("operator", ["operator"]),
        "operator2": make_user("operator2", ["operator"]),
    }
    svc.qualification_create(
        actor=A(people["qa"]), code="sop-gran-001", title="High-shear granulation", version=2
    )
    return people


def train(people, who: str, *, days_ago: int = 10, valid_days: int | None = 365, code: str = "SOP-GRAN-001"):
    now = timezone.now()
    return svc.training_record_add(
        actor=A(people["qa"]),
        user=people[who],
        code=code,
        trained_at=now - dt.timedelta(days=days_ago),
        expires_at=now - dt.timedelta(days=days_ago) + dt.timedelta(days=valid_days) if valid_days else None,
        reason="training session 2026-03",
    )


@pytest.mark.req("TRN-01", "P11-09", "P11-05")
def test_a_training_record_is_audited_with_its_reason_and_version(school) -> None:
    record = train(school, "operator")
    assert (record.version, record.recorded_by, record.qualification.code) == (
        2,
        school["qa"],
        "SOP-GRAN-001",
    )
    (entry,) = entries(record_type="training.trainingrecord", record_id=str(record.pk))
    assert entry.reason == "training session 2026-03" and entry.actor_username == "qa_reviewer"
    assert user_qualified(school["operator"].pk, "SOP-GRAN-001", timezone.now()).allowed
    assert verify().ok


@pytest.mark.req("TRN-01", "P11-09")
def test_an_expired_training_refuses_that_person_only(school) -> None:
    train(school, "operator", days_ago=400, valid_days=365)
    train(school, "operator2")
    now = timezone.now()
    verdict = user_qualified(school["operator"].pk, "SOP-GRAN-001", now)
    assert verdict.codes == ["QUALIFICATION_EXPIRED"] and "expired at" in verdict.reasons[0].message
    assert user_qualified(school["operator2"].pk, "SOP-GRAN-001", now).allowed


@pytest.mark.req("TRN-01", "P11-09")
def test_the_expiry_instant_itself_is_expired(school) -> None:
    record = train(school, "operator")
    with transaction.atomic():
        expiry = timezone.now()
        record_update(
            record, actor=Actor(None, "test-clock", "Test clock", "system"), values={"expires_at": expiry}
        )
    assert user_qualified(school["operator"].pk, "SOP-GRAN-001", expiry - dt.timedelta(seconds=1)).allowed
    assert user_qualified(school["operator"].pk, "SOP-GRAN-001", expiry).codes == ["QUALIFICATION_EXPIRED"]


@pytest.mark.req("TRN-01", "P11-09")
def test_no_record_or_an_unknown_qualification_refuses(school) -> None:
    now = timezone.now()
    assert user_qualified(school["operator"].pk, "SOP-GRAN-001", now).codes == ["QUALIFICATION_MISSING"]
    assert user_qualified(school["operator"].pk, "SOP-NOPE", now).codes == ["QUALIFICATION_UNKNOWN"]


@pytest.mark.req("TRN-01", "TRN-02")
def test_a_new_sop_version_needs_new_training(school) -> None:
    train(school, "operator", valid_days=None)
    svc.qualification_revise(
        actor=A(school["qa"]), code="SOP-GRAN-001", version=3, reason="change control CC-12"
    )
    assert user_qualified(school["operator"].pk, "SOP-GRAN-001", timezone.now()).codes == [
        "QUALIFICATION_OUTDATED"
    ]
    train(school, "operator", days_ago=0, valid_days=None)
    assert user_qualified(school["operator"].pk, "SOP-GRAN-001", timezone.now()).allowed


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"reason": " "}, "REASON_REQUIRED"),
        ({"trained_at": "future"}, "TRAINED_IN_FUTURE"),
        ({"expires_at": "before"}, "EXPIRES_BEFORE_TRAINED"),
        ({"code": "SOP-NOPE"}, "UNKNOWN_QUALIFICATION"),
        ({"who": "qa"}, "OWN_TRAINING"),
    ],
)
def test_a_training_record_that_cannot_be_true_is_refused_and_writes_nothing(school, change, code) -> None:
    now = timezone.now()
    kw: dict[str, Any] = {
        "actor": A(school["qa"]),
        "user": school[change.get("who", "operator")],
        "code": change.get("code", "SOP-GRAN-001"),
        "trained_at": now + DAY if change.get("trained_at") == "future" else now - DAY,
        "expires_at": now - 2 * DAY if change.get("expires_at") == "before" else None,
        "reason": change.get("reason", "session"),
    }
    before = AuditEntry.objects.count()
    with pytest.raises(svc.TrainingRefused) as refusal:
        svc.training_record_add(**kw)
    assert refusal.value.verdict.codes == [code]
    assert AuditEntry.objects.count() == before and not TrainingRecord.objects.exists()


def test_qualification_codes_are_unique_and_well_formed(school) -> None:
    with pytest.raises(svc.TrainingRefused, match="exists already"):
        svc.qualification_create(actor=A(school["qa"]), code="SOP-GRAN-001", title="again")
    with pytest.raises(svc.TrainingRefused, match="capitals"):
        svc.qualification_create(actor=A(school["qa"]), code="bad code!", title="x")


def test_records_are_read_per_person_or_per_qualification(school) -> None:
    train(school, "operator")
    train(school, "operator2")
    assert training_records(user_id=school["operator"].pk).count() == 1
    assert training_records(code="SOP-GRAN-001").count() == 2
