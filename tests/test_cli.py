"""The ``batchline`` command as a newcomer and an operator of the system use it: real processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def batchline(home: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    environ |= {"BATCHLINE_HOME": str(home), **env}
    return subprocess.run(
        [sys.executable, "-m", "batchline.cli", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


@pytest.mark.req("P11-01", "A11-09")
def test_demo_seeds_sqlite_and_audit_verify_agrees_then_finds_a_raw_edit(tmp_path: Path) -> None:
    seeded = batchline(tmp_path, "demo", "--no-serve")
    assert seeded.returncode == 0, seeded.stderr
    assert "http://127.0.0.1:8000/" in seeded.stdout and "batchline-demo" in seeded.stdout
    assert "operator" in seeded.stdout and "auditor" in seeded.stdout
    # The demo shows enrolment: no relay, so nora gets an enrolment code (a fresh one on each run).
    assert "No mail relay is configured, so new operator 'nora'" in seeded.stdout
    again = batchline(tmp_path, "demo", "--no-serve")  # idempotent
    assert again.returncode == 0, again.stderr
    assert "enrolment code" in again.stdout

    ok = batchline(tmp_path, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: audit trail verifies")

    with sqlite3.connect(tmp_path / "batchline.sqlite3") as db:
        # A batch waits for QA's review by exception with its three exceptions.
        (state, batch_id), *_ = db.execute("SELECT state, id FROM execution_batch WHERE number = 'IPC-0001'")
        codes = {
            c
            for (c,) in db.execute("SELECT code FROM execution_batchexception WHERE batch_id = ?", [batch_id])
        }
        assert state == "complete" and codes == {
            "REFUSED_PREDECESSOR_OPEN",
            "OUT_OF_SPECIFICATION",
            "CORRECTION",
        }
        db.execute("UPDATE accounts_user SET full_name = 'Mallory' WHERE username = 'operator'")
    broken = batchline(tmp_path, "audit", "verify")
    assert broken.returncode == 1
    assert 'full_name is "Mallory" in the table but "Olga Operator" in the audit trail' in broken.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    result = batchline(tmp_path, "check", BATCHLINE_PRODUCTION="1")
    assert result.returncode != 0
    assert "BATCHLINE_SECRET_KEY must be set" in result.stderr
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.req("MBR-01", "A11-05")
def test_recipe_files_import_and_export_from_the_command_line(tmp_path: Path) -> None:
    assert batchline(tmp_path, "demo", "--no-serve").returncode == 0
    exported = batchline(tmp_path, "recipe", "export", "PCM-500-TAB")
    assert exported.returncode == 0 and exported.stdout.startswith("# PCM-500-TAB version 1 (effective)")
    recipe_file = tmp_path / "pcm.yaml"
    recipe_file.write_text(exported.stdout.replace("Dry mix paracetamol", "Dry-mix paracetamol"))

    wrong = batchline(
        tmp_path, "recipe", "import", str(recipe_file), "--user", "author", "--password-stdin", stdin="nope\n"
    )
    assert wrong.returncode == 1 and "nothing was imported" in wrong.stderr, wrong.stderr
    imported = batchline(
        tmp_path,
        "recipe",
        "import",
        str(recipe_file),
        "--user",
        "author",
        "--password-stdin",
        stdin="batchline-demo\n",
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "imported PCM-500-TAB version 2 as a draft"

    broken = tmp_path / "broken.yaml"
    broken.write_text(recipe_file.read_text().replace("mean(w1, w2, w3, w4, w5)", "mean(w1, w9)", 1))
    refused = batchline(
        tmp_path,
        "recipe",
        "import",
        str(broken),
        "--user",
        "author",
        "--password-stdin",
        stdin="batchline-demo\n",
    )
    assert refused.returncode == 1
    assert "formula uses 'w9', which no step records" in refused.stderr and ": line " in refused.stderr
    assert (
        batchline(tmp_path, "recipe", "export", "PCM-500-TAB", "--version", "3").returncode == 1
    )  # nothing imported
    assert batchline(tmp_path, "audit", "verify").returncode == 0
