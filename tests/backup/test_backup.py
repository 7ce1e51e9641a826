"""Backup, restore, the refused commands and the data-migration check, as an operator runs them: real processes.

SQLite through the online backup API on real files; PostgreSQL through
pg_dump and pg_restore into databases of their own (named after the test
database), when DATABASE_URL names PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from batchline.accounts.models import User
from batchline.audit.db import install_sql
from batchline.audit.models import AuditEntry
from batchline.backup.services import signature_valid
from tests.conftest import CI
from tests.test_cli import batchline


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the demo seeded on SQLite (once per module; each test works on a copy)."""
    home = tmp_path_factory.mktemp("seeded")
    done = batchline(home, "demo", "--no-serve")
    assert done.returncode == 0, done.stderr
    return home


@pytest.fixture
def home(seeded: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(seeded, copy, ignore=shutil.ignore_patterns("static", "*-wal", "*-shm"))
    return copy


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as c:
        return list(c.execute(sql))


def count(db: Path, table: str) -> int:
    return int(rows(db, f"SELECT count(*) FROM {table}")[0][0])


@pytest.mark.req("A11-10", "NFR-03", "DI-08")
def test_a_sqlite_backup_restores_into_an_empty_database_and_verifies(home: Path) -> None:
    live = home / "batchline.sqlite3"
    backup = home / "backup.sqlite3"
    entries_before = count(live, "audit_auditentry")

    made = batchline(home, "backup", str(backup))
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"Backup written: {backup}")
    signed = json.loads((home / "backup.sqlite3.manifest.json").read_text())
    manifest = signed["manifest"]
    assert signed["signature"] and signed["key"].startswith("ed25519:")
    assert manifest["vendor"] == "sqlite"
    assert manifest["audit"]["count"] == entries_before
    assert manifest["tables"]["audit_auditentry"]["count"] == entries_before
    assert manifest["tables"]["execution_stepvalue"]["count"] == count(live, "execution_stepvalue") > 0
    assert "accounts_user_groups" in manifest["tables"]  # the roles people hold
    # The backup is named in the live trail, after the copy was taken.
    ((action, record_id, actor),) = rows(
        live, "SELECT action, record_id, actor_username FROM audit_auditentry WHERE record_type = 'backup'"
    )
    assert (action, record_id) == ("backup", manifest["sha256"]) and actor.startswith("os:")
    assert count(backup, "audit_auditentry") == entries_before

    again = batchline(home, "backup", str(backup))
    assert again.returncode == 1 and "a backup never overwrites a file" in again.stderr

    target = home / "restored.sqlite3"
    drill = home / "drill.json"
    restored = batchline(
        home, "restore", str(backup), "--report", str(drill), DATABASE_URL=sqlite_url(target)
    )
    assert restored.returncode == 0, restored.stderr
    assert "OK: restored and verified against its manifest." in restored.stdout
    assert "DIFFERENCE" not in restored.stderr
    # The drill's record, signed with the installation key: checked with the public key alone.
    record = json.loads(drill.read_text())
    public_key = (home / "keys" / "installation-ed25519.pem.pub").read_bytes()
    assert signature_valid(public_key, record["report"], record["signature"])
    assert record["report"]["verified"] is True and record["report"]["differences"] == []
    assert record["report"]["backup"]["sha256"] == manifest["sha256"]
    assert record["report"]["restored_into"] == str(target)
    record["report"]["verified"] = False
    assert not signature_valid(public_key, record["report"], record["signature"])
    for table in ("accounts_user", "execution_batch", "execution_stepvalue", "signatures_signature"):
        assert count(target, table) == count(backup, table) > 0
    # The restore is in the restored trail, which still verifies.
    assert rows(target, "SELECT action FROM audit_auditentry ORDER BY id DESC LIMIT 1") == [("restore",)]
    verified = batchline(home, "audit", "verify", DATABASE_URL=sqlite_url(target))
    assert verified.returncode == 0, verified.stderr

    # Checkpoints anchored after the backup: the restore is held to the backup's own checkpoint and
    # says what it cannot hold; 'audit verify' names the copy as older than the anchor.
    number = manifest["checkpoint"]["number"]
    assert batchline(home, "audit", "checkpoint").returncode == 0
    older = home / "older.sqlite3"
    restored = batchline(home, "restore", str(backup), DATABASE_URL=sqlite_url(older))
    assert restored.returncode == 0, restored.stderr
    assert (
        f"holds checkpoints up to {number + 1}, newer than the backup's {number}: "
        "what was recorded after the backup"
    ) in restored.stdout
    verified = batchline(home, "audit", "verify", DATABASE_URL=sqlite_url(older))
    assert verified.returncode == 1 and "restored from an older copy" in verified.stderr

    # Not into a database that holds anything: refused in words, nothing written.
    entries = count(target, "audit_auditentry")
    refused = batchline(home, "restore", str(backup), DATABASE_URL=sqlite_url(target))
    assert refused.returncode == 1
    assert "Refused: the database" in refused.stderr and "is not empty" in refused.stderr
    assert "restored only into an empty database" in refused.stderr
    assert count(target, "audit_auditentry") == entries


