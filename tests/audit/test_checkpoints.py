"""Signed, anchored checkpoints against someone who can write to the database (issue 10's reproductions).

Each attack is done with raw SQL after dropping the append-only triggers, and
the chain is recomputed afterwards as a careful forger would: the hash chain
alone then verifies, and only the checkpoints and the anchors outside the
database can tell. On SQLite and PostgreSQL, as DATABASE_URL says.
"""

from __future__ import annotations

import base64
import json
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from batchline import keys
from batchline.audit import db
from batchline.audit.anchors import FileAnchor
from batchline.audit.checkpoints import checkpoint_create
from batchline.audit.models import AuditEntry, Checkpoint
from batchline.audit.services import Actor, record_create, record_update
from batchline.audit.verify import verify
from batchline.equipment.models import Site
from batchline.integrity.apps import append_only_after_migrate
from tests.audit.attacker import delete_entries_after, rehash, sql

pytestmark = pytest.mark.django_db
ACTOR = Actor(id=41, username="eve", name="Eve Engineer", via="web")


def site(code: str) -> Site:
    with transaction.atomic():
        return record_create(Site(code=code, name=f"Plant {code}"), actor=ACTOR, reason="new site")


def rename(s: Site, name: str) -> None:
    with transaction.atomic():
        record_update(s, actor=ACTOR, values={"name": name}, reason="renamed")


def findings(*, triggers: bool = False) -> list[str]:
    """What verify finds; the missing triggers (the attacker dropped them first) only if asked."""
    return [str(f) for f in verify().findings if triggers or f.kind != "trigger"]


def cli_verify(*args: str) -> str:
    out = StringIO()
    call_command("audit", "verify", *args, stdout=out, stderr=out)
    return out.getvalue()


class OtherKey:
    """A key that is not the installation's: what a forger without the key file has."""

    def __init__(self) -> None:
        self._key = Ed25519PrivateKey.generate()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@pytest.mark.req("P11-01", "A11-09")
def test_an_untouched_trail_with_checkpoints_verifies_with_the_public_key_alone(
    own_anchor: Path, tmp_path: Path
) -> None:
    a = site("a")
    first = checkpoint_create()
    rename(a, "Plant A2")
    second = checkpoint_create()
    assert (first.anchor_problems, second.anchor_problems) == ([], [])
    assert second.checkpoint.number == 2 and second.checkpoint.entries == first.checkpoint.entries + 1
    # The anchor file holds both, one JSON line each, with the signed payload.
    lines = own_anchor.read_text().splitlines()
    assert [json.loads(line)["number"] for line in lines] == [1, 2]
    assert verify().ok
    # An inspector with a copy, the public key and the anchor, but never the private key.
    public = tmp_path / "installation.pub"
    public.write_bytes(keys.installation_public_key())
    out = cli_verify("--public-key", str(public), "--anchor", str(own_anchor))
    assert out.startswith("OK: audit trail verifies") and "2 signed checkpoints (newest 2)" in out


@pytest.mark.req("P11-01", "P11-05", "A11-09")
def test_edit_delete_and_rehash_behind_the_triggers_is_named_as_a_rewrite(no_triggers: None) -> None:
    """The issue's reproduction: drop triggers, edit a value, delete a record and its entry, rehash."""
    a, b = site("a"), site("b")
    rename(a, "Plant A2")
    checkpoint_create()
    victim = AuditEntry.objects.get(record_type="equipment.site", record_id=str(b.pk))
    sql("UPDATE equipment_site SET name = 'Forged' WHERE id = %s", [a.pk])
    sql(
        "UPDATE audit_auditentry SET changes = %s WHERE record_type = 'equipment.site' AND record_id = %s "
        "AND action = 'update'",
        [json.dumps({"name": ["Plant a", "Forged"]}, separators=(",", ":")), str(a.pk)],
    )
    sql("DELETE FROM audit_auditentry WHERE id = %s", [victim.pk])
    sql("DELETE FROM equipment_site WHERE id = %s", [b.pk])
    rehash()
    found = findings()
    # The chain and the replay agree with the forgery; the signed checkpoint does not.
    assert not [f for f in found if "changed outside the application" in f or "lacks position" in f], found
    assert any(
        "checkpoint 1" in f and ("rewritten and rehashed" in f or "newest entries were removed" in f)
        for f in found
    ), found
    with pytest.raises(CommandError, match="does NOT verify"):
        cli_verify()


