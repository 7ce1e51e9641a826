"""An approved change is in force for every process at once: another running process, started
before the change and never restarted, acts under the new version at its next read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from batchline.approvals import services as approvals
from batchline.audit.services import Actor
from batchline.configuration.selectors import current
from batchline.configuration.services import configuration_change_request
from tests.configuration.test_configuration import signer
from tests.conftest import make_user

ROOT = Path(__file__).resolve().parents[2]
READER = """
import sys, django
django.setup()
from batchline.configuration.selectors import current
for _ in sys.stdin:
    config = current()
    print(config.version, config.late_entry_minutes, flush=True)
"""


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.req("A11-14", "P11-11")
def test_another_running_process_reads_the_new_version_at_its_next_action(live_db) -> None:
    admin = make_user("admin", ["administrator"])
    approver = make_user("approver", ["qa_approver"])
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "tests.settings"}
    reader = subprocess.Popen(
        [sys.executable, "-c", READER],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:

        def ask() -> str:
            assert reader.stdin and reader.stdout
            reader.stdin.write("\n")
            reader.stdin.flush()
            return reader.stdout.readline().strip()

        before = current()
        assert ask() == f"{before.version} {before.late_entry_minutes}"
        request = configuration_change_request(
            actor=Actor.of(admin, via="web"),
            signer=signer(admin, "requested"),
            values={"late_entry_minutes": 25},
            reason="SOP-PR-009 rev 2",
        )
        assert ask() == f"{before.version} {before.late_entry_minutes}"  # requested: not in force
        approvals.change_approve(
            actor=Actor.of(approver, via="web"), signer=signer(approver, "approved"), request=request
        )
        assert ask() == f"{before.version + 1} 25"  # the same process, not restarted
    finally:
        if reader.stdin:
            reader.stdin.close()
        reader.wait(timeout=30)
