"""The ``batchline`` command as a newcomer and an operator of the system use it: real processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def batchline(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    environ |= {"BATCHLINE_HOME": str(home), **env}
    return subprocess.run(
        [sys.executable, "-m", "batchline.cli", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.req("P11-01", "A11-09")
def test_demo_seeds_sqlite_and_audit_verify_agrees_then_finds_a_raw_edit(tmp_path: Path) -> None:
    seeded = batchline(tmp_path, "demo", "--no-serve")
    assert seeded.returncode == 0, seeded.stderr
    assert "http://127.0.0.1:8000/" in seeded.stdout and "batchline-demo" in seeded.stdout
    assert "operator" in seeded.stdout and "auditor" in seeded.stdout
    again = batchline(tmp_path, "demo", "--no-serve")  # idempotent
    assert again.returncode == 0, again.stderr

    ok = batchline(tmp_path, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: audit trail verifies")

    with sqlite3.connect(tmp_path / "batchline.sqlite3") as db:
        db.execute("UPDATE accounts_user SET full_name = 'Mallory' WHERE username = 'operator'")
    broken = batchline(tmp_path, "audit", "verify")
    assert broken.returncode == 1
    assert 'full_name is "Mallory" in the table but "Olga Operator" in the audit trail' in broken.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    result = batchline(tmp_path, "check", BATCHLINE_PRODUCTION="1")
    assert result.returncode != 0
    assert "BATCHLINE_SECRET_KEY must be set" in result.stderr
    assert not (tmp_path / "secret_key").exists()
