"""``batchline audit verify``: recompute the hash chain and replay it against the live tables.

The chain check finds an entry that was changed, removed or moved. The replay
folds every recorded change into the state each record should have now and
compares it with the live row, so an edit made with raw SQL behind the
application's back is found and named (21 CFR 11.10(a): "discern invalid or
altered records"), even when a later, legitimate change overwrote it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from django.apps import apps
from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from batchline.rules import hashchain

from .models import AuditedModel
from .services import audit_state, record_type_of

_COLUMNS = "id, {at}, actor_id, actor_username, actor_name, action, record_type, record_id, changes, reason, via, prev_hash, hash"
# The time as text, so that a million entries are not each parsed into a
# datetime and formatted back: PostgreSQL formats it in canonical form itself;
# SQLite holds what Django wrote ("YYYY-MM-DD HH:MM:SS[.ffffff]", UTC).
_AT = {
    "postgresql": "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    "sqlite": "CAST(at AS TEXT)",
}
_FETCH = 5000
# json.loads without its per-call checks and whitespace matching: the stored
# changes are canonical JSON written by this application.
_decode = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # "chain" or "record"
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class Report:
    entries: int = 0
    records: int = 0
    head_id: int | None = None
    head_hash: str = hashchain.GENESIS
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def _utc_text(value: str) -> str:
    if value.endswith("Z"):  # PostgreSQL formatted it already
        return value
    if len(value) == 19:  # Django leaves out ".000000"
        value += ".000000"
    if len(value) != 26:  # an offset or another format: take the slow, general road
        parsed = parse_datetime(value)
        assert parsed is not None, value
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value[:10] + "T" + value[11:] + "Z"


def _rows() -> Iterator[tuple[Any, ...]]:
    # A server-side cursor on PostgreSQL: a million entries never sit in memory at once.
    sql = f"SELECT {_COLUMNS.format(at=_AT[connection.vendor])} FROM audit_auditentry ORDER BY id"  # noqa: S608
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql)
        while batch := cursor.fetchmany(_FETCH):
            yield from batch


def audited_models() -> dict[str, type[AuditedModel]]:
    return {record_type_of(model): model for model in apps.get_models() if issubclass(model, AuditedModel)}


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@contextmanager
def _snapshot() -> Iterator[None]:
    """One consistent view of the trail and the live tables, without blocking writers.

    Otherwise a change committed between reading the trail and reading a table
    would look like an edit behind the application's back.
    """
    if connection.in_atomic_block:  # already inside a transaction (tests): it is the snapshot
        yield
        return
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
        return
    # SQLite: a deferred read transaction sees one snapshot (WAL) and takes no write lock,
    # unlike Django's atomic(), which this project runs as BEGIN IMMEDIATE.
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("BEGIN DEFERRED")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ROLLBACK")


def verify(*, replay: bool = True, max_findings: int = 100) -> Report:
    with _snapshot():
        return _verify(replay=replay, max_findings=max_findings)


def _verify(*, replay: bool, max_findings: int) -> Report:
    report = Report()
    models = audited_models() if replay else {}
    # (record_type, record_id) -> field -> (value, id of the entry that set it)
    trail: dict[tuple[str, str], dict[str, tuple[Any, int]]] = {}

    def note(kind: str, message: str) -> None:
        if len(report.findings) < max_findings:
            report.findings.append(Finding(kind, message))

    def chained() -> Iterator[tuple[int, str, str, hashchain.Fields]]:
        for row in _rows():
            report.entries += 1
            entry_id, rtype, rid, changes = row[0], row[6], row[7], row[8]
            if rtype in models and changes != "{}":
                state = trail.setdefault((rtype, rid), {})
                for name, (old, new) in _decode(changes, 0)[0].items():
                    if name in state and state[name][0] != old:
                        note(
                            "record",
                            f"{rtype} #{rid}: entry #{entry_id} found {name} = {_show(old)}, "
                            f"but the trail had set it to {_show(state[name][0])} "
                            f"(entry #{state[name][1]}): changed outside the application",
                        )
                    state[name] = (new, entry_id)
            report.head_id, report.head_hash = entry_id, row[12]
            yield entry_id, row[11], row[12], cast(hashchain.Fields, (_utc_text(row[1]), *row[2:11]))

    for problem in hashchain.verify(chained()):
        note("chain", str(problem))

    for rtype, model in models.items():
        for obj in model.objects.all().order_by("pk").iterator(chunk_size=2000):
            report.records += 1
            key = (rtype, str(obj.pk))
            recorded = trail.pop(key, None)
            if recorded is None:
                note(
                    "record",
                    f"{rtype} #{obj.pk} has no audit trail: created outside the application",
                )
                continue
            for name, value in audit_state(obj).items():
                if name not in recorded:
                    continue
                expected, entry_id = recorded[name]
                if value != expected:
                    note(
                        "record",
                        f"{rtype} #{obj.pk}: {name} is {_show(value)} in the table but "
                        f"{_show(expected)} in the audit trail (entry #{entry_id}): "
                        "changed outside the application",
                    )
    for rtype, rid in sorted(trail):
        note(
            "record",
            f"{rtype} #{rid} is in the audit trail but not in the table: deleted outside the application",
        )
    return report
