"""The demo's ERP is a real process on Batchline's real doors: an order through the watched folder,
the performance back through the outbox's signed webhook."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings

from batchline.erp import listen
from batchline.execution.models import Batch
from batchline.outbox.delivery import deliver_due
from batchline.outbox.models import Message
from tests.conftest import free_port
from tests.erp.conftest import make_erp_plant
from tests.erp.documents import assert_valid, cancel_reason, request, schedule

CLIENT = [sys.executable, "-m", "batchline.sandbox.erp_client"]


def wait_for(what, seconds: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := what():
            return found
        time.sleep(0.1)
    raise AssertionError("waited in vain")


@pytest.mark.django_db
@pytest.mark.req("S95-02", "A11-07")
def test_the_sandbox_erp_sends_an_order_and_receives_the_performance_of_its_batch(tmp_path: Path) -> None:
    make_erp_plant()
    port = free_port()
    receiver = subprocess.Popen(
        [*CLIENT, "listen", "--port", str(port), "--secret", "k", "--keep", str(tmp_path / "received")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stdout is not None
        assert "listening" in receiver.stdout.readline()
        sender = subprocess.Popen(
            [
                *CLIENT,
                "order",
                "--folder",
                str(tmp_path / "erp"),
                "--order",
                "4711",
                "--batch",
                "ERP-S-001",
                "--product",
                "ERPTAB",
                "--quantity",
                "1000",
                "--bom",
                "LAC-200=2:KG",
                "API-1=0.1:kg",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        folder = listen.Folder(tmp_path / "erp")
        document = wait_for(lambda: list(folder.inbox.glob("*.xml")))[0]
        assert_valid(document.read_bytes())  # the sandbox writes what a real ERP must
        assert listen.take_folder(folder, listen.interface_handler("erp-sap")) == 1
        out, _ = sender.communicate(timeout=30)
        assert sender.returncode == 0 and "ConfirmBOD" in out and "Applied" in out, out
        assert Batch.objects.get(number="ERP-S-001").state == "created"

        with override_settings(
            OUTBOX_DESTINATIONS={"erp": {"url": f"http://127.0.0.1:{port}/b2mml", "secret": "k"}},
            OUTBOX_DELIVER_ON_COMMIT=False,
        ):
            cancel = schedule(
                "Cancel", "BOD-S-2", request("4711"), action=cancel_reason("Customer order withdrawn")
            )
            (folder.inbox / "cancel.xml").write_text(cancel)
            assert listen.take_folder(folder, listen.interface_handler("erp-sap")) == 1
            assert Batch.objects.get(number="ERP-S-001").state == "aborted"
            sent = Message.objects.filter(destination="erp").count()
            assert sent >= 1
            assert deliver_due() == sent
        line = receiver.stdout.readline()
        assert line.startswith("ERP received SyncOperationsPerformance"), line
        kept = list((tmp_path / "received").iterdir())
        assert len(kept) == sent
        assert_valid(kept[0].read_bytes())
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
