"""``batchline audit verify``: the checkpoints, the anchors, the chains, the triggers and a replay.

In order: the signed checkpoints in the database (each signature, their
numbering and links); the anchors outside the database, which the database
must extend (an older copy restored, checkpoints deleted or rewritten); every
chain (gaps, links, content, time running backwards); the heads the newest
signed checkpoint holds, which the chains must still pass through (a
truncated trail, a chain rewritten and rehashed behind the triggers); the
append-only triggers themselves; and the replay. The chain check finds an
entry that was changed, removed or moved. The replay
folds every recorded change into the state each record should have now and
compares it with the live row, so an edit made with raw SQL behind the
application's back is found and named (21 CFR 11.10(a): "discern invalid or
altered records"), even when a later, legitimate change overwrote it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from django.apps import apps
from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from batchline.keys import installation_public_key
from batchline.rules import hashchain

from . import db
from .anchors import Anchor, AnchorProblem, FileAnchor, configured_anchors
from .checkpoints import Signed
from .models import AuditedModel, Checkpoint
from .services import audit_state, record_type_of

_COLUMNS = (
    "id, {at}, actor_id, actor_username, actor_name, action, record_type, record_id, changes, reason, via, "
    "chain, seq, prev_hash, hash"
)
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
    heads: dict[int, hashchain.Head] = field(default_factory=dict)
    checkpoints: int = 0
    newest_checkpoint: int | None = None
    anchors: list[str] = field(default_factory=list)  # what was checked, for the summary
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not a failure

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


def verify(
    *,
    replay: bool = True,
    max_findings: int = 100,
    clock_tolerance: float = 120.0,
    public_key: bytes | None = None,
    anchors: Sequence[Anchor] | None = None,
) -> Report:
    """Check everything; ``public_key`` and ``anchors`` default to the installation's own."""
    if public_key is None:
        public_key = installation_public_key()
    with _snapshot():
        return _verify(
            replay=replay,
            max_findings=max_findings,
            clock_tolerance=clock_tolerance,
            public_key=public_key,
            anchors=configured_anchors() if anchors is None else anchors,
        )


def _verify(
    *, replay: bool, max_findings: int, clock_tolerance: float, public_key: bytes, anchors: Sequence[Anchor]
) -> Report:
    report = Report()
    models = audited_models() if replay else {}
    # (record_type, record_id) -> field -> (value, id of the entry that set it)
    trail: dict[tuple[str, str], dict[str, tuple[Any, int]]] = {}

    def note(kind: str, message: str) -> None:
        if len(report.findings) < max_findings:
            report.findings.append(Finding(kind, message))

    signed = _checkpoints_verify(report, note, public_key, anchors)

    def chained() -> Iterator[hashchain.Row]:
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
            report.head_id, report.head_hash = entry_id, row[14]
            fields = cast(hashchain.Fields, (_utc_text(row[1]), *row[2:11]))
            yield entry_id, row[11], row[12], row[13], row[14], fields

    for problem in hashchain.verify(chained(), heads=report.heads, clock_tolerance=clock_tolerance):
        note("chain", str(problem))
    if signed is not None:
        _signed_heads_verify(report, note, signed)
    _head_rows_verify(report, note)

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
    for table, trigger in db.triggers_missing(connection):
        note(
            "trigger",
            f"{table}: the append-only trigger {trigger} is missing or disabled: "
            "its rows can be changed or deleted without the database refusing",
        )
    return report


Note = Callable[[str, str], None]


def _when(signed: Signed) -> str:
    return str(signed.data.get("at", "?"))


