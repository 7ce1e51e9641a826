"""Process data storage on a real database: batches stored once, partitions, retention, selectors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from batchline.audit.services import Actor
from batchline.gateway import selectors, store
from batchline.gateway import services as svc
from batchline.gateway.models import StoredReading
from batchline.gateway.readings import Quality

from .conftest import ENDPOINT, T0, minute_readings, reading, tag_configured

pytestmark = pytest.mark.django_db


def count() -> int:
    return StoredReading.objects.count()


@pytest.mark.req("S95-06", "A11-07")
def test_a_batch_is_stored_and_the_same_batch_replayed_stores_nothing_twice() -> None:
    batch = minute_readings(50)
    assert store.rows_store(store.rows_of(batch)) == 50
    # A restart replays the last readings, received again later: same observations, same keys.
    replay = [
        reading(r.value, at=r.source_time, received=r.gateway_time + dt.timedelta(hours=1)) for r in batch
    ]
    assert store.rows_store(store.rows_of(replay + minute_readings(3, start=T0 + dt.timedelta(hours=2)))) == 3
    assert count() == 53
    # Twice the same observation inside one batch is one row too.
    twice = minute_readings(1, start=T0 + dt.timedelta(days=1))
    assert store.rows_store(store.rows_of(twice * 2)) == 1


@pytest.mark.req("S95-06", "DI-04")
def test_values_come_back_as_they_came_with_quality_status_and_both_times() -> None:
    values: list[Any] = [21.5, 7, True, "RUNNING", None, 2**60 + 1]
    readings = [
        reading(
            v, at=T0 + dt.timedelta(seconds=i), status=f"s{i}", sequence=str(i), flags=frozenset({"b", "a"})
        )
        for i, v in enumerate(values)
        if v is not None
    ]
    readings.insert(
        4, reading(None, at=T0 + dt.timedelta(seconds=4), quality=Quality.BAD, status="BadSensorFailure")
    )
    readings.append(
        reading(19.0, at=T0 + dt.timedelta(seconds=9), quality=Quality.UNCERTAIN, historical=True)
    )
    store.rows_store(store.rows_of(readings))
    points = selectors.series(unit="GRAN-01", tag="ns=2;s=Inlet", start=T0, end=T0 + dt.timedelta(minutes=1))
    assert [p.value for p in points] == [21.5, 7, True, "RUNNING", None, 2**60 + 1, 19.0]
    assert [type(p.value) for p in points[:4]] == [float, int, bool, str]
    assert [p.quality for p in points][4:] == [Quality.BAD, Quality.GOOD, Quality.UNCERTAIN]
    assert [p.usable for p in points] == [True, True, True, True, False, True, True]
    assert points[4].status == "BadSensorFailure"
    assert points[0].source_time == T0 and points[0].gateway_time == T0 + dt.timedelta(milliseconds=5)
    assert points[-1].historical and not points[0].historical
    assert StoredReading.objects.filter(at=T0).get().flags == "a,b"


@pytest.mark.req("S95-06", "DI-07")
def test_a_reading_without_a_device_time_is_kept_at_the_gateways_time() -> None:
    r = reading(1.0, at=T0)
    no_device_time = type(r)(**{**r.__dict__, "source_time": None})
    store.rows_store(store.rows_of([no_device_time]))
    row = StoredReading.objects.get()
    assert row.source_time is None and row.at == row.gateway_time == r.gateway_time


@pytest.mark.req("P11-05", "DI-06")
def test_a_stored_value_is_never_rewritten() -> None:
    store.rows_store(store.rows_of(minute_readings(1)))
    with pytest.raises(DatabaseError, match="never rewritten"), transaction.atomic():
        StoredReading.objects.update(value_num=99)


@pytest.mark.req("S95-06")
def test_series_returns_one_units_tag_between_two_times_in_order() -> None:
    store.rows_store(store.rows_of(minute_readings(10) + minute_readings(10, tag="ns=2;s=Power")))
    points = selectors.series(
        unit="GRAN-01",
        tag="ns=2;s=Inlet",
        start=T0 + dt.timedelta(minutes=2),
        end=T0 + dt.timedelta(minutes=5),
    )
    assert [p.at for p in points] == [T0 + dt.timedelta(minutes=m) for m in (2, 3, 4)]
    assert selectors.series(unit="DRY-01", tag="ns=2;s=Inlet", start=T0, end=T0 + dt.timedelta(days=1)) == []


def configure_two_tags(plant: dict[str, Any]) -> None:
    engineer = Actor.of(plant["engineer"], via="web")
    svc.endpoint_create(
        actor=engineer, code="plc", name="PLC", protocol="opcua", address=ENDPOINT, reason="r"
    )
    for tag, name in (("ns=2;s=Inlet", "inlet temperature"), ("ns=2;s=Power", "impeller power")):
        tag_configured(
            plant["engineer"],
            plant["approver"],
            endpoint="plc",
            equipment=plant["units"]["GRAN-01"],
            tag=tag,
            name=name,
            reason="r",
        )


@pytest.mark.req("S95-06")
def test_the_last_value_of_each_tag_and_the_stale_tags(
    plant: dict[str, Any], django_assert_num_queries: Any
) -> None:
    configure_two_tags(plant)
    store.rows_store(store.rows_of(minute_readings(5)))
    now = T0 + dt.timedelta(minutes=5)
    with django_assert_num_queries(2):
        last = selectors.last_values()
    with_values = {item.tag.tag: item.last for item in last}
    assert with_values["ns=2;s=Inlet"] is not None and with_values["ns=2;s=Inlet"].value == pytest.approx(
        20.4
    )
    assert with_values["ns=2;s=Power"] is None
    stale = selectors.stale_tags(now=now, older_than=dt.timedelta(minutes=2))
    assert [item.tag.tag for item in stale] == ["ns=2;s=Power"]
    # The source died: the adapter's STALE makes the tag stale however recent.
    store.rows_store(store.rows_of([reading(None, at=now, quality=Quality.STALE, status="NDEATH")]))
    stale = selectors.stale_tags(now=now, older_than=dt.timedelta(minutes=2))
    assert [item.tag.tag for item in stale] == ["ns=2;s=Inlet", "ns=2;s=Power"]
    assert not stale[0].last.usable
    # Time passing alone makes a silent tag stale.
    store.rows_store(store.rows_of([reading(21.0, at=now + dt.timedelta(seconds=1))]))
    assert [i.tag.tag for i in selectors.stale_tags(now=now, older_than=dt.timedelta(minutes=2))] == [
        "ns=2;s=Power"
    ]
    later = now + dt.timedelta(minutes=3)
    assert len(selectors.stale_tags(now=later, older_than=dt.timedelta(minutes=2))) == 2


def partition_of(at: dt.datetime) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM gateway_reading WHERE at = %s", [at])
        return cursor.fetchone()[0]


@pytest.mark.req("S95-06", "NFR-06")
def test_postgresql_stores_each_day_in_its_own_partition_made_when_needed(postgresql_only: None) -> None:
    made = store.partitions_ensure(ahead_days=2, now=T0)
    assert made == ["gateway_reading_p20261207", "gateway_reading_p20261208", "gateway_reading_p20261209"]
    # A historical backfill from a day without a partition gets one.
    old = T0 - dt.timedelta(days=30)
    store.rows_store(store.rows_of([reading(1.0, at=T0), reading(2.0, at=old)]))
    assert partition_of(T0) == "gateway_reading_p20261207"
    assert partition_of(old) == "gateway_reading_p20261107"
    # A query for a period reads only that period's partitions.
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN SELECT * FROM gateway_reading WHERE at >= %s AND at < %s",
            [T0, T0 + dt.timedelta(hours=1)],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "gateway_reading_p20261207" in plan and "gateway_reading_p20261107" not in plan


@pytest.mark.req("S95-06")
def test_postgresql_moves_rows_from_the_default_partition_into_the_day_made_later(
    postgresql_only: None,
) -> None:
    day = T0 + dt.timedelta(days=40)
    with connection.cursor() as cursor:  # as if written while the day had no partition
        for row in store.rows_of([reading(5.0, at=day)]):
            row = (*row[: store.STORED_AT], T0, *row[store.STORED_AT + 1 :])
            cursor.execute(
                f"INSERT INTO gateway_reading_default ({', '.join(store.COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(store.COLUMNS))})",
                list(row),
            )
    assert partition_of(day) == "gateway_reading_default"
    store.partition_make(day.date())
    assert partition_of(day) == "gateway_reading_p20270116"
    assert store.rows_store(store.rows_of([reading(5.0, at=day)])) == 0  # still stored once


@pytest.mark.req("P11-03")
def test_retention_removes_the_days_older_than_configured_and_keeps_the_rest(settings: Any) -> None:
    now = T0 + dt.timedelta(days=10, hours=12)
    store.rows_store(store.rows_of([reading(float(d), at=T0 + dt.timedelta(days=d)) for d in range(11)]))
    settings.GATEWAY_RETENTION_DAYS = 0
    assert store.retention_apply(now=now) == 0 and count() == 11  # 0 keeps everything
    settings.GATEWAY_RETENTION_DAYS = 7
    removed = store.retention_apply(now=now)
    kept = sorted(StoredReading.objects.values_list("value_num", flat=True))
    # The cut-off is 10 Dec 22:00: the days wholly before it go (PostgreSQL drops whole days and
    # keeps the day the cut-off falls in; SQLite deletes to the instant).
    if connection.vendor == "postgresql":
        assert kept == [float(d) for d in range(3, 11)]
        assert removed == 3
        assert "gateway_reading_p20261207" not in [name for name, _day in store.partitions()]
    else:
        assert kept == [float(d) for d in range(4, 11)]
        assert removed == 4


@pytest.mark.req("DI-06", "A11-07")
def test_text_no_database_can_hold_is_stored_with_its_odd_characters_as_escapes() -> None:
    odd = [reading("AB\x00CD", at=T0), reading("°C\ud800", at=T0 + dt.timedelta(seconds=1))]
    assert store.rows_store(store.rows_of(odd)) == 2
    points = selectors.series(unit="GRAN-01", tag="ns=2;s=Inlet", start=T0, end=T0 + dt.timedelta(minutes=1))
    assert [p.value for p in points] == ["AB\\x00CD", "°C\\ud800"]
