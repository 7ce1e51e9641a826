"""Downsampling on a real database: old readings summarised per tag and bucket, then removed; the
summaries read back by the selectors; retention of summaries; the command and the worker's job."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.db import DatabaseError, IntegrityError, connection, transaction

from batchline.gateway import downsample, selectors, store
from batchline.gateway.models import ProcessSummary, StoredReading
from batchline.gateway.readings import Quality
from batchline.gateway.runner import Writer
from batchline.gateway.spool import Spool
from batchline.integrity.verification import tick

from .conftest import T0, reading
from .test_store import configure_two_tags

pytestmark = pytest.mark.django_db

NOW = T0 + dt.timedelta(days=10)  # 17 Dec 10:00: with 7 days, the days up to 9 Dec are due
RECENT = T0 + dt.timedelta(days=9)
PLAN = downsample.Plan(after_days=7, seconds=60, retention_days=0, summary_retention_days=0)
S = dt.timedelta(seconds=1)


def store_readings(readings: list[Any]) -> None:
    store.rows_store(store.rows_of(readings))


def old_minute() -> list[Any]:
    """One minute of the inlet temperature on 7 Dec, every quality, then a reading the next minute."""
    return [
        reading(20.0, at=T0),
        reading(25.0, at=T0 + 10 * S, quality=Quality.UNCERTAIN),
        reading(None, at=T0 + 20 * S, quality=Quality.BAD, status="BadSensorFailure"),
        reading(22.0, at=T0 + 30 * S),
        reading(None, at=T0 + 40 * S, quality=Quality.STALE),
        reading("RUNNING", at=T0 + 50 * S),  # text: counted, not kept
        reading(30.0, at=T0 + 70 * S),
    ]


def summaries(tag: str = "ns=2;s=Inlet") -> list[ProcessSummary]:
    return list(ProcessSummary.objects.filter(tag=tag).order_by("bucket", "part"))


def raw_on(day: dt.datetime) -> int:
    return StoredReading.objects.filter(at__gte=day, at__lt=day + dt.timedelta(days=1)).count()


def partition_names() -> list[str]:
    return [name for name, _day in store.partitions()]


@pytest.mark.req("P11-03", "DI-06", "S95-06")
def test_old_readings_are_summarised_per_tag_and_bucket_with_their_qualities_and_then_removed() -> None:
    store_readings(
        [
            *old_minute(),
            *[reading(i, at=T0 + i * S, tag="ns=2;s=Power") for i in (1, 5, 3)],
            reading(19.0, at=T0 + 5 * S, historical=True),  # a historical metric is summarised apart
            reading(21.0, at=RECENT),
        ]
    )
    done = downsample.downsample_apply(plan=PLAN, now=NOW)
    assert [(d.day, d.readings, d.summaries) for d in done] == [(T0.date(), 11, 4)]
    first, second = (s for s in summaries() if not s.historical)
    assert (first.bucket, first.seconds, first.part) == (T0, 60, 0)
    assert (first.readings, first.good, first.uncertain, first.bad, first.stale, first.usable) == (
        6,
        3,
        1,
        1,
        1,
        3,
    )
    assert (first.minimum, first.maximum, first.first_value, first.last_value) == (20.0, 25.0, 20.0, 22.0)
    assert first.mean == pytest.approx(67.0 / 3)
    assert (first.first_at, first.last_at, first.unit_of_measure, first.value_type) == (
        T0,
        T0 + 50 * S,
        "degC",
        "f",
    )
    assert (second.bucket, second.readings, second.minimum, second.maximum) == (T0 + 60 * S, 1, 30.0, 30.0)
    (historical,) = (s for s in summaries() if s.historical)
    assert (historical.readings, historical.mean) == (1, 19.0)
    (power,) = summaries("ns=2;s=Power")
    assert (power.readings, power.minimum, power.maximum, power.mean, power.value_type) == (
        3,
        1.0,
        5.0,
        3.0,
        "i",
    )
    # The raw rows of the day are gone, the recent ones stay.
    assert raw_on(T0) == 0 and raw_on(RECENT) == 1
    if connection.vendor == "postgresql":
        assert done[0].dropped == "gateway_reading_p20261207"
        assert "gateway_reading_p20261207" not in partition_names()


@pytest.mark.req("A11-07", "DI-06")
def test_a_second_run_summarises_nothing_twice_and_late_readings_become_a_further_part() -> None:
    store_readings(old_minute())
    downsample.downsample_apply(plan=PLAN, now=NOW)
    made = [(s.bucket, s.part, s.readings) for s in summaries()]
    assert downsample.downsample_apply(plan=PLAN, now=NOW) == []
    assert [(s.bucket, s.part, s.readings) for s in summaries()] == made
    # A spool forwarded days late: the day's partition is made again for it (PostgreSQL).
    store_readings([reading(40.0, at=T0 + 55 * S), reading(20.0, at=T0 + 56 * S)])
    store_readings([reading(20.0, at=T0 + 56 * S)])  # and the replay of one of them stores nothing
    (late,) = downsample.downsample_apply(plan=PLAN, now=NOW)
    assert (late.readings, late.summaries) == (2, 1)
    assert [(s.bucket, s.part, s.readings) for s in summaries()] == [
        (T0, 0, 6),
        (T0, 1, 2),
        (T0 + 60 * S, 0, 1),
    ]
    # The selectors read a bucket's parts as one.
    (bucket, _next) = selectors.series(
        unit="GRAN-01", tag="ns=2;s=Inlet", start=T0, end=T0 + dt.timedelta(days=1)
    )
    assert (bucket.readings, bucket.low, bucket.high, bucket.quality) == (8, 20.0, 40.0, Quality.UNCERTAIN)
    assert bucket.value == pytest.approx((67.0 + 60.0) / 5)
    # The key refuses a second copy of a part, and a summary is never rewritten.
    copy = summaries()[0]
    copy.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        copy.save()
    with pytest.raises(DatabaseError, match="never rewritten"), transaction.atomic():
        ProcessSummary.objects.filter(part=0).update(maximum=0.0)


def refuse_removal_sql() -> tuple[list[str], list[str]]:
    """A database that refuses, after the summaries are written, to remove the day's raw rows."""
    if connection.vendor == "postgresql":
        return (
            [
                "CREATE FUNCTION test_refuse_drop() RETURNS event_trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'removal refused by the test'; END $$",
                "CREATE EVENT TRIGGER test_refuse_drop ON sql_drop EXECUTE FUNCTION test_refuse_drop()",
            ],
            ["DROP EVENT TRIGGER test_refuse_drop", "DROP FUNCTION test_refuse_drop()"],
        )
    return (
        [
            "CREATE TEMP TRIGGER test_refuse_delete BEFORE DELETE ON gateway_reading "
            "BEGIN SELECT RAISE(ABORT, 'removal refused by the test'); END"
        ],
        ["DROP TRIGGER temp.test_refuse_delete"],
    )