def _checkpoints_verify(
    report: Report, note: Note, public_key: bytes, anchors: Sequence[Anchor]
) -> Signed | None:
    """Check the database's checkpoints and the anchors; the newest signed checkpoint to hold the chains to."""
    previous: Signed | None = None
    by_number: dict[int, Signed] = {}
    for row in Checkpoint.objects.order_by("number"):
        signed = Signed.of(row)
        report.checkpoints += 1
        by_number[signed.number] = signed
        expected = previous.number + 1 if previous else 1
        abandoned = signed.abandons() if signed.signature_valid(public_key) else None
        if signed.number != expected and not (abandoned and abandoned == (expected, signed.number - 1)):
            missing = expected if signed.number == expected + 1 else f"{expected}-{signed.number - 1}"
            note("checkpoint", f"checkpoint {missing} is missing from the database: deleted")
        if not signed.signature_valid(public_key):
            note(
                "checkpoint",
                f"checkpoint {signed.number}: its signature does not verify with the installation's public key "
                f"({keys_fingerprint(public_key)}): forged or altered",
            )
            previous = signed
            continue
        data = signed.data
        if data.get("number") != signed.number or row.hash != signed.hash:
            note("checkpoint", f"checkpoint {signed.number}: its columns do not match what was signed")
        if previous is not None and data.get("prev") != previous.hash:
            note("checkpoint", f"checkpoint {signed.number} does not link to checkpoint {previous.number}")
        previous = signed
    trusted = previous if previous is not None and previous.signature_valid(public_key) else None
    report.newest_checkpoint = previous.number if previous else None

    for anchor in anchors:
        if not anchor.readable:
            report.anchors.append(f"{anchor.name} (write-only, not checked)")
            continue
        report.anchors.append(anchor.name)
        try:
            if isinstance(anchor, FileAnchor) and not anchor.exists():
                if by_number:
                    note(
                        "anchor",
                        f"the anchor {anchor.name} is missing but the database holds {len(by_number)} "
                        "checkpoints: the anchor was removed or the path changed",
                    )
                continue
            held = anchor.newest()
        except AnchorProblem as exc:
            note("anchor", f"cannot read the anchor: {exc}")
            continue
        if held is None:
            if by_number:
                report.notes.append(f"{anchor.name} holds no checkpoint yet")
            continue
        anchored = Signed.of(held)
        if not anchored.signature_valid(public_key):
            note(
                "anchor",
                f"checkpoint {anchored.number} in {anchor.name}: its signature does not verify "
                "with the installation's public key: forged",
            )
            continue
        mine = by_number.get(anchored.number)
        newest = previous.number if previous else 0
        if anchored.number > newest:
            note(
                "anchor",
                f"{anchor.name} holds checkpoint {anchored.number} (signed {_when(anchored)}), but the database's "
                f"newest is {newest or 'none'}: the database was restored from an older copy, or its newest "
                "checkpoints were deleted",
            )
            trusted = anchored  # what the trail must still reach
        elif mine is not None and mine.payload != anchored.payload:
            note(
                "anchor",
                f"checkpoint {anchored.number} in the database differs from the one in {anchor.name}: rewritten",
            )
            trusted = anchored
        elif anchored.number < newest:
            report.notes.append(
                f"{anchor.name} holds checkpoints up to {anchored.number}; {anchored.number + 1}-{newest} "
                "are not anchored yet (the worker writes them on its next checkpoint)"
            )
    return trusted


def keys_fingerprint(public_key: bytes) -> str:
    from batchline.keys import KeyProblem, fingerprint

    try:
        return fingerprint(public_key)
    except (KeyProblem, ValueError):
        return "not an Ed25519 key"


def _signed_heads_verify(report: Report, note: Note, signed: Signed) -> None:
    """Every chain must still pass through the position and hash the checkpoint signed."""
    with connection.cursor() as cursor:
        for chain, (seq, hash_) in sorted(signed.heads().items()):
            head = report.heads.get(chain)
            ends = head.seq if head else 0
            if ends < seq:
                note(
                    "checkpoint",
                    f"chain {chain} ends at position {ends}, but checkpoint {signed.number} (signed "
                    f"{_when(signed)}) holds position {seq}: the newest entries were removed "
                    "(the trail was truncated or an older copy of the database restored)",
                )
                continue
            cursor.execute("SELECT hash FROM audit_auditentry WHERE chain = %s AND seq = %s", [chain, seq])
            row = cursor.fetchone()
            if row is None or row[0] != hash_:
                note(
                    "checkpoint",
                    f"chain {chain} position {seq} no longer has the hash checkpoint {signed.number} signed "
                    f"({hash_[:12]}…): the trail was rewritten and rehashed",
                )


def _head_rows_verify(report: Report, note: Note) -> None:
    """On PostgreSQL the writers keep each chain's head in a row; it must agree with the entries."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, seq, hash FROM audit_auditchain ORDER BY id")
        rows = cursor.fetchall()
    if not rows:
        note("chain", "audit_auditchain has no head rows: writers cannot append")
    for chain, seq, hash_ in rows:
        head = report.heads.get(chain, hashchain.Head())
        if (seq, hash_) != (head.seq, head.hash):
            note(
                "chain",
                f"chain {chain}: its head row says position {seq}, but its entries end at {head.seq}: "
                "entries were removed or added behind the application's back",
            )