@pytest.mark.req("P11-01", "A11-09")
def test_an_edit_rehashed_in_place_no_longer_matches_the_signed_head(no_triggers: None) -> None:
    a = site("a")
    rename(a, "Plant A2")
    site("c")
    checkpoint_create()
    entry = AuditEntry.objects.filter(record_type="equipment.site", action="update").get()
    sql("UPDATE audit_auditentry SET reason = 'typo' WHERE id = %s", [entry.pk])
    rehash(renumber=False)
    (finding,) = [f for f in findings() if "checkpoint" in f]
    assert "no longer has the hash checkpoint 1 signed" in finding
    assert "the trail was rewritten and rehashed" in finding


@pytest.mark.req("P11-01", "A11-09")
def test_deleting_the_newest_entries_and_reverting_the_rows_is_named(no_triggers: None) -> None:
    a = site("a")
    keep = AuditEntry.objects.order_by("-id").first()
    assert keep is not None
    rename(a, "Plant A2")
    checkpoint_create()
    # Take back the rename: the row and its entry, then the heads.
    sql("UPDATE equipment_site SET name = 'Plant a' WHERE id = %s", [a.pk])
    delete_entries_after(keep.pk)
    found = findings()
    assert any(
        "ends at position" in f and "checkpoint 1" in f and "newest entries were removed" in f for f in found
    ), found
    # Deleting the checkpoint too does not help: the anchor outside the database still holds it.
    sql("DELETE FROM audit_checkpoint")
    found = findings()
    assert any(
        "holds checkpoint 1" in f
        and "restored from an older copy, or its newest checkpoints were deleted" in f
        for f in found
    ), found
    assert any("newest entries were removed" in f for f in found), found


@pytest.mark.req("P11-01", "A11-09")
def test_a_checkpoint_signed_with_another_key_or_a_forged_anchor_line_is_refused(
    no_triggers: None, own_anchor: Path
) -> None:
    site("a")
    checkpoint_create()
    forged = checkpoint_create(key=OtherKey(), anchors=[])
    assert forged.checkpoint.number == 2
    found = findings()
    assert any(
        "checkpoint 2: its signature does not verify with the installation's public key" in f for f in found
    ), found
    sql("DELETE FROM audit_checkpoint WHERE number = 2")
    assert findings() == []
    # A line appended to the anchor file by someone without the key.
    line = json.loads(own_anchor.read_text().splitlines()[-1])
    line |= {"number": 9, "signature": base64.b64encode(b"\0" * 64).decode()}
    with own_anchor.open("a") as f:
        f.write(json.dumps(line) + "\n")
    found = findings()
    assert any("checkpoint 9 in file" in f and "forged" in f for f in found), found


@pytest.mark.req("P11-01", "A11-09")
def test_a_missing_or_unreadable_anchor_is_a_finding(own_anchor: Path) -> None:
    site("a")
    checkpoint_create()
    own_anchor.unlink()
    assert any("anchor" in f and "is missing but the database holds 1 checkpoints" in f for f in findings())
    own_anchor.write_text("not json\n")
    assert any("line 1 of the anchor file" in f for f in findings())


@pytest.mark.req("P11-01", "A11-09")
def test_a_checkpoint_not_yet_anchored_is_written_on_the_next_run(tmp_path: Path, own_anchor: Path) -> None:
    site("a")
    unreachable = FileAnchor(tmp_path / "file-not-dir")
    (tmp_path / "file-not-dir").mkdir()  # a directory where the file should be: every write fails
    made = checkpoint_create(anchors=[unreachable])
    assert "cannot read the anchor file" in made.anchor_problems[0]
    assert "holds no checkpoint" not in " ".join(verify().notes)
    # The configured anchor missed checkpoint 1; the next checkpoint writes both, in order.
    assert not own_anchor.exists()
    checkpoint_create()
    assert [json.loads(x)["number"] for x in own_anchor.read_text().splitlines()] == [1, 2]
    assert verify().ok


@pytest.mark.req("P11-05", "A11-09")
def test_checkpoints_are_append_only_in_the_database() -> None:
    site("a")
    checkpoint_create()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql("UPDATE audit_checkpoint SET entries = 0")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql("DELETE FROM audit_checkpoint")
    assert Checkpoint.objects.count() == 1


@pytest.mark.req("P11-01", "DI-07")
def test_an_entry_back_dated_beyond_the_tolerance_is_a_finding(no_triggers: None) -> None:
    site("a")
    site("b")
    newest = AuditEntry.objects.order_by("-id").first()
    assert newest is not None
    sql(
        "UPDATE audit_auditentry SET at = %s WHERE id = %s",
        [connection.ops.adapt_datetimefield_value(newest.at.replace(year=newest.at.year - 1)), newest.pk],
    )
    rehash(renumber=False)
    found = findings()
    assert any(f"audit entry #{newest.pk}: its time" in f and "back-dated" in f for f in found), found