@pytest.mark.req("DI-06", "P11-03")
def test_a_day_whose_raw_rows_cannot_be_removed_keeps_them_and_writes_no_summary() -> None:
    store_readings(old_minute())
    install, remove = refuse_removal_sql()
    with connection.cursor() as cursor:
        for sql in install:
            cursor.execute(sql)
    try:
        with pytest.raises(DatabaseError, match="removal refused by the test"):
            downsample.downsample_apply(plan=PLAN, now=NOW)
    finally:
        with connection.cursor() as cursor:
            for sql in remove:
                cursor.execute(sql)
    assert raw_on(T0) == 7 and summaries() == []  # raw, not neither, not both
    (done,) = downsample.downsample_apply(plan=PLAN, now=NOW)
    assert (done.readings, raw_on(T0), len(summaries())) == (7, 0, 2)


@pytest.mark.req("S95-06", "A11-21")
def test_the_selectors_read_summaries_where_the_raw_rows_are_gone(
    plant: dict[str, Any], django_assert_num_queries: Any
) -> None:
    configure_two_tags(plant)
    store_readings([*old_minute(), reading(21.0, at=RECENT), reading(23.0, at=RECENT + S)])
    downsample.downsample_apply(plan=PLAN, now=NOW)
    points = selectors.series(unit="GRAN-01", tag="ns=2;s=Inlet", start=T0, end=NOW)
    assert [(p.at, p.summary, p.value, p.low, p.high, p.readings) for p in points] == [
        (T0, True, pytest.approx(67.0 / 3), 20.0, 25.0, 6),
        (T0 + 60 * S, True, 30.0, 30.0, 30.0, 1),
        (RECENT, False, 21.0, None, None, 1),
        (RECENT + S, False, 23.0, None, None, 1),
    ]
    # The record's trend: each summarised bucket's lowest and highest value, then the raw values.
    trend = selectors.parameter_series("GRAN-01", "inlet temperature", T0, NOW)
    assert [(at, value) for at, value, _uom in trend] == [
        (T0, 20.0),
        (T0 + 50 * S, 25.0),
        (T0 + 70 * S, 30.0),
        (T0 + 70 * S, 30.0),
        (RECENT, 21.0),
        (RECENT + S, 23.0),
    ]
    assert {uom for _at, _value, uom in trend} == {"degC"}
    # A tag whose every raw row was summarised shows its last summarised value as its last.
    store_readings([reading(7, at=T0 + 5 * S, tag="ns=2;s=Power", quality=Quality.UNCERTAIN)])
    downsample.downsample_apply(plan=PLAN, now=NOW)
    with django_assert_num_queries(3):  # the third only for the tag without raw rows
        last = {item.tag.tag: item.last for item in selectors.last_values()}
    assert last["ns=2;s=Inlet"] is not None and last["ns=2;s=Inlet"].value == 23.0
    power = last["ns=2;s=Power"]
    assert power is not None and (power.value, power.quality, power.at, power.summary) == (
        7,
        Quality.UNCERTAIN,
        T0 + 5 * S,
        True,
    )


