"""Writing process data: batches stored once, partitions made ahead, retention (issue 15).

- :func:`rows_of` turns readings into rows (plain tuples, the spool's form too).
- :func:`rows_store` writes a batch and returns how many rows were new. On PostgreSQL it COPYs the
  batch into a temporary staging table and moves it with ``INSERT … ON CONFLICT DO NOTHING``; on
  SQLite it runs ``INSERT OR IGNORE``. Either way a row whose ``(key, at)`` is stored already (a
  replay after a restart, a spool forwarded twice, a Sparkplug historical metric sent again) is
  skipped, so nothing is stored twice.
- :func:`partitions_ensure` makes PostgreSQL's day partitions ahead of time; ``rows_store`` makes
  the partition of any other day a batch needs (a device whose clock is off, a historical backfill).
- :func:`retention_apply` drops the days older than ``GATEWAY_RETENTION_DAYS`` (whole partitions on
  PostgreSQL, rows on SQLite); 0 keeps everything.

Process data does not join the audit trail's hash chain: it is raw data at thousands of rows a
second, and chaining each row would serialise every writer on the chain's head. Its integrity
rests on the key (one row per observation), the trigger that refuses UPDATE, and the values that
matter to a batch being copied into the batch record (limits judged, readings taken), which is
chained. Downsampling (``gateway.downsample``) summarises old days and removes their rows.

TimescaleDB is not used even where it is installed: native partitions prune and drop as well for
these queries, and the same SQL then runs everywhere (docs/devices.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from .models import StoredReading
from .readings import Protocol, Quality, Reading, Source

log = logging.getLogger("batchline.gateway")

COLUMNS = (
    "key",
    "at",
    "unit",
    "protocol",
    "endpoint",
    "tag",
    "value_type",
    "value_num",
    "value_text",
    "quality",
    "status",
    "source_time",
    "gateway_time",
    "stored_at",
    "unit_of_measure",
    "sequence",
    "historical",
    "flags",
)
AT, SOURCE_TIME, GATEWAY_TIME, STORED_AT = (
    COLUMNS.index(c) for c in ("at", "source_time", "gateway_time", "stored_at")
)
TABLE = StoredReading._meta.db_table
_EXACT = 2**53  # the largest integer a double holds exactly

# A row: the column values in COLUMNS order, ``stored_at`` left None until written.
Row = tuple[Any, ...]


def key_of(reading: Reading) -> bytes:
    return hashlib.blake2b(reading.key.encode(), digest_size=16).digest()


def _text(value: str) -> str:
    """Text every database and the spool can hold, the odd characters kept visible as escapes.

    PostgreSQL's text cannot hold NUL, and a lone surrogate (a device's broken UTF-16) is no UTF-8
    at all: refusing the value would lose the observation, so it is written as its escape.
    """
    if value.isascii():
        return value.replace("\x00", "\\x00")
    return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def row_of(reading: Reading) -> Row:
    value = reading.value
    kind, number, text = "", None, None
    if isinstance(value, bool):
        kind, number = "b", float(value)
    elif isinstance(value, int):
        kind, number = "i", float(value)
        if abs(value) > _EXACT:
            text = str(value)
    elif isinstance(value, float):
        kind, number = "f", value
    elif isinstance(value, str):
        kind, text = "s", _text(value)
    s = reading.source
    return (
        key_of(reading),
        (reading.source_time or reading.gateway_time).astimezone(dt.UTC),
        _text(s.unit),
        str(s.protocol),
        _text(s.endpoint),
        _text(s.tag),
        kind,
        number,
        text,
        str(reading.quality),
        _text(reading.status),
        reading.source_time.astimezone(dt.UTC) if reading.source_time else None,
        reading.gateway_time.astimezone(dt.UTC),
        None,
        _text(reading.unit_of_measure),
        _text(reading.sequence),
        reading.historical,
        ",".join(sorted(reading.flags)),
    )


def rows_of(readings: Iterable[Reading]) -> list[Row]:
    return [row_of(r) for r in readings]


def reading_of(row: Row) -> Reading:
    """The reading a row (a spooled one) was made from, for the judge; text as it was stored."""
    kind, number, text = row[6], row[7], row[8]
    value: float | int | bool | str | None = None
    if kind == "b":
        value = bool(number)
    elif kind == "i":
        value = int(text) if text else int(number)
    elif kind == "f":
        value = float(number)
    elif kind == "s":
        value = text
    return Reading(
        source=Source(unit=row[2], protocol=Protocol(row[3]), endpoint=row[4], tag=row[5]),
        value=value,
        quality=Quality(row[9]),
        source_time=row[11],
        gateway_time=row[12],
        unit_of_measure=row[14],
        status=row[10],
        sequence=row[15],
        historical=bool(row[16]),
        flags=frozenset(f for f in (row[17] or "").split(",") if f),
    )


# --- partitions (PostgreSQL) ---------------------------------------------------------------------

_PARTITION = re.compile(rf"^{TABLE}_p(\d{{8}})$")


def partitioned(conn: BaseDatabaseWrapper) -> bool:
    return conn.vendor == "postgresql"


# The days whose partition this process made or found, by database alias: ``rows_store`` asks the
# database only for a day not in here. Forgotten when this process applies retention. A partition
# dropped behind this process's back costs nothing but place: that day's rows go to the default
# partition, and move into the day's own when the hourly round makes it again.
_PARTITIONS_SEEN: set[tuple[str, dt.date]] = set()


def partition_make(day: dt.date, *, using: str = "default") -> str:
    """The day's partition, made if missing (rows of that day waiting in the default partition move in)."""
    conn = connections[using]
    with transaction.atomic(using=using), conn.cursor() as cursor:
        # Making a partition locks the whole table: rather give up (the caller spools and tries
        # again) than queue behind a long report and stall every writer queued behind it.
        cursor.execute("SET LOCAL lock_timeout = '5s'")
        cursor.execute("SELECT gateway_reading_partition(%s)", [day])
        name: str = cursor.fetchone()[0]
    if not conn.in_atomic_block:  # committed, not just inside a caller's transaction
        _PARTITIONS_SEEN.add((using, day))
    return name


