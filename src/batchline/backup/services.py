"""``batchline backup`` and ``batchline restore`` (Annex 11 §7.2; NFR-03).

A backup is one file, the database as it stood at one instant: SQLite's
online backup API (a consistent copy while others go on writing) or
``pg_dump`` in its custom format, run on a snapshot exported from a
repeatable-read transaction. Beside it a manifest describes that same
instant: the file's SHA-256, the row count and content hashes of every GMP
table, the audit trail's size and head, the time and the database vendor. The
manifest is signed with the installation key, so that whoever rewrites a
backup file cannot make its manifest agree without the key. The backup is
then named in the audit trail of the database it came from.

A restore goes only into an empty database, and is verified at once: the
file against its manifest and signature, ``audit verify`` (the chain, its
checkpoints and anchors, the triggers, the replay against the live tables),
and the counts and hashes of every GMP table against the manifest. Every
difference is reported in words.
"""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import DatabaseError, connection, transaction

from batchline import keys
from batchline.audit.anchors import Anchor, Anchored, AnchorProblem, FileAnchor, configured_anchors
from batchline.audit.services import Actor, audit_append

from .contents import TableContents, audit_head, compare_tables, database_contents

MANIFEST_FORMAT = "batchline-backup/1"


class BackupError(Exception):
    """A backup or restore that could not be made or was refused; the message says why."""


