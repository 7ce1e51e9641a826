"""Downsampling process data: old raw readings summarised per tag and time bucket, then removed (issue 15).

A historian keeps raw values for a while and summaries for long (Ignition's tag history
partitions, TimescaleDB's continuous aggregates); this is that, in plain SQL on PostgreSQL and
SQLite.

- The whole UTC days that ended more than ``GATEWAY_DOWNSAMPLE_AFTER_DAYS`` ago (0: off) are
  summarised into :class:`models.ProcessSummary`: per unit, protocol, endpoint, tag and
  ``historical``, per bucket of ``GATEWAY_DOWNSAMPLE_SECONDS`` aligned to the epoch, the count of
  readings and of each quality, the lowest, highest, mean, first and last of the usable numbers
  (Good or Uncertain, a float, an integer or a boolean), the first and last observation time.
  Text values are counted, not kept.
- Each day in one transaction: the summaries are written and the day's raw rows removed together,
  so a crash leaves the day raw or summarised, never neither nor both. On PostgreSQL the day's
  partition is locked against writes (SHARE), summarised whole and dropped; rows of that day in
  the default partition are deleted and summarised in one statement (``DELETE … RETURNING``), so
  exactly the rows removed are the rows summarised. An advisory lock keeps two runs apart. On
  SQLite the day's rows are summarised and deleted under SQLite's single writer.
- Running it twice summarises nothing twice: the second run finds no raw rows left. Readings
  arriving later for a day already summarised (a spool forwarded after a long outage) are
  summarised on the next run as a further ``part`` of their bucket; the unique key (tag, bucket,
  part) refuses a second copy of any part. The raw key refuses only what is still stored: a replay
  of an observation whose day was summarised already is counted again (docs/gateway.md).
- :func:`summary_retention_apply` removes summaries older than ``GATEWAY_SUMMARY_RETENTION_DAYS``
  (0 keeps them).
- :func:`upkeep` is the worker's hourly job: downsampling, then the raw retention, then the
  summaries' retention, in that order, so retention never removes a raw day before it was summarised.

Why it is safe for the batch record: each monitored value's course over a step is frozen into the
record (``ProcessTrend``) when the step completes, from the selectors, which read summaries where
the raw rows are gone (a bucket's lowest and highest value, all the frozen trend keeps). Readings
are judged against limits as they arrive, never later from storage. So downsampling touches only
data the record has already copied; the minimum age (:data:`MIN_AFTER_DAYS`) keeps a week of raw
values for investigations and for a spool forwarded days late.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from . import store
from .models import ProcessSummary

log = logging.getLogger("batchline.gateway")

MIN_AFTER_DAYS = 7
DAY_SECONDS = 86_400
SUMMARY = ProcessSummary._meta.db_table
_GROUP = "unit, protocol, endpoint, tag, historical, bucket"


class DownsampleSettingsError(ValueError):
    """The downsampling and retention settings contradict each other or make no sense."""


@dataclass(frozen=True)
class Plan:
    """The settings downsampling runs with, checked (:func:`plan_of`)."""

    after_days: int  # 0: off
    seconds: int
    retention_days: int  # raw readings; 0 keeps
    summary_retention_days: int  # 0 keeps

    @property
    def on(self) -> bool:
        return self.after_days > 0


def plan_of(
    *,
    after_days: int | None = None,
    seconds: int | None = None,
    retention_days: int | None = None,
    summary_retention_days: int | None = None,
) -> Plan:
    """The settings (each argument overrides its setting), or :class:`DownsampleSettingsError` saying what is wrong."""
    plan = Plan(
        after_days=settings.GATEWAY_DOWNSAMPLE_AFTER_DAYS if after_days is None else after_days,
        seconds=settings.GATEWAY_DOWNSAMPLE_SECONDS if seconds is None else seconds,
        retention_days=settings.GATEWAY_RETENTION_DAYS if retention_days is None else retention_days,
        summary_retention_days=(
            settings.GATEWAY_SUMMARY_RETENTION_DAYS
            if summary_retention_days is None
            else summary_retention_days
        ),
    )
    problems = []
    if plan.after_days < 0 or 0 < plan.after_days < MIN_AFTER_DAYS:
        problems.append(
            f"BATCHLINE_GATEWAY_DOWNSAMPLE_AFTER_DAYS is {plan.after_days}: give 0 (off) or at least "
            f"{MIN_AFTER_DAYS} days, so that a week of raw values stays for investigations and for "
            "readings a gateway forwards late from its spool."
        )
    if not 1 <= plan.seconds <= DAY_SECONDS or DAY_SECONDS % plan.seconds:
        problems.append(
            f"BATCHLINE_GATEWAY_DOWNSAMPLE_SECONDS is {plan.seconds}: a bucket must divide a day "
            "evenly (for example 10, 60, 300 or 3600), so that no bucket straddles two days."
        )
    if plan.retention_days < 0 or plan.summary_retention_days < 0:
        problems.append("Retention days cannot be negative: 0 keeps everything.")
    if plan.on and 0 < plan.retention_days <= plan.after_days:
        problems.append(
            f"BATCHLINE_GATEWAY_RETENTION_DAYS ({plan.retention_days}) would remove raw readings before "
            f"downsampling ({plan.after_days} days) summarised them: set it above "
            f"{plan.after_days} or to 0 (downsampling removes the raw rows it summarised)."
        )
    if plan.on and 0 < plan.summary_retention_days <= plan.after_days:
        problems.append(
            f"BATCHLINE_GATEWAY_SUMMARY_RETENTION_DAYS ({plan.summary_retention_days}) would remove "
            f"summaries as soon as they are made ({plan.after_days} days): set it above "
            f"{plan.after_days} or to 0 (kept)."
        )
    if problems:
        raise DownsampleSettingsError(" ".join(problems))
    return plan


@dataclass
class DaySummarised:
    day: dt.date
    readings: int  # raw rows summarised and removed
    summaries: int  # summary rows written
    dropped: str = ""  # the partition dropped (PostgreSQL)


@dataclass
class Upkeep:
    """What one :func:`upkeep` did."""

    days: list[DaySummarised] = field(default_factory=list)
    raw_removed: int = 0  # partitions dropped (PostgreSQL) or rows deleted (SQLite) by raw retention
    summaries_removed: int = 0

    @property
    def readings(self) -> int:
        return sum(d.readings for d in self.days)

    @property
    def summaries(self) -> int:
        return sum(d.summaries for d in self.days)


# --- the SQL -------------------------------------------------------------------------------------


def _bucket_sql(conn: BaseDatabaseWrapper, seconds: int) -> str:
    # ``seconds`` is a checked integer (plan_of): written into the SQL so the bucket is one
    # expression the grouping and the part's subquery share.
    if conn.vendor == "postgresql":
        return f"to_timestamp(floor(extract(epoch FROM at) / {seconds}) * {seconds})"
    # Django keeps SQLite datetimes as 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC; the bucket in the same form.
    # (%% : the statement runs with parameters, where a lone % is a placeholder's.)
    return (
        f"strftime('%%Y-%%m-%%d %%H:%%M:%%S', (CAST(strftime('%%s', at) AS INTEGER) / {seconds}) * {seconds}, "
        "'unixepoch')"
    )


def _summary_insert(conn: BaseDatabaseWrapper, source: str, seconds: int) -> str:
    """``INSERT … SELECT`` of the summaries of the rows ``source`` yields (a table, or a CTE's name)."""
    bucket = _bucket_sql(conn, seconds)
    usable = "quality IN ('good', 'uncertain') AND value_type IN ('f', 'i', 'b')"
    window = f"PARTITION BY {_GROUP}, (num IS NULL)"
    return f"""
INSERT INTO {SUMMARY} (unit, protocol, endpoint, tag, historical, bucket, seconds, part, readings,
    good, uncertain, bad, stale, usable, minimum, maximum, mean, first_value, last_value, value_type,
    first_at, last_at, unit_of_measure, summarised_at)
SELECT g.unit, g.protocol, g.endpoint, g.tag, g.historical, g.bucket, {seconds},
    (SELECT COUNT(*) FROM {SUMMARY} s WHERE s.unit = g.unit AND s.protocol = g.protocol
        AND s.endpoint = g.endpoint AND s.tag = g.tag AND s.historical = g.historical AND s.bucket = g.bucket),
    g.readings, g.good, g.uncertain, g.bad, g.stale, g.usable, g.minimum, g.maximum, g.mean,
    g.first_value, g.last_value, g.value_type, g.first_at, g.last_at, g.unit_of_measure, %s
FROM (
    SELECT {_GROUP}, COUNT(*) AS readings,
        SUM(CASE WHEN quality = 'good' THEN 1 ELSE 0 END) AS good,
        SUM(CASE WHEN quality = 'uncertain' THEN 1 ELSE 0 END) AS uncertain,
        SUM(CASE WHEN quality = 'bad' THEN 1 ELSE 0 END) AS bad,
        SUM(CASE WHEN quality = 'stale' THEN 1 ELSE 0 END) AS stale,
        COUNT(num) AS usable, MIN(num) AS minimum, MAX(num) AS maximum, AVG(num) AS mean,
        MAX(CASE WHEN num IS NOT NULL AND up = 1 THEN num END) AS first_value,
        MAX(CASE WHEN num IS NOT NULL AND down = 1 THEN num END) AS last_value,
        MAX(CASE WHEN num IS NOT NULL THEN value_type ELSE '' END) AS value_type,
        MIN(at) AS first_at, MAX(at) AS last_at, MAX(unit_of_measure) AS unit_of_measure
    FROM (
        SELECT r.*,
            ROW_NUMBER() OVER ({window} ORDER BY at, sequence) AS up,
            ROW_NUMBER() OVER ({window} ORDER BY at DESC, sequence DESC) AS down
        FROM (
            SELECT unit, protocol, endpoint, tag, historical, {bucket} AS bucket, at, sequence, quality,
                value_type, unit_of_measure, CASE WHEN {usable} THEN value_num END AS num
            FROM {source}
        ) r
    ) w
    GROUP BY {_GROUP}
) g
RETURNING readings
"""  # noqa: S608 (names are the models' tables; values are parameters)


# --- one day -------------------------------------------------------------------------------------


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    lo = dt.datetime.combine(day, dt.time(), dt.UTC)
    return lo, lo + dt.timedelta(days=1)


def day_downsample(day: dt.date, *, seconds: int, now: dt.datetime, using: str = "default") -> DaySummarised:
    """Summarise one UTC day's raw readings and remove them, in one transaction (see the module's text)."""
    conn = connections[using]
    lo, hi = _day_bounds(day)
    if store.partitioned(conn):
        return _day_postgresql(conn, day, lo, hi, seconds, now, using)
    return _day_sqlite(conn, day, lo, hi, seconds, now, using)


def _day_postgresql(
    conn: BaseDatabaseWrapper,
    day: dt.date,
    lo: dt.datetime,
    hi: dt.datetime,
    seconds: int,
    now: dt.datetime,
    using: str,
) -> DaySummarised:
    partition = f"{store.TABLE}_p{day:%Y%m%d}"
    done = DaySummarised(day=day, readings=0, summaries=0)
    with transaction.atomic(using=using), conn.cursor() as cursor:
        # Two runs at once (two workers) take turns; the second finds the day done.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('gateway_downsample'))")
        # As retention: give up rather than queue behind a long report and stall the gateway's writes.
        cursor.execute("SET LOCAL lock_timeout = '5s'")
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition])
        if cursor.fetchone()[0]:
            quoted = conn.ops.quote_name(partition)
            # SHARE: readers go on, writers of this day (a late reading) wait until the partition is
            # gone and then make it again (store.rows_store), so nothing lands unsummarised in a
            # partition about to be dropped.
            cursor.execute(f"LOCK TABLE {quoted} IN SHARE MODE")
            cursor.execute(_summary_insert(conn, quoted, seconds), [now])
            counts = [int(row[0]) for row in cursor.fetchall()]
            done.readings, done.summaries = sum(counts), len(counts)
            cursor.execute(f"DROP TABLE {quoted}")
            done.dropped = partition
        # Rows of this day in the default partition (written before the day had one, or by hand):
        # deleted and summarised by one statement, so exactly the rows removed are summarised.
        cursor.execute(
            f"WITH gone AS (DELETE FROM {store.TABLE}_default WHERE at >= %s AND at < %s RETURNING *) "  # noqa: S608
            + _summary_insert(conn, "gone", seconds),
            [lo, hi, now],
        )
        counts = [int(row[0]) for row in cursor.fetchall()]
        done.readings += sum(counts)
        done.summaries += len(counts)
    return done