def partitions_ensure(
    *, ahead_days: int | None = None, now: dt.datetime | None = None, using: str = "default"
) -> list[str]:
    """Today's partition and those of the next ``ahead_days`` (``GATEWAY_PARTITIONS_AHEAD_DAYS``)."""
    if not partitioned(connections[using]):
        return []
    ahead = settings.GATEWAY_PARTITIONS_AHEAD_DAYS if ahead_days is None else ahead_days
    today = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()
    return [partition_make(today + dt.timedelta(days=n), using=using) for n in range(ahead + 1)]


def partitions(*, using: str = "default") -> list[tuple[str, dt.date | None]]:
    """The table's partitions by name, with their day (None for the default partition), oldest first."""
    conn = connections[using]
    if not partitioned(conn):
        return []
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        names = [row[0] for row in cursor.fetchall()]
    out: list[tuple[str, dt.date | None]] = []
    for name in names:
        match = _PARTITION.match(name)
        out.append((name, dt.datetime.strptime(match.group(1), "%Y%m%d").date() if match else None))
    return sorted(out, key=lambda item: (item[1] is not None, item[1] or dt.date.min))


# --- writing -------------------------------------------------------------------------------------

_STAGING = f"{TABLE}_staging"
_COLUMN_LIST = ", ".join(COLUMNS)
# The database connections (psycopg's, so a reconnection starts afresh) whose session has the
# staging table: made once per session rather than asked for with every batch.
_STAGED: weakref.WeakSet[Any] = weakref.WeakSet()


def rows_store(rows: Sequence[Row], *, using: str = "default") -> int:
    """Store a batch in one transaction; how many of its rows were new (the rest were stored before).

    Raises the database's error when it cannot be reached: the caller spools the batch.
    """
    if not rows:
        return 0
    conn = connections[using]
    now = dt.datetime.now(dt.UTC)
    stamped = [(*row[:STORED_AT], now, *row[STORED_AT + 1 :]) for row in rows]
    if partitioned(conn):
        # One round trip per day in the batch (usually one): the function returns at once when the
        # partition is there. Its own short transaction, so that making one holds no lock while
        # the batch is written.
        for day in sorted({row[AT].date() for row in stamped}):
            if (using, day) not in _PARTITIONS_SEEN:
                partition_make(day, using=using)
        return _store_postgresql(conn, stamped, using)
    return _store_sqlite(conn, stamped, using)