def command_line_actor() -> Actor:
    """Backups run from cron or an operator's shell: the operating-system account is who did it."""
    try:
        account = getpass.getuser()
    except (KeyError, OSError):
        account = str(os.getuid())
    return Actor(id=None, username=f"os:{account}", name=f"operating-system account {account}", via="cli")


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed_document(name: str, content: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``{name: content, key, signature}`` signed with the installation key over canonical JSON.

    Checked with :func:`signature_valid` and only the public key. Without a
    usable key the document is written unsigned and the problem returned.
    """
    try:
        signer = keys.installation_key()
        signature = base64.b64encode(signer.sign(_canonical_bytes(content))).decode()
        return {name: content, "key": keys.fingerprint(signer.public_key_pem()), "signature": signature}, ""
    except keys.KeyProblem as problem:
        return {name: content, "key": None, "signature": None}, str(problem)


def signature_valid(public_key_pem: bytes, content: dict[str, Any], signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        return False
    return keys.verify(public_key_pem, _canonical_bytes(content), signature)


@dataclass
class BackupResult:
    path: Path
    manifest_path: Path
    manifest: dict[str, Any]
    seconds: float
    warnings: list[str] = field(default_factory=list)


@contextmanager
def django_cursor() -> Iterator[Any]:
    """A cursor on Django's connection: server-side on PostgreSQL (inside the caller's transaction)."""
    cursor = connection.chunked_cursor() if connection.vendor == "postgresql" else connection.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def _sqlite_connect(path: Path | str, *, read_only: bool = False) -> sqlite3.Connection:
    # The same type detection as Django's connection, so that a value hashes alike read either way.
    target = f"file:{path}?mode=ro" if read_only else str(path)
    return sqlite3.connect(
        target, uri=read_only, detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES
    )


def _describe_sqlite_file(db: sqlite3.Connection) -> tuple[dict[str, TableContents], dict[str, Any]]:
    def open_cursor() -> Any:
        return closing(db.cursor())

    with closing(db.cursor()) as cursor:
        head = audit_head(cursor)
    return database_contents(open_cursor, "sqlite"), head


def _backup_sqlite(target: Path) -> tuple[dict[str, TableContents], dict[str, Any]]:
    connection.ensure_connection()
    source = connection.connection
    copy = _sqlite_connect(target)
    try:
        # The online backup API: a consistent copy of the whole file while others write.
        source.backup(copy)
        # A self-contained file: no write-ahead log beside it (the live database runs in WAL mode).
        copy.execute("PRAGMA journal_mode=DELETE")
        # Described from the copy itself, so the manifest speaks of exactly what the file holds.
        return _describe_sqlite_file(copy)
    finally:
        copy.close()


def _pg_environment() -> dict[str, str]:
    settings = connection.settings_dict
    env = dict(os.environ)
    for key, variable in (
        ("HOST", "PGHOST"),
        ("PORT", "PGPORT"),
        ("USER", "PGUSER"),
        ("PASSWORD", "PGPASSWORD"),
    ):
        if settings.get(key):
            env[variable] = str(settings[key])
    return env


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed: on Debian, apt-get install postgresql-client "
            "(of the server's major version or newer)"
        )
    return found


def _backup_postgresql(target: Path) -> tuple[dict[str, TableContents], dict[str, Any]]:
    pg_dump = _pg_tool("pg_dump")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            (snapshot,) = cursor.fetchone()
            head = audit_head(cursor)
        # pg_dump reads the same snapshot as this transaction, while it is open: the dump and
        # the manifest describe one instant, whatever is committed meanwhile.
        dump = subprocess.Popen(  # noqa: S603 (a fixed program and arguments)
            [
                pg_dump,
                "--format=custom",
                f"--snapshot={snapshot}",
                f"--file={target}",
                f"--dbname={connection.settings_dict['NAME']}",
            ],
            env=_pg_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            tables = database_contents(django_cursor, "postgresql")
        finally:
            _, errors = dump.communicate()
        if dump.returncode != 0:
            raise BackupError(f"pg_dump failed (exit {dump.returncode}): {errors.strip()}")
    return tables, head


def _checkpoint(warnings: list[str]) -> dict[str, Any] | None:
    """A signed checkpoint, anchored outside the database, just before the copy: what a restore is held to."""
    from batchline.integrity.verification import checkpoint_now

    try:
        made = checkpoint_now()
    except keys.KeyProblem as problem:
        warnings.append(f"no checkpoint was taken before the backup ({problem})")
        return None
    warnings += [f"the checkpoint before the backup was not anchored: {p}" for p in made.anchor_problems]
    return {"number": made.checkpoint.number, "hash": made.checkpoint.hash}


def applied_migrations() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY id")
        latest: dict[str, str] = {}
        for app, name in cursor.fetchall():
            latest[app] = max(latest.get(app, ""), name)
    return dict(sorted(latest.items()))


def backup_create(path: Path, *, actor: Actor) -> BackupResult:
    """Write the backup file, its signed manifest, and an audit entry naming both.

    Never overwrites a file. The audit entry is appended after the copy was
    taken, so it is in the live database's trail, not in the backup.
    """
    started = time.perf_counter()
    path = path.resolve()
    manifest_file = manifest_path(path)
    for existing in (path, manifest_file):
        if existing.exists():
            raise BackupError(f"{existing} exists: a backup never overwrites a file; choose a new name")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a directory")
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    vendor = connection.vendor
    warnings: list[str] = []
    checkpoint = _checkpoint(warnings)
    try:
        if vendor == "sqlite":
            tables, head = _backup_sqlite(partial)
        elif vendor == "postgresql":
            tables, head = _backup_postgresql(partial)
        else:
            raise BackupError(f"Batchline backs up SQLite and PostgreSQL, not {vendor}")
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "file": path.name,
            "bytes": partial.stat().st_size,
            "sha256": file_sha256(partial),
            "vendor": vendor,
            "database": str(connection.settings_dict["NAME"]),
            "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "created_by": actor.username,
            "migrations": applied_migrations(),
            "audit": head,
            "checkpoint": checkpoint,
            "tables": {name: contents.as_json() for name, contents in tables.items()},
        }
        signed, problem = signed_document("manifest", manifest)
        if problem:
            warnings.append(
                f"the manifest is NOT signed ({problem}); a restore will report it as unverifiable"
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    manifest_file.write_text(json.dumps(signed, indent=1, sort_keys=True) + "\n")
    with transaction.atomic():
        audit_append(
            actor=actor,
            action="backup",
            record_type="backup",
            record_id=manifest["sha256"],
            changes={
                "file": [None, str(path)],
                "sha256": [None, manifest["sha256"]],
                "audit_last_id": [None, head["last_id"]],
                "audit_count": [None, head["count"]],
                "checkpoint": [None, checkpoint["number"] if checkpoint else None],
            },
            reason=f"backup written to {path}",
        )
    return BackupResult(path, manifest_file, manifest, time.perf_counter() - started, warnings)


# --- restore ------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    manifest: dict[str, Any]
    differences: list[str]
    notes: list[str]
    audit_entries: int
    records: int
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.differences

    def as_json(self, *, backup: Path, actor: Actor) -> dict[str, Any]:
        """The drill's record (A11-10): what was restored, where, by whom, and what the verification found."""
        m = self.manifest
        return {
            "format": "batchline-restore-report/1",
            "backup": {
                "file": str(backup),
                "sha256": m["sha256"],
                "created_at": m["created_at"],
                "vendor": m["vendor"],
                "database": m["database"],
            },
            "restored_into": str(connection.settings_dict["NAME"]),
            "host": socket.gethostname(),
            "restored_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "restored_by": actor.username,
            "verified": self.ok,
            "differences": self.differences,
            "notes": self.notes,
            "audit_entries": self.audit_entries,
            "gmp_tables": len(m["tables"]),
            "gmp_rows": sum(t["count"] for t in m["tables"].values()),
            "seconds": round(self.seconds, 3),
        }