@pytest.mark.req("A11-10", "A11-09", "P11-01")
def test_a_tampered_backup_is_restored_with_every_difference_named(home: Path) -> None:
    backup = home / "backup.sqlite3"
    assert batchline(home, "backup", str(backup)).returncode == 0
    manifest_file = home / "backup.sqlite3.manifest.json"
    with sqlite3.connect(backup) as db:  # edit a recorded weight in the backup file, triggers put back
        db.execute("DROP TRIGGER execution_stepvalue_no_update")
        db.execute(
            "UPDATE execution_stepvalue SET number = 99.9 "
            "WHERE id = (SELECT min(id) FROM execution_stepvalue WHERE number IS NOT NULL)"
        )
        for statement in install_sql("sqlite", "execution_stepvalue"):
            db.execute(statement)

    target = home / "restored.sqlite3"
    drill = home / "drill.json"
    result = batchline(home, "restore", str(backup), "--report", str(drill), DATABASE_URL=sqlite_url(target))
    assert result.returncode == 2, result.stderr
    record = json.loads(drill.read_text())["report"]
    assert (
        record["verified"] is False and len(record["differences"]) == result.stderr.count("DIFFERENCE:") >= 3
    )
    assert "restored, but it does NOT verify" in result.stderr
    assert (
        "the backup file's SHA-256 is" in result.stderr
        and "the file is not the one that was written" in result.stderr
    )
    assert "execution.stepvalue #" in result.stderr and "changed outside the application" in result.stderr
    assert "table execution_stepvalue: the values of column number differ" in result.stderr

    # Whoever edits the file and fixes the manifest's SHA-256 to match, has not got the key.
    signed = json.loads(manifest_file.read_text())
    sha = result.stderr.split("the backup file's SHA-256 is ")[1].split(",")[0]
    signed["manifest"]["sha256"] = sha
    manifest_file.write_text(json.dumps(signed))
    second = home / "restored2.sqlite3"
    forged = batchline(home, "restore", str(backup), DATABASE_URL=sqlite_url(second))
    assert forged.returncode == 2
    assert "SHA-256" not in forged.stderr
    assert "the manifest's signature does not verify with the installation's public key" in forged.stderr


def test_a_restore_without_its_manifest_or_of_another_vendor_is_refused(home: Path) -> None:
    backup = home / "backup.sqlite3"
    assert batchline(home, "backup", str(backup)).returncode == 0
    lone = home / "lone.sqlite3"
    shutil.copy(backup, lone)
    target = home / "restored.sqlite3"
    missing = batchline(home, "restore", str(lone), DATABASE_URL=sqlite_url(target))
    assert (
        missing.returncode == 1
        and "no manifest" in missing.stderr
        and "nothing can be verified" in missing.stderr
    )
    assert not target.exists() or count(target, "sqlite_master") == 0

    nowhere = batchline(home, "restore", str(backup), DATABASE_URL=sqlite_url(home / "no" / "such.sqlite3"))
    assert nowhere.returncode == 1 and "cannot open the database" in nowhere.stderr, nowhere.stderr

    manifest_file = home / "backup.sqlite3.manifest.json"
    signed = json.loads(manifest_file.read_text())
    signed["manifest"]["vendor"] = "postgresql"
    manifest_file.write_text(json.dumps(signed))
    other = batchline(home, "restore", str(backup), DATABASE_URL=sqlite_url(target))
    assert other.returncode == 1
    assert "is a postgresql backup and the database is sqlite" in other.stderr
    assert not target.exists() or count(target, "sqlite_master") == 0


# --- PostgreSQL: pg_dump and pg_restore -------------------------------------------------------


def _postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