@pytest.mark.req("P11-03")
def test_settings_that_would_lose_data_or_make_no_sense_are_refused_in_words(settings: Any) -> None:
    assert not downsample.plan_of().on  # off by default
    cases = {
        (3, 60, 0, 0): "give 0 \\(off\\) or at least 7 days",
        (7, 7, 0, 0): "a bucket must divide a day evenly",
        (7, 0, 0, 0): "a bucket must divide a day evenly",
        (7, 60, 5, 0): "would remove raw readings before downsampling \\(7 days\\) summarised them",
        (7, 60, 0, 7): "would remove summaries as soon as they are made",
        (0, 60, -1, 0): "cannot be negative",
    }
    for (after, seconds, raw, kept), words in cases.items():
        with pytest.raises(downsample.DownsampleSettingsError, match=words):
            downsample.plan_of(
                after_days=after, seconds=seconds, retention_days=raw, summary_retention_days=kept
            )
    assert downsample.plan_of(after_days=7, seconds=300, retention_days=30, summary_retention_days=400).on
    settings.GATEWAY_DOWNSAMPLE_AFTER_DAYS = 0
    with pytest.raises(CommandError, match="Downsampling is off"):
        call_command("gateway", "downsample")
    with pytest.raises(CommandError, match="at least 7 days"):
        call_command("gateway", "downsample", "--after-days", "2")
    settings.GATEWAY_DOWNSAMPLE_AFTER_DAYS = 10
    with pytest.raises(CommandError, match="RETENTION_DAYS \\(8\\) would remove raw readings"):
        call_command("gateway", "retention", "--days", "8")


@pytest.mark.req("P11-03", "S95-06")
def test_the_command_downsamples_and_says_what_it_did_and_retention_removes_old_summaries(
    capsys: Any,
) -> None:
    now = dt.datetime.now(dt.UTC)
    old = (now - dt.timedelta(days=20)).replace(hour=10, minute=0, second=0, microsecond=0)
    store_readings([reading(1.0, at=old), reading(3.0, at=old + S), reading(2.0, at=now)])
    call_command("gateway", "downsample", "--after-days", "7", "--seconds", "300")
    lines = capsys.readouterr().out.splitlines()
    dropped = (
        f" (partition gateway_reading_p{old:%Y%m%d} dropped)" if connection.vendor == "postgresql" else ""
    )
    assert lines == [
        f"{old.date().isoformat()}: 2 reading(s) summarised into 1 summary row(s) and removed{dropped}",
        "process data older than 7 days downsampled to 300 s buckets: 1 day(s), 2 reading(s), 1 summary row(s)",
    ]
    (summary,) = ProcessSummary.objects.all()
    assert (summary.seconds, summary.mean) == (300, 2.0)
    assert list(StoredReading.objects.values_list("value_num", flat=True)) == [2.0]
    call_command("gateway", "retention", "--summary-days", "30")
    assert capsys.readouterr().out == "process data summaries older than 30 days removed (0)\n"
    call_command("gateway", "retention", "--summary-days", "10")
    assert capsys.readouterr().out == "process data summaries older than 10 days removed (1)\n"
    assert not ProcessSummary.objects.exists()