def _day_sqlite(
    conn: BaseDatabaseWrapper,
    day: dt.date,
    lo: dt.datetime,
    hi: dt.datetime,
    seconds: int,
    now: dt.datetime,
    using: str,
) -> DaySummarised:
    bounds = [conn.ops.adapt_datetimefield_value(lo), conn.ops.adapt_datetimefield_value(hi)]
    source = f"(SELECT * FROM {store.TABLE} WHERE at >= %s AND at < %s)"  # noqa: S608
    with transaction.atomic(using=using), conn.cursor() as cursor:
        cursor.execute(
            _summary_insert(conn, source, seconds), [conn.ops.adapt_datetimefield_value(now), *bounds]
        )
        counts = [int(row[0]) for row in cursor.fetchall()]
        readings, summaries = sum(counts), len(counts)
        cursor.execute(f"DELETE FROM {store.TABLE} WHERE at >= %s AND at < %s", bounds)  # noqa: S608
        # SQLite's one writer makes a difference impossible; were it there, nothing is removed.
        if int(cursor.rowcount) != readings:
            raise RuntimeError(f"process data of {day} changed while it was summarised: nothing removed")
    return DaySummarised(day=day, readings=readings, summaries=summaries)


# --- runs ----------------------------------------------------------------------------------------


def days_due(*, cutoff: dt.datetime, using: str = "default") -> list[dt.date]:
    """The UTC days wholly before ``cutoff`` that hold raw readings (or, on PostgreSQL, a partition), oldest first."""
    conn = connections[using]
    last = cutoff.astimezone(dt.UTC).date()  # the day the cut-off falls in stays
    if store.partitioned(conn):
        days = {day for _name, day in store.partitions(using=using) if day is not None and day < last}
        with conn.cursor() as cursor:
            cursor.execute(
                f"SELECT DISTINCT (at AT TIME ZONE 'UTC')::date FROM {store.TABLE}_default WHERE at < %s",  # noqa: S608
                [dt.datetime.combine(last, dt.time(), dt.UTC)],
            )
            days |= {row[0] for row in cursor.fetchall()}
        return sorted(days)
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT substr(at, 1, 10) FROM {store.TABLE} WHERE at < %s",  # noqa: S608
            [conn.ops.adapt_datetimefield_value(dt.datetime.combine(last, dt.time(), dt.UTC))],
        )
        return sorted(dt.date.fromisoformat(row[0]) for row in cursor.fetchall())


