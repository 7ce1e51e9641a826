"""Qualification of a person without a database, at the expiry boundary (T − 1 s, T, T + 1 s)."""

from __future__ import annotations

import datetime as dt

import pytest

from batchline.rules.training import TrainingView, qualified

T = dt.datetime(2026, 3, 3, 14, 5, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


def record(**kw) -> TrainingView:
    values = {
        "code": "SOP-GRAN-001",
        "title": "High-shear granulation",
        "version": 2,
        "trained_at": T - dt.timedelta(days=300),
        "expires_at": T,
    }
    return TrainingView(**(values | kw))


@pytest.mark.req("TRN-01", "P11-09")
@pytest.mark.parametrize(
    ("offset", "refused"),
    [(-SECOND, False), (dt.timedelta(0), True), (SECOND, True)],
    ids=["T-1s", "T", "T+1s"],
)
def test_a_training_expires_at_its_instant(offset, refused) -> None:
    verdict = qualified([record()], "SOP-GRAN-001", T + offset)
    assert verdict.codes == (["QUALIFICATION_EXPIRED"] if refused else [])
    if refused:
        assert verdict.reasons[0].message == (
            "Your training on SOP-GRAN-001 (High-shear granulation) expired at 14:05 UTC: retraining is needed first."
        )


@pytest.mark.req("TRN-01", "P11-09")
def test_without_a_record_the_person_is_not_qualified() -> None:
    verdict = qualified(
        [record(code="SOP-WD-001")], "SOP-GRAN-001", T, person="Omar Operator", title="Granulation"
    )
    assert verdict.codes == ["QUALIFICATION_MISSING"]
    assert verdict.reasons[0].message.startswith(
        "Omar Operator has no training record for SOP-GRAN-001 (Granulation)"
    )


def test_a_record_without_expiry_holds_and_a_newer_record_renews_an_expired_one() -> None:
    assert qualified([record(expires_at=None)], "SOP-GRAN-001", T).allowed
    renewed = record(trained_at=T - dt.timedelta(days=1), expires_at=T + dt.timedelta(days=365))
    assert qualified([record(), renewed], "SOP-GRAN-001", T).allowed


def test_a_record_dated_in_the_future_does_not_qualify_yet() -> None:
    verdict = qualified([record(trained_at=T + SECOND, expires_at=None)], "SOP-GRAN-001", T)
    assert verdict.codes == ["QUALIFICATION_MISSING"]


@pytest.mark.req("TRN-01")
def test_training_on_an_older_version_of_the_sop_does_not_count() -> None:
    verdict = qualified([record(expires_at=None)], "SOP-GRAN-001", T, version=3, person="Omar Operator")
    assert verdict.codes == ["QUALIFICATION_OUTDATED"]
    assert "trained on version 2" in verdict.reasons[0].message
    assert qualified([record(expires_at=None)], "SOP-GRAN-001", T, version=2).allowed
