"""The anchors outside the database, each on the real thing: a file, NATS JetStream, syslog over UDP.

And the restore of an older copy of a real SQLite database file, found by the
command line as an operator would run it. NATS must be running at
127.0.0.1:4222 (as on CI): a missing server fails these tests, it does not skip them.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import uuid
from pathlib import Path

import nats
import pytest
from django.db import transaction

from batchline.audit.anchors import AnchorProblem, NatsAnchor, SyslogAnchor
from batchline.audit.checkpoints import checkpoint_create
from batchline.audit.services import Actor, record_create
from batchline.audit.verify import verify
from batchline.equipment.models import Site
from tests.audit.attacker import delete_entries_after, sql
from tests.test_cli import batchline

NATS_URL = "nats://127.0.0.1:4222"
ACTOR = Actor(id=41, username="eve", name="Eve Engineer", via="web")


def site(code: str) -> Site:
    with transaction.atomic():
        return record_create(Site(code=code, name=f"Plant {code}"), actor=ACTOR, reason="new site")


@pytest.fixture
def stream() -> str:
    name = f"BLTEST_{uuid.uuid4().hex[:10].upper()}"
    yield name

    async def drop() -> None:
        nc = await nats.connect(NATS_URL)
        try:
            await nc.jetstream().delete_stream(name)
        finally:
            await nc.close()

    asyncio.run(drop())


@pytest.mark.django_db
@pytest.mark.req("P11-01", "A11-09")
def test_a_nats_jetstream_anchor_keeps_checkpoints_that_cannot_be_deleted(stream: str) -> None:
    anchor = NatsAnchor(NATS_URL, stream)
    site("a")
    checkpoint_create(anchors=[anchor])
    site("b")
    made = checkpoint_create(anchors=[anchor])
    assert made.anchor_problems == []
    newest = anchor.newest()
    assert newest is not None and newest.number == 2 and newest.payload == made.checkpoint.payload
    checkpoint_create(anchors=[anchor])  # publishing again is harmless: the message id de-duplicates

    async def try_to_delete() -> str:
        nc = await nats.connect(NATS_URL)
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            assert info.config.deny_delete and info.config.deny_purge
            try:
                await js.delete_msg(stream, 1)
            except Exception as exc:
                return str(exc)
            return "deleted"
        finally:
            await nc.close()

    assert asyncio.run(try_to_delete()) != "deleted"


@pytest.mark.django_db
@pytest.mark.req("P11-01", "A11-09")
def test_the_nats_anchor_names_a_rollback_of_the_database(stream: str, no_triggers: None) -> None:
    anchor = NatsAnchor(NATS_URL, stream)
    site("a")
    checkpoint_create(anchors=[anchor])
    keep = sql("SELECT MAX(id) FROM audit_auditentry")[0][0]
    site("b")
    checkpoint_create(anchors=[anchor])
    # Back to the state of checkpoint 1: entries, the site and checkpoint 2 gone from the database.
    sql("DELETE FROM equipment_site WHERE code = 'b'")
    delete_entries_after(keep)
    sql("DELETE FROM audit_checkpoint WHERE number = 2")
    found = [str(f) for f in verify(anchors=[anchor]).findings if f.kind != "trigger"]
    assert any(
        f"NATS JetStream stream {stream}" in f
        and "holds checkpoint 2" in f
        and "restored from an older copy" in f
        for f in found
    ), found
    assert any("newest entries were removed" in f for f in found), found


@pytest.mark.req("P11-01")
def test_an_unreachable_nats_server_is_a_clear_problem() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(AnchorProblem, match="unreachable"):
        NatsAnchor(f"nats://127.0.0.1:{port}", "BLTEST_NONE", timeout=1).newest()


@pytest.mark.django_db
@pytest.mark.req("P11-01")
def test_a_syslog_anchor_sends_each_checkpoint_to_the_collector() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as collector:
        collector.bind(("127.0.0.1", 0))
        collector.settimeout(5)
        port = collector.getsockname()[1]
        site("a")
        made = checkpoint_create(anchors=[SyslogAnchor(f"udp://127.0.0.1:{port}")])
        assert made.anchor_problems == []
        message = collector.recv(65536).decode()
    assert message.startswith("<133>batchline: checkpoint ")
    assert made.checkpoint.signature in message and '"number":1' in message


@pytest.mark.req("P11-01", "A11-09", "A11-10")
def test_restoring_an_older_copy_of_a_sqlite_database_is_named_by_audit_verify(tmp_path: Path) -> None:
    """A real database file, checkpointed by the command line; an older copy put back in its place."""
    home = tmp_path / "home"
    env = {"BATCHLINE_ANCHOR_PATH": str(tmp_path / "worm" / "checkpoints.jsonl")}
    assert batchline(home, "migrate", "--no-input", **env).returncode == 0
    first = batchline(home, "audit", "checkpoint", **env)
    assert first.returncode == 0, first.stderr
    database = home / "batchline.sqlite3"
    shutil.copy(database, tmp_path / "older.sqlite3")
    assert batchline(home, "keys", "show", **env).returncode == 0
    assert batchline(home, "audit", "checkpoint", **env).returncode == 0
    ok = batchline(home, "audit", "verify", **env)
    assert ok.returncode == 0, ok.stderr
    # The key is not in the database, so the copy verifies with the same key and anchor.
    shutil.copy(tmp_path / "older.sqlite3", database)
    for suffix in ("-wal", "-shm"):
        (home / f"batchline.sqlite3{suffix}").unlink(missing_ok=True)
    restored = batchline(home, "audit", "verify", **env)
    assert restored.returncode == 1
    assert "holds checkpoint 2" in restored.stderr
    assert "the database's newest is 1: the database was restored from an older copy" in restored.stderr