def _store_postgresql(conn: BaseDatabaseWrapper, rows: Sequence[Row], using: str) -> int:
    """COPY the batch straight into the table; if a row of it is there already (a replay), COPY it
    into the staging table instead and move over only the rows that are new.

    Almost every batch is new rows, and a straight COPY costs a little over half of the staging
    path (bench/gateway.py). A row stored before makes the COPY fail on the primary key, which
    takes back only the savepoint around it; nothing is stored twice either way.
    """
    import psycopg

    # Inside a caller's transaction (a test's) nothing here is committed by this call: the staging
    # table may vanish with the caller's rollback, and this batch's rows would still be staged for
    # the next; so there it is asked for and emptied every time.
    nested = conn.in_atomic_block
    conn.ensure_connection()
    session = conn.connection
    try:
        with transaction.atomic(using=using), conn.cursor() as cursor:
            raw = cursor.cursor  # psycopg's own cursor: Django's wrapper has no COPY
            try:
                with (
                    transaction.atomic(using=using),
                    raw.copy(f"COPY {TABLE} ({_COLUMN_LIST}) FROM STDIN") as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
                return len(rows)
            except psycopg.errors.UniqueViolation:
                pass  # some were stored before: the staging path below skips them
            if nested or session not in _STAGED:
                # Lives as long as the session; its rows go at each commit.
                cursor.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (LIKE {TABLE}) ON COMMIT DELETE ROWS"
                )
            with raw.copy(f"COPY {_STAGING} ({_COLUMN_LIST}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {TABLE} ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM {_STAGING} "  # noqa: S608
                "ON CONFLICT DO NOTHING"
            )
            inserted = int(cursor.rowcount)
            if nested:
                cursor.execute(f"TRUNCATE {_STAGING}")
    except BaseException:
        _STAGED.discard(session)  # a rollback takes back a staging table made in it
        raise
    if not nested:
        _STAGED.add(session)
    return inserted


def _sqlite_params(conn: BaseDatabaseWrapper, row: Row) -> list[Any]:
    params = list(row)
    for i in (AT, SOURCE_TIME, GATEWAY_TIME, STORED_AT):
        params[i] = conn.ops.adapt_datetimefield_value(params[i])
    return params


def _store_sqlite(conn: BaseDatabaseWrapper, rows: Sequence[Row], using: str) -> int:
    sql = (
        f"INSERT OR IGNORE INTO {TABLE} ({_COLUMN_LIST}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    )
    with transaction.atomic(using=using), conn.cursor() as cursor:
        cursor.executemany(sql, [_sqlite_params(conn, row) for row in rows])
        return int(cursor.rowcount)  # the rows inserted: those ignored are not counted


# --- retention -----------------------------------------------------------------------------------


def retention_apply(
    *, days: int | None = None, now: dt.datetime | None = None, using: str = "default"
) -> int:
    """Remove process data older than ``days`` (``GATEWAY_RETENTION_DAYS``; 0 keeps everything).

    PostgreSQL drops each day partition that ended before the cut-off (and deletes such rows from
    the default partition); SQLite deletes the rows. Returns the partitions dropped (PostgreSQL) or
    rows deleted (SQLite).
    """
    keep = settings.GATEWAY_RETENTION_DAYS if days is None else days
    if keep <= 0:
        return 0
    _PARTITIONS_SEEN.difference_update({seen for seen in _PARTITIONS_SEEN if seen[0] == using})
    cutoff = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC) - dt.timedelta(days=keep)
    conn = connections[using]
    if not partitioned(conn):
        with transaction.atomic(using=using), conn.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {TABLE} WHERE at < %s",  # noqa: S608
                [conn.ops.adapt_datetimefield_value(cutoff)],
            )
            return int(cursor.rowcount)
    dropped = 0
    for name, day in partitions(using=using):
        if day is None or dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC) > cutoff:
            continue
        with transaction.atomic(using=using), conn.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '5s'")  # as partition_make; retried next round
            cursor.execute(f"DROP TABLE IF EXISTS {conn.ops.quote_name(name)}")
        dropped += 1
        log.info("process data retention: dropped %s (older than %s days)", name, keep)
    with transaction.atomic(using=using), conn.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}_default WHERE at < %s", [cutoff])  # noqa: S608
    return dropped