def _read_manifest(path: Path) -> dict[str, Any]:
    manifest_file = manifest_path(path)
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    try:
        signed = json.loads(manifest_file.read_text())
        manifest = signed["manifest"]
        if manifest.get("format") != MANIFEST_FORMAT:
            raise BackupError(f"{manifest_file} is not a Batchline backup manifest ({MANIFEST_FORMAT})")
    except FileNotFoundError:
        raise BackupError(
            f"no manifest {manifest_file} beside the backup: without it nothing can be verified"
        ) from None
    except (ValueError, KeyError, TypeError) as problem:
        raise BackupError(f"{manifest_file} cannot be read as a backup manifest: {problem}") from None
    return dict(signed)


def _signature_problems(signed: dict[str, Any]) -> list[str]:
    if not signed.get("signature"):
        return [
            "the manifest is not signed: its figures prove nothing against someone who could write both files"
        ]
    try:
        public_key = keys.installation_public_key()
    except (keys.KeyProblem, OSError) as problem:
        return [f"the manifest's signature cannot be checked: {problem}"]
    if not signature_valid(public_key, signed["manifest"], signed["signature"]):
        return [
            "the manifest's signature does not verify with the installation's public key "
            f"({keys.fingerprint(public_key)}; the manifest names {signed.get('key')}): "
            "the manifest was altered or signed by another key"
        ]
    return []


def database_tables() -> list[str]:
    try:
        with connection.cursor() as cursor:
            return sorted(connection.introspection.table_names(cursor))
    except DatabaseError as problem:
        raise BackupError(
            f"cannot open the database {connection.settings_dict['NAME']} to restore into: {problem}"
        ) from None


def _require_empty() -> None:
    tables = database_tables()
    if tables:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise BackupError(
            f"Refused: the database {connection.settings_dict['NAME']} is not empty; it holds "
            f"{len(tables)} tables ({shown}). A backup is restored only into an empty database, "
            "so that nothing already there is overwritten or mixed in: create a new one "
            "(PostgreSQL: createdb; SQLite: point DATABASE_URL at a new file) and restore into it."
        )


def _restore_sqlite(path: Path) -> None:
    target = connection.settings_dict["NAME"]
    connection.close()  # Django reopens it (in WAL mode) for the verification
    source = _sqlite_connect(path, read_only=True)
    copy = sqlite3.connect(str(target))
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()