def downsample_apply(
    *, plan: Plan | None = None, now: dt.datetime | None = None, using: str = "default"
) -> list[DaySummarised]:
    """Summarise and remove the raw readings of each whole day older than the plan's ``after_days``.

    Each day in its own transaction (:func:`day_downsample`); a day that fails (a lock not had in
    time) stops the run with the database's error, the days before it done, and the next run
    takes it up again. Nothing when downsampling is off.
    """
    plan = plan or plan_of()
    if not plan.on:
        return []
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    done = []
    for day in days_due(cutoff=now - dt.timedelta(days=plan.after_days), using=using):
        summarised = day_downsample(day, seconds=plan.seconds, now=now, using=using)
        log.info(
            "process data downsampling: %s summarised, %d reading(s) into %d summary row(s) of %d s%s",
            day.isoformat(),
            summarised.readings,
            summarised.summaries,
            plan.seconds,
            f", partition {summarised.dropped} dropped" if summarised.dropped else "",
        )
        done.append(summarised)
    return done


def summary_retention_apply(
    *, days: int | None = None, now: dt.datetime | None = None, using: str = "default"
) -> int:
    """Remove the summaries whose bucket began more than ``days`` ago (``GATEWAY_SUMMARY_RETENTION_DAYS``; 0 keeps)."""
    keep = settings.GATEWAY_SUMMARY_RETENTION_DAYS if days is None else days
    if keep <= 0:
        return 0
    cutoff = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC) - dt.timedelta(days=keep)
    with transaction.atomic(using=using):
        removed, _ = ProcessSummary.objects.using(using).filter(bucket__lt=cutoff).delete()
    if removed:
        log.info("process data retention: %d summary row(s) older than %d days removed", removed, keep)
    return removed


