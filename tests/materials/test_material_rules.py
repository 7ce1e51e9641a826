"""The material gate without a database: every reason, time at the boundary (T − 1 s, T, T + 1 s)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from batchline.rules.materials import ContainerView, LotView, container_usable, lot_usable, when

T = dt.datetime(2026, 11, 25, 13, 5, tzinfo=dt.UTC)
S = dt.timedelta(seconds=1)
BERLIN = ZoneInfo("Europe/Berlin")


def lot(**kw) -> LotView:
    base = dict(
        number="L-0042",
        material_code="PCM",
        material_name="Paracetamol",
        status="released",
        expires_at=T,
        retest_at=None,
    )
    return LotView(**{**base, **kw})


def container(**kw) -> ContainerView:
    base = dict(code="C-000001", lot=lot(), quantity=Decimal("25"), unit="kg")
    return ContainerView(**{**base, **kw})


@pytest.mark.req("MAT-02", "WD-05")
@pytest.mark.parametrize(("now", "usable"), [(T - S, True), (T, False), (T + S, False)])
def test_a_lot_is_usable_strictly_before_its_expiry_instant(now, usable) -> None:
    assert lot_usable(lot(), now).allowed is usable


@pytest.mark.req("MAT-02", "P11-06")
def test_the_expiry_refusal_names_the_lot_and_when_it_expired_in_the_site_time() -> None:
    verdict = lot_usable(lot(), T + dt.timedelta(minutes=90), BERLIN)
    assert verdict.codes == ["LOT_EXPIRED"]
    # 13:05 UTC is 14:05 in Berlin in November.
    assert verdict.reasons[0].message == (
        "Lot L-0042 of Paracetamol expired at 14:05 CET, 90 minutes ago: it cannot be used."
    )
    later = lot_usable(lot(), T + dt.timedelta(days=3), BERLIN).reasons[0].message
    assert "expired at 14:05 CET on 25 November 2026, 3 days ago" in later


@pytest.mark.req("MAT-03", "WD-05")
@pytest.mark.parametrize(
    ("now", "codes"), [(T - S, []), (T, ["LOT_RETEST_DUE"]), (T + S, ["LOT_RETEST_DUE"])]
)
def test_past_its_retest_instant_a_lot_is_blocked(now, codes) -> None:
    verdict = lot_usable(lot(expires_at=T + dt.timedelta(days=30), retest_at=T), now)
    assert verdict.codes == codes
    if codes:
        assert "blocked until a new result extends it" in verdict.reasons[0].message


@pytest.mark.req("MAT-01", "WD-05")
@pytest.mark.parametrize(
    ("status", "code"),
    [("quarantine", "LOT_IN_QUARANTINE"), ("rejected", "LOT_REJECTED"), ("blocked", "LOT_BLOCKED")],
)
def test_only_released_lots_are_usable(status, code) -> None:
    verdict = lot_usable(lot(status=status, expires_at=T + S), T)
    assert verdict.codes == [code]
    assert "only released lots can be used" in verdict.reasons[0].message


@pytest.mark.req("WD-05", "P11-06")
def test_every_failing_reason_of_a_container_is_named_at_once() -> None:
    bad = container(lot=lot(status="quarantine"), quantity=Decimal(0), reserved_for="B-999")
    verdict = container_usable(bad, T + S, material_code="PCM", batch_number="B-001")
    assert verdict.codes == [
        "LOT_IN_QUARANTINE",
        "LOT_EXPIRED",
        "CONTAINER_EMPTY",
        "RESERVED_FOR_OTHER_BATCH",
    ]


@pytest.mark.req("WD-05")
def test_the_wrong_material_is_refused_before_anything_else() -> None:
    verdict = container_usable(container(), T + S, material_code="MST", batch_number="B-001")
    assert verdict.codes == ["WRONG_MATERIAL"]
    assert verdict.reasons[0].message == (
        "Container C-000001 holds Paracetamol (PCM), not MST: scan the right material."
    )


@pytest.mark.req("WD-05", "MAT-05")
@pytest.mark.parametrize(
    ("needed", "codes"), [("24.999", []), ("25", []), ("25.001", ["NOT_ENOUGH_MATERIAL"])]
)
def test_a_container_that_must_hold_a_quantity_is_judged_at_the_boundary(needed, codes) -> None:
    verdict = container_usable(
        container(lot=lot(expires_at=T + S)),
        T,
        material_code="PCM",
        batch_number="B-1",
        needed=Decimal(needed),
    )
    assert verdict.codes == codes


@pytest.mark.req("WD-05")
def test_a_container_reserved_or_dispensed_for_this_batch_is_fine_for_it() -> None:
    fine = lot(expires_at=T + S)
    assert container_usable(
        container(lot=fine, reserved_for="B-1"), T, material_code="PCM", batch_number="B-1"
    )
    assert container_usable(
        container(lot=fine, dispensed_for="B-1"), T, material_code="PCM", batch_number="B-1"
    )
    other = container_usable(
        container(lot=fine, dispensed_for="B-2"), T, material_code="PCM", batch_number="B-1"
    )
    assert other.codes == ["RESERVED_FOR_OTHER_BATCH"]


def test_times_read_as_people_say_them() -> None:
    assert when(T, T + dt.timedelta(seconds=30), dt.UTC) == "13:05 UTC, 30 seconds ago"
    assert when(T, T + dt.timedelta(hours=5), dt.UTC) == "13:05 UTC, 5 hours ago"
    assert when(T, T - dt.timedelta(minutes=1), dt.UTC) == "13:05 UTC, in 1 minute"
    assert when(T, T, dt.UTC) == "13:05 UTC, just now"
