"""The worker: checkpoints and verification on a schedule, a security alert when either fails."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from batchline.accounts.models import SecurityAlert
from batchline.audit.anchors import FileAnchor
from batchline.audit.checkpoints import checkpoint_create
from batchline.audit.models import AuditEntry, Checkpoint
from batchline.audit.services import Actor, record_create
from batchline.equipment.models import Site
from batchline.integrity import verification
from tests.audit.attacker import sql

pytestmark = pytest.mark.django_db
ACTOR = Actor(id=41, username="eve", name="Eve Engineer", via="web")


def site(code: str) -> Site:
    with transaction.atomic():
        return record_create(Site(code=code, name=f"Plant {code}"), actor=ACTOR, reason="new site")


@pytest.mark.req("P11-01", "A11-09")
def test_a_tick_checkpoints_and_verifies_when_due_and_not_before() -> None:
    site("a")
    ran = verification.tick()
    assert ran.checkpoint == 1 and ran.verified is True
    again = verification.tick()  # nothing due: the interval has not passed
    assert again.checkpoint is None and again.verified is None
    entry = AuditEntry.objects.filter(action="audit_verify").get()
    assert entry.actor_username == "system" and '"result":[null,"ok"]' in entry.changes
    # The trail moved, but a checkpoint is only due once the interval has passed too.
    site("b")
    assert not verification.checkpoint_due(dt.timedelta(minutes=15))
    assert verification.checkpoint_due(dt.timedelta(0))


@pytest.mark.req("P11-01", "A11-09")
def test_a_failed_scheduled_verification_raises_one_security_alert(no_triggers: None) -> None:
    s = site("a")
    sql("UPDATE equipment_site SET name = 'Forged' WHERE id = %s", [s.pk])
    report = verification.scheduled_verify()
    assert not report.ok
    (alert,) = SecurityAlert.objects.filter(kind="verify_failed")
    assert (
        "The audit trail does not verify" in alert.message
        and "changed outside the application" in alert.message
    )
    verification.scheduled_verify()  # the same findings: no second alert
    assert SecurityAlert.objects.filter(kind="verify_failed").count() == 1


@pytest.mark.req("P11-01")
def test_an_anchor_that_fails_raises_an_alert_and_is_caught_up_later(settings, tmp_path: Path) -> None:
    site("a")
    (tmp_path / "blocked").mkdir()
    settings.BATCHLINE_ANCHOR_PATH = str(tmp_path / "blocked")  # a directory: the write fails
    made = verification.checkpoint_now()
    (alert,) = SecurityAlert.objects.filter(kind="anchor_failed")
    assert f"Checkpoint {made.checkpoint.number} could not be anchored" in alert.message
    settings.BATCHLINE_ANCHOR_PATH = str(tmp_path / "anchor.jsonl")
    checkpoint_create()
    assert [a.number for a in FileAnchor(tmp_path / "anchor.jsonl").lines()] == [1, 2]


def worker_env(home: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    return environ | {"BATCHLINE_HOME": str(home), "BATCHLINE_ANCHOR_PATH": str(home / "anchor.jsonl")}


@pytest.mark.req("P11-01", "A11-09")
def test_the_worker_process_runs_rounds_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = worker_env(tmp_path)
    cli = [sys.executable, "-m", "batchline.cli"]
    subprocess.run([*cli, "migrate", "--no-input"], env=env, check=True, capture_output=True, timeout=180)
    worker = subprocess.Popen(
        [*cli, "worker", "--every", "0.2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "anchor.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (tmp_path / "anchor.jsonl").exists(), "the worker took no checkpoint"
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert (
        "worker started" in out
        and "checkpoint 1; verify ok" in out
        and out.rstrip().endswith("worker stopped")
    )
    verified = subprocess.run([*cli, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stderr
    assert Checkpoint.objects.count() == 0  # the worker's database is its own, not the test's
    assert timezone.now()