def upkeep(*, now: dt.datetime | None = None, using: str = "default") -> Upkeep:
    """Downsampling, then the raw readings' retention, then the summaries': the worker's hourly job.

    In this order so retention never removes a raw day downsampling has not summarised yet (the
    settings refuse a raw retention shorter than the downsampling age; this holds it when the
    worker was away for a while too). :class:`DownsampleSettingsError` when the settings contradict
    each other: nothing is done then.
    """
    plan = plan_of()
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    done = Upkeep(days=downsample_apply(plan=plan, now=now, using=using))
    if plan.on:
        # Off, the gateway applies the raw retention itself (runner.Writer.maintain).
        done.raw_removed = store.retention_apply(days=plan.retention_days, now=now, using=using)
    done.summaries_removed = summary_retention_apply(days=plan.summary_retention_days, now=now, using=using)
    return done


UPKEEP_SECONDS = 3600.0
_last_upkeep: float | None = None  # time.monotonic() of this process's last upkeep


def upkeep_due(*, using: str = "default") -> Upkeep | None:
    """:func:`upkeep` when this process has not run it for an hour and it has something to do; else None.

    The worker calls it every round. An hour is plenty for days that come due once a day, and
    keeps the check off the worker's every round; two workers running it at once take turns on
    PostgreSQL's advisory lock and each day is still summarised once. Settings that contradict
    each other are logged as an error (once an hour) and nothing is done.
    """
    global _last_upkeep
    if not (settings.GATEWAY_DOWNSAMPLE_AFTER_DAYS > 0 or settings.GATEWAY_SUMMARY_RETENTION_DAYS > 0):
        return None
    clock = time.monotonic()
    if _last_upkeep is not None and clock - _last_upkeep < UPKEEP_SECONDS:
        return None
    # Taken before the run: a run that failed (a lock not had in time) is tried again in an hour,
    # not every round.
    _last_upkeep = clock
    try:
        return upkeep(using=using)
    except DownsampleSettingsError as exc:
        log.error("process data downsampling not done: %s", exc)
        return None