@pytest.fixture
def pg_databases() -> Iterator[tuple[str, str]]:
    """Two databases of this test's own, beside the test database: a source and a restore target."""
    url = _postgres_url()
    if url is None:
        pytest.skip("PostgreSQL backup; .ci/run runs the suite on PostgreSQL too")
    for tool in ("pg_dump", "pg_restore"):
        if shutil.which(tool) is None:
            message = f"{tool} is missing: apt-get install postgresql-client"
            if CI:
                pytest.fail(message)
            pytest.skip(message)
    import psycopg

    base, _, name = url.rpartition("/")
    names = (f"{name}_backup_src", f"{name}_backup_dst")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        for db in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}"')
            admin.execute(f'CREATE DATABASE "{db}"')
    yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        for db in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.mark.req("A11-10", "NFR-03", "DI-08")
def test_a_postgresql_backup_with_pg_dump_restores_and_verifies_and_a_tampered_one_does_not(
    tmp_path: Path, pg_databases: tuple[str, str]
) -> None:
    import psycopg

    source, target = pg_databases
    assert batchline(tmp_path, "demo", "--no-serve", DATABASE_URL=source).returncode == 0
    dump = tmp_path / "batchline.dump"
    made = batchline(tmp_path, "backup", str(dump), DATABASE_URL=source)
    assert made.returncode == 0, made.stderr
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    manifest = json.loads((tmp_path / "batchline.dump.manifest.json").read_text())["manifest"]
    assert manifest["vendor"] == "postgresql" and manifest["audit"]["count"] > 100
    with psycopg.connect(source) as db:
        assert db.execute(
            "SELECT count(*) FROM audit_auditentry WHERE action = 'backup' AND record_id = %s",
            [manifest["sha256"]],
        ).fetchone() == (1,)

    restored = batchline(tmp_path, "restore", str(dump), DATABASE_URL=target)
    assert restored.returncode == 0, restored.stderr
    assert "OK: restored and verified against its manifest." in restored.stdout
    with psycopg.connect(target) as db:
        # The append-only triggers came back with the tables.
        refused = db.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_auditentry_append_only'")
        assert refused.fetchone() == (1,)
        assert (
            db.execute("SELECT count(*) FROM execution_stepvalue").fetchone()[0]
            == (manifest["tables"]["execution_stepvalue"]["count"])
        )

    again = batchline(tmp_path, "restore", str(dump), DATABASE_URL=target)
    assert again.returncode == 1 and "is not empty" in again.stderr
    snapshot = tmp_path / "before.json.gz"
    assert batchline(tmp_path, "datacheck", "snapshot", str(snapshot), DATABASE_URL=target).returncode == 0
    same = batchline(tmp_path, "datacheck", "compare", str(snapshot), DATABASE_URL=target)
    assert same.returncode == 0 and "(0 differences)" in same.stdout, same.stderr

    # A dump rewritten with a changed value (the manifest kept) is restored with the change named.
    with psycopg.connect(target, autocommit=True) as db:
        db.execute("ALTER TABLE execution_stepvalue DISABLE TRIGGER USER")
        db.execute(
            "UPDATE execution_stepvalue SET number = 99.9 "
            "WHERE id = (SELECT min(id) FROM execution_stepvalue WHERE number IS NOT NULL)"
        )
        db.execute("ALTER TABLE execution_stepvalue ENABLE TRIGGER USER")
    changed = batchline(tmp_path, "datacheck", "compare", str(snapshot), DATABASE_URL=target)
    assert (
        changed.returncode == 1
        and "table execution_stepvalue: 1 rows changed in column number" in changed.stderr
    )
    forged = tmp_path / "forged.dump"
    assert batchline(tmp_path, "backup", str(forged), DATABASE_URL=target).returncode == 0
    shutil.copy(tmp_path / "batchline.dump.manifest.json", tmp_path / "forged.dump.manifest.json")
    with psycopg.connect(target, autocommit=True) as db:
        db.execute("DROP SCHEMA public CASCADE")
        db.execute("CREATE SCHEMA public")
    result = batchline(tmp_path, "restore", str(forged), DATABASE_URL=target)
    assert result.returncode == 2, result.stderr
    assert "the file is not the one that was written" in result.stderr
    assert "changed outside the application" in result.stderr
    assert "table execution_stepvalue: the values of column number differ" in result.stderr


# --- the refused commands -------------------------------------------------------------------