# --- the append-only triggers themselves ----------------------------------------------------


@pytest.mark.req("P11-05", "A11-09")
def test_every_append_only_table_has_its_triggers_after_all_migrations() -> None:
    """The test database was built by running every migration: none may leave a table unprotected."""
    assert db.triggers_missing(connection) == []
    site("a")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql("DELETE FROM audit_auditentry")


@pytest.mark.req("P11-05", "A11-09")
def test_a_dropped_or_defused_trigger_is_a_finding_and_migrate_refuses_to_leave_it() -> None:
    db.triggers_drop(connection, ("execution_stepvalue",))
    found = findings(triggers=True)
    assert any(
        "execution_stepvalue: the append-only trigger" in f and "is missing or disabled" in f for f in found
    ), found
    with pytest.raises(ImproperlyConfigured, match="execution_stepvalue"):
        append_only_after_migrate(using="default", plan=[("a migration", False)])
    db.triggers_install(connection, ("execution_stepvalue",))
    assert verify().ok
    if connection.vendor == "postgresql":
        sql("ALTER TABLE execution_batchexception DISABLE TRIGGER execution_batchexception_append_only")
        assert any("execution_batchexception: the append-only trigger" in f for f in findings(triggers=True))
        sql("ALTER TABLE execution_batchexception ENABLE TRIGGER execution_batchexception_append_only")
        # Defused: the function no longer refuses anything.
        sql(
            "CREATE OR REPLACE FUNCTION batchline_refuse_change() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN OLD; END $$"
        )
        assert len([f for f in findings(triggers=True) if "append-only trigger" in f]) == 2 * len(
            db.APPEND_ONLY_TABLES
        )


# --- an authorised recovery from an older backup --------------------------------------------


@pytest.mark.req("P11-01", "A11-10", "A11-09")
def test_an_authorised_recovery_is_recorded_by_qa_and_then_verifies(
    personas, no_triggers: None, own_anchor: Path, monkeypatch
) -> None:
    from batchline.accounts.models import SecurityAlert
    from tests.conftest import PASSWORD

    a = site("a")
    checkpoint_create()
    keep = AuditEntry.objects.order_by("-id").first()
    assert keep is not None
    rename(a, "Plant A2")
    checkpoint_create()
    checkpoint_create()
    # What a restore of the backup taken at checkpoint 1 leaves: the later entries and checkpoints gone.
    sql("UPDATE equipment_site SET name = 'Plant a' WHERE id = %s", [a.pk])
    delete_entries_after(keep.pk)
    sql("DELETE FROM audit_checkpoint WHERE number > 1")
    assert any("restored from an older copy" in f for f in findings())

    def recover(user: str, password: str = PASSWORD) -> str:
        monkeypatch.setattr("sys.stdin", StringIO(password + "\n"))
        out = StringIO()
        call_command(
            "audit",
            "recover",
            "--by",
            user,
            "--reason",
            "restored backup of 04:00 after disk failure, INC-7",
            "--password-stdin",
            stdout=out,
            stderr=out,
        )
        return out.getvalue()

    with pytest.raises(CommandError, match="is not a QA approver"):
        recover("admin")
    with pytest.raises(CommandError, match="password is wrong"):
        recover("qa_approver", "not-the-password")
    assert "recovery recorded: checkpoint 4 abandons anchored checkpoints 2-3" in recover("qa_approver")
    assert findings() == []  # the database now extends the anchor again, on the record
    anchored = json.loads(json.loads(own_anchor.read_text().splitlines()[-1])["payload"])
    assert anchored["number"] == 4 and anchored["recovery"]["abandons"] == [2, 3]
    assert anchored["recovery"]["by"] == "qa_approver"
    entry = AuditEntry.objects.filter(action="recovery").get()
    assert entry.actor_username == "qa_approver" and "INC-7" in entry.reason
    assert SecurityAlert.objects.filter(kind="recovery").count() == 1
    with pytest.raises(CommandError, match="nothing to recover"):
        recover("qa_approver")


@pytest.mark.req("P11-01")
def test_the_newest_anchored_checkpoint_is_found_at_the_end_of_a_long_file(own_anchor: Path) -> None:
    site("a")
    made = checkpoint_create()
    line = own_anchor.read_text()
    # Years of checkpoints before it: the newest is still found, from the file's end.
    own_anchor.write_text(line.replace('"number":1', '"number":0') * 2000 + line)
    newest = FileAnchor(own_anchor).newest()
    assert newest is not None and newest.number == 1 and newest.payload == made.checkpoint.payload
    assert own_anchor.stat().st_size > 1_000_000