@pytest.mark.req("P11-03")
def test_the_worker_downsamples_every_hour_before_the_raw_retention_could_remove_a_day(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downsample, "_last_upkeep", None)
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=40)
    store_readings([reading(1.0, at=old), reading(2.0, at=now)])
    settings.GATEWAY_DOWNSAMPLE_AFTER_DAYS = 0
    assert tick().gateway_upkeep is None  # off: nothing to do
    # The raw retention (30 days) would have removed the 40 days old reading unsummarised: the
    # worker summarises it first.
    settings.GATEWAY_DOWNSAMPLE_AFTER_DAYS, settings.GATEWAY_RETENTION_DAYS = 7, 30
    upkeep = tick().gateway_upkeep
    assert upkeep is not None and (len(upkeep.days), upkeep.readings) == (1, 1)
    assert list(ProcessSummary.objects.values_list("mean", flat=True)) == [1.0]
    assert list(StoredReading.objects.values_list("value_num", flat=True)) == [2.0]
    store_readings([reading(5.0, at=old + S)])
    assert tick().gateway_upkeep is None  # an hour has not passed
    monkeypatch.setattr(downsample, "_last_upkeep", None)
    assert tick().gateway_upkeep is not None and ProcessSummary.objects.count() == 2
    # Settings that contradict each other: logged, nothing done.
    monkeypatch.setattr(downsample, "_last_upkeep", None)
    settings.GATEWAY_RETENTION_DAYS = 3
    store_readings([reading(6.0, at=old + 2 * S)])
    assert tick().gateway_upkeep is None and StoredReading.objects.count() == 2


@pytest.mark.req("P11-03")
def test_the_gateway_leaves_the_raw_retention_to_the_worker_while_downsampling_is_on(
    settings: Any, tmp_path: Path
) -> None:
    writer = Writer(spool=Spool(tmp_path / "g.spool.sqlite3", max_rows=10), name="g")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    store_readings([reading(1.0, at=old)])
    settings.GATEWAY_DOWNSAMPLE_AFTER_DAYS, settings.GATEWAY_RETENTION_DAYS = 7, 30
    writer.maintain()
    assert StoredReading.objects.count() == 1  # not removed unsummarised
    settings.GATEWAY_DOWNSAMPLE_AFTER_DAYS = 0
    writer.maintain()
    assert StoredReading.objects.count() == 0


@pytest.mark.req("DI-06", "P11-03")
def test_postgresql_summarises_exactly_the_rows_it_removes_from_the_default_partition(
    postgresql_only: None,
) -> None:
    day = T0 - dt.timedelta(days=3)  # a day that never had a partition: its rows wait in the default one
    with connection.cursor() as cursor:
        for row in store.rows_of([reading(4.0, at=day), reading(6.0, at=day + S, quality=Quality.UNCERTAIN)]):
            cursor.execute(
                f"INSERT INTO gateway_reading_default ({', '.join(store.COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(store.COLUMNS))})",
                [*row[: store.STORED_AT], T0, *row[store.STORED_AT + 1 :]],
            )
    store_readings([reading(20.0, at=T0)])  # and a day with its partition
    assert downsample.days_due(cutoff=NOW - dt.timedelta(days=7)) == [day.date(), T0.date()]
    done = downsample.downsample_apply(plan=PLAN, now=NOW)
    assert [(d.day, d.readings, d.summaries, d.dropped) for d in done] == [
        (day.date(), 2, 1, ""),
        (T0.date(), 1, 1, "gateway_reading_p20261207"),
    ]
    old, _new = summaries()
    assert (old.bucket, old.readings, old.good, old.uncertain, old.mean) == (day, 2, 1, 1, 5.0)
    assert not StoredReading.objects.exists()


@pytest.mark.req("P11-03")
def test_batchline_check_names_downsampling_settings_that_would_lose_data(settings: Any) -> None:
    call_command("check")
    settings.GATEWAY_DOWNSAMPLE_AFTER_DAYS, settings.GATEWAY_RETENTION_DAYS = 30, 14
    with pytest.raises(
        SystemCheckError, match=r"gateway.E001.*RETENTION_DAYS \(14\) would remove raw readings"
    ):
        call_command("check")
