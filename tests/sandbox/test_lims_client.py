"""The demo's LIMS is a real process on Batchline's real doors: sample requests in through the outbox's
signed webhook, results back through the JSON API with a token issued to the LIMS's machine account."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import override_settings

from batchline.accounts import grants
from batchline.accounts.models import ApiToken
from batchline.accounts.services import AccountError, interface_token_issue, token_of, user_create
from batchline.audit.models import AuditEntry
from batchline.audit.services import ReasonRequired
from batchline.execution.models import BatchException, StepValue
from batchline.execution.services import ExecutionRefused
from batchline.lims.models import LabResult
from batchline.outbox.delivery import deliver_due
from tests.conftest import PASSWORD, SETUP, free_port, make_user
from tests.execution.test_engine import A, complete
from tests.lims.plant import blend_samples, make_lims_plant, new_batch
from tests.sandbox.test_erp_client import wait_for

CLIENT = [sys.executable, "-m", "batchline.sandbox.lims_client"]


def machine_account(username: str = "lims-labware"):  # type: ignore[no-untyped-def]
    """A LIMS's account as an installation has it: no password, its one role (set here as test set-up;
    the product grants it through two people, tests/accounts/test_grants.py)."""
    user, _ = user_create(actor=SETUP, username=username, full_name="LabWare LIMS (interface)")
    with transaction.atomic():
        grants.set_groups(user, ["lims_interface"])
    return user


@pytest.mark.django_db
@pytest.mark.req("P11-10", "A11-12", "S95-04")
def test_an_interface_token_is_for_a_machine_account_only_and_leaves_no_way_in_for_a_person() -> None:
    admin = make_user("admin", ["administrator"])
    lims = machine_account()
    assert lims.must_change_password  # a new account waits for its person's first password
    token, raw = interface_token_issue(
        actor=A(admin), user=lims, name="LabWare LIMS PRD", reason="LIMS go-live CC-2026-101"
    )
    assert token.scope == "write" and token_of(raw) == token
    lims.refresh_from_db()
    assert not lims.must_change_password and not lims.has_usable_password()
    assert not lims.enrolments.filter(redeemed_at__isnull=True, void_at__isnull=True).exists()
    issued = AuditEntry.objects.get(record_type="accounts.apitoken", record_id=str(token.pk))
    assert (issued.actor_username, issued.reason) == ("admin", "LIMS go-live CC-2026-101")

    person = make_user("olga", ["operator"])
    with pytest.raises(AccountError, match="not an interface account"):
        interface_token_issue(actor=A(admin), user=person, name="x", reason="r")
    both = machine_account("lims-2")
    with transaction.atomic():
        grants.set_groups(both, ["lims_interface", "operator"])
    with pytest.raises(AccountError, match="not an interface account"):
        interface_token_issue(actor=A(admin), user=both, name="x", reason="r")
    with pytest.raises(ReasonRequired):
        interface_token_issue(actor=A(admin), user=lims, name="x", reason=" ")
    assert ApiToken.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.req("P11-10", "P11-13")
def test_the_command_writes_the_token_to_a_new_file_only_its_owner_reads_and_never_prints_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user("admin", ["administrator"])
    machine_account()
    out = tmp_path / "lims.token"
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSWORD + "\n"))
    call_command(
        "accounts",
        "interface-token",
        "lims-labware",
        "--name",
        "LabWare LIMS PRD",
        "--out",
        str(out),
        "--days",
        "30",
        "--by",
        "admin",
        "--reason",
        "LIMS go-live",
        "--password-stdin",
    )
    raw = out.read_text().strip()
    assert out.stat().st_mode & 0o777 == 0o600
    assert token_of(raw) is not None and raw not in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSWORD + "\n"))
    with pytest.raises(CommandError, match="exists"):  # never over another token's file
        call_command(
            "accounts", "interface-token", "lims-labware", "--name", "n", "--out", str(out),
            "--by", "admin", "--reason", "again", "--password-stdin",
        )  # fmt: skip
    assert out.read_text().strip() == raw and ApiToken.objects.count() == 1


@pytest.mark.usefixtures("live_db")
@pytest.mark.req("IPC-01", "S95-04", "A11-07")
def test_the_sandbox_lims_answers_each_sample_request_with_a_result_that_fills_the_waiting_step(
    tmp_path: Path, live_server
) -> None:
    people, recipe, _lot = make_lims_plant()
    lims = machine_account()
    _, raw = interface_token_issue(actor=A(people["engineer"]), user=lims, name="sandbox", reason="test")
    (tmp_path / "token").write_text(raw)
    port = free_port()
    token = ["--token-file", str(tmp_path / "token"), "--fail", "LB-001-S02"]
    server = subprocess.Popen(
        [*CLIENT, "listen", "--port", str(port), "--batchline", live_server.url, "--secret", "k", *token],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert "listening" in server.stdout.readline()
        lims_at = {"lims": {"url": f"http://127.0.0.1:{port}/requests", "secret": "k"}}
        with override_settings(OUTBOX_DESTINATIONS=lims_at, OUTBOX_DELIVER_ON_COMMIT=False):
            batch = new_batch(people, recipe)
            top, bottom = blend_samples(people, batch)
            assert deliver_due() == 2
            assert deliver_due() == 0  # each request once
        wait_for(lambda: LabResult.objects.count() == 2)
        lines = [server.stdout.readline().strip() for _ in range(4)]
    finally:
        server.terminate()
        server.wait(10)
    assert any("in specification" in line and "LB-001-S01" in line for line in lines), lines
    assert any("OUT OF SPECIFICATION" in line for line in lines), lines
    good, bad = LabResult.objects.order_by("sample__code")
    assert (good.sample, good.in_specification, good.received_by.username) == (top, True, "lims-labware")
    assert (bad.sample, bad.in_specification) == (bottom, False)
    # The in-spec result filled the waiting step; the other raised what stops the batch.
    assert StepValue.objects.filter(step__key="blend_ipc", source="laboratory").count() == 2
    assert BatchException.objects.filter(batch=batch, code="LAB_OUT_OF_SPECIFICATION").exists()
    with pytest.raises(ExecutionRefused, match=r"is stopped: .*SBX-LIMS-LB-001-S02 out of specification"):
        complete(people, batch, "blend_ipc")


@pytest.mark.django_db
@pytest.mark.req("P11-10")
def test_the_demo_keeps_its_lims_token_while_it_works_and_issues_the_next_when_it_no_longer_does(
    tmp_path: Path,
) -> None:
    from batchline.accounts.services import token_revoke
    from batchline.sandbox.launch import _lims_token

    admin = make_user("admin", ["administrator"])
    machine_account()
    path = tmp_path / "lims" / "token"
    _lims_token(path)
    first = path.read_text().strip()
    _lims_token(path)  # the demo started again: the same token
    assert path.read_text().strip() == first and path.stat().st_mode & 0o777 == 0o600
    token = token_of(first)
    assert token is not None
    token_revoke(actor=A(admin), token=token, reason="rotated")
    _lims_token(path)
    second = path.read_text().strip()
    assert second != first and token_of(second) is not None and ApiToken.objects.count() == 2