@pytest.mark.req("P11-05", "A11-13")
def test_commands_that_would_write_gmp_tables_without_the_trail_are_refused(home: Path) -> None:
    live = home / "batchline.sqlite3"
    entries, users = count(live, "audit_auditentry"), count(live, "accounts_user")
    fixture = home / "ghost.json"
    fixture.write_text(
        json.dumps([{"model": "accounts.user", "pk": 999, "fields": {"username": "ghost", "full_name": "G"}}])
    )
    for args, words in (
        (("loaddata", str(fixture)), "Refused: loaddata writes rows straight into the tables"),
        (("flush", "--noinput"), "Refused: flush would delete every GMP record"),
        (("sqlflush",), "Refused: sqlflush"),
        (("changepassword", "operator"), "Refused: changepassword would set another person's password"),
        (
            ("remove_stale_contenttypes", "--noinput"),
            "Refused: remove_stale_contenttypes deletes permissions",
        ),
    ):
        result = batchline(home, *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert words in result.stderr, result.stderr
        assert "DELETE FROM" not in result.stdout
    assert (count(live, "audit_auditentry"), count(live, "accounts_user")) == (entries, users)
    assert rows(live, "SELECT count(*) FROM accounts_user WHERE username = 'ghost'") == [(0,)]


@pytest.mark.req("P11-05")
@pytest.mark.django_db
def test_loaddata_and_flush_called_from_code_are_refused_outside_the_test_settings(tmp_path: Path) -> None:
    fixture = tmp_path / "ghost.json"
    fixture.write_text(
        json.dumps([{"model": "accounts.user", "pk": 999, "fields": {"username": "ghost", "full_name": "G"}}])
    )
    entries = AuditEntry.objects.count()
    with override_settings(TESTING=False):
        with pytest.raises(CommandError, match="Refused: loaddata"):
            call_command("loaddata", str(fixture), verbosity=0)
        with pytest.raises(CommandError, match="Refused: flush"):
            call_command("flush", interactive=False, verbosity=0)
    assert not User.objects.filter(username="ghost").exists()
    assert AuditEntry.objects.count() == entries
    # Under the test settings Django's own test machinery may load fixtures (and flush).
    call_command("loaddata", str(fixture), verbosity=0)
    assert User.objects.filter(username="ghost").exists()


# --- the data-migration check ---------------------------------------------------------------


@pytest.mark.req("A11-06", "DI-08")
def test_a_real_migration_leaves_every_gmp_value_as_it_was(home: Path) -> None:
    # Take the database back one migration (it rebuilds the step values' table on SQLite) and
    # migrate it forward again under the check.
    back = batchline(home, "migrate", "execution", "0005_disposition_append_only")
    assert back.returncode == 0, back.stderr
    checked = batchline(home, "datacheck", "migrate")
    assert checked.returncode == 0, checked.stderr
    assert "Applying execution.0006_stepvalue_critical" in checked.stdout
    assert "added: table execution_stepvalue: new column critical" in checked.stdout
    assert "OK: every GMP value and row is as it was (0 differences)." in checked.stdout


@pytest.mark.req("A11-06")
def test_the_data_migration_check_names_a_changed_and_a_lost_row(home: Path) -> None:
    live = home / "batchline.sqlite3"
    snapshot = home / "before.json.gz"
    taken = batchline(home, "datacheck", "snapshot", str(snapshot))
    assert taken.returncode == 0 and taken.stdout.startswith(f"Snapshot written: {snapshot}")
    same = batchline(home, "datacheck", "compare", str(snapshot))
    assert same.returncode == 0 and "(0 differences)" in same.stdout

    ((user_id,),) = rows(live, "SELECT id FROM accounts_user WHERE username = 'operator'")
    with sqlite3.connect(live) as db:  # what a faulty data migration might do
        db.execute("UPDATE accounts_user SET full_name = 'O. Operator' WHERE id = ?", [user_id])
    changed = batchline(home, "datacheck", "compare", str(snapshot))
    assert changed.returncode == 1
    assert f"table accounts_user: 1 rows changed in column full_name (keys {user_id})" in changed.stderr
    assert "the GMP data is NOT as it was (1 differences)" in changed.stderr

    ((exception_id,),) = rows(live, "SELECT max(id) FROM execution_batchexception")
    with sqlite3.connect(live) as db:
        db.execute("DROP TRIGGER IF EXISTS execution_batchexception_no_delete")
        db.execute("DELETE FROM execution_batchexception WHERE id = ?", [exception_id])
    lost = batchline(home, "datacheck", "compare", str(snapshot))
    assert lost.returncode == 1
    assert f"table execution_batchexception: 1 rows are gone (keys {exception_id})" in lost.stderr