def _restore_postgresql(path: Path, *, no_owner: bool) -> None:
    pg_restore = _pg_tool("pg_restore")
    arguments = [
        pg_restore,
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={connection.settings_dict['NAME']}",
    ]
    if no_owner:
        arguments += ["--no-owner", "--no-privileges"]
    connection.close()
    done = subprocess.run(  # noqa: S603 (a fixed program and arguments)
        [*arguments, str(path)], env=_pg_environment(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BackupError(
            f"pg_restore failed (exit {done.returncode}); nothing was restored: {done.stderr.strip()}"
        )


class AnchorAsOfBackup:
    """An anchor read as it stood when the backup was taken: its newest checkpoint up to the backup's.

    A restored database is held to the checkpoint signed and anchored just
    before its copy was taken; the checkpoints anchored since are what the
    backup cannot hold, and are reported as such (``later``).
    """

    readable = True

    def __init__(self, anchor: Anchor, number: int) -> None:
        self.anchor, self.number = anchor, number
        self.name = f"{anchor.name} (as of the backup's checkpoint {number})"
        self.later: int | None = None

    def write(self, checkpoint: Anchored) -> None:
        raise AnchorProblem(f"{self.name} is only read")

    def newest(self) -> Anchored | None:
        if isinstance(self.anchor, FileAnchor):
            held = list(self.anchor.lines())
        else:
            newest = self.anchor.newest()
            held = [newest] if newest is not None else []
        later = [a.number for a in held if a.number > self.number]
        self.later = max(later) if later else None
        return max((a for a in held if a.number <= self.number), key=lambda a: a.number, default=None)


def _anchors_as_of_backup(manifest: dict[str, Any], differences: list[str]) -> list[Anchor]:
    readable = [a for a in configured_anchors() if a.readable]
    checkpoint = manifest.get("checkpoint")
    if not checkpoint:
        return readable
    held: list[Anchor] = []
    for anchor in readable:
        if isinstance(anchor, FileAnchor) and not anchor.exists():
            differences.append(
                f"the anchor {anchor.name} is missing: the backup's checkpoint {checkpoint['number']} cannot be "
                "checked against what was anchored (point BATCHLINE_ANCHOR_PATH at the installation's anchor "
                "or a copy of it)"
            )
            continue
        held.append(AnchorAsOfBackup(anchor, int(checkpoint["number"])))
    return held


def restore(path: Path, *, actor: Actor, no_owner: bool = False) -> RestoreReport:
    """Restore ``path`` into the configured, empty database and verify it against its manifest.

    Refuses (BackupError, nothing written) a database that holds any table, a
    backup of another vendor or one without a manifest. After the restore,
    every difference from the manifest is listed; the restore and its outcome
    are appended to the restored trail.
    """
    # The one verifier of the trail (chains, checkpoints, anchors, triggers, the replay, the signatures);
    # imported here because the worker's app sits above this one.
    from batchline.integrity.verification import full_verify

    started = time.perf_counter()
    path = path.resolve()
    signed = _read_manifest(path)
    manifest = signed["manifest"]
    if manifest.get("vendor") != connection.vendor:
        raise BackupError(
            f"Refused: {path.name} is a {manifest.get('vendor')} backup and the database is "
            f"{connection.vendor}; restore it into a database of its own kind"
        )
    _require_empty()

    differences: list[str] = []
    sha = file_sha256(path)
    if sha != manifest["sha256"]:
        differences.append(
            f"the backup file's SHA-256 is {sha}, the manifest says {manifest['sha256']}: "
            "the file is not the one that was written"
        )
    differences += _signature_problems(signed)

    try:
        if connection.vendor == "sqlite":
            _restore_sqlite(path)
        else:
            _restore_postgresql(path, no_owner=no_owner)
    except BackupError as problem:
        raise BackupError("; ".join([str(problem), *differences])) from None

    notes: list[str] = []
    as_of = _anchors_as_of_backup(manifest, differences)
    report = full_verify(anchors=as_of)
    differences += [f"audit verify, {finding.kind}: {finding}" for finding in report.findings]
    notes += report.notes
    for anchor in as_of:
        if isinstance(anchor, AnchorAsOfBackup) and anchor.later is not None:
            notes.append(
                f"{anchor.anchor.name} holds checkpoints up to {anchor.later}, newer than the backup's "
                f"{anchor.number}: what was recorded after the backup ({manifest['created_at']}) is not in "
                "this database"
            )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        with connection.cursor() as cursor:
            head = audit_head(cursor)
        tables = database_contents(django_cursor, connection.vendor)
    expected = {name: TableContents.from_json(data) for name, data in manifest["tables"].items()}
    differences += compare_tables(expected, tables)
    if head != manifest["audit"]:
        differences.append(
            f"the audit trail has {head['count']} entries up to #{head['last_id']} on chains {head['heads']}; "
            f"the manifest says {manifest['audit']['count']} up to #{manifest['audit']['last_id']} "
            f"on chains {manifest['audit']['heads']}"
        )
    seconds = time.perf_counter() - started
    with transaction.atomic():
        audit_append(
            actor=actor,
            action="restore",
            record_type="backup",
            record_id=manifest["sha256"],
            changes={
                "file": [None, str(path)],
                "verified": [None, not differences],
                "differences": [None, len(differences)],
            },
            reason=(
                f"restored from {path.name} (backup of {manifest['created_at']}); "
                + ("verified against its manifest" if not differences else f"{len(differences)} differences")
            ),
        )
    return RestoreReport(manifest, differences, notes, report.entries, report.records, seconds)
