"""The ERP's other doors: a watched folder and a NATS JetStream subject (``batchline erp listen``).

Real peers: files in a real folder, the machine's NATS server with JetStream (127.0.0.1:4222).
Each door hands a document to the same ``inbound.receive`` as HTTPS, as the interface account,
and acknowledges it only after its effect committed, so a repeat has no second effect.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from lxml import etree

from batchline.audit.models import AuditEntry
from batchline.erp import listen
from batchline.erp.models import InboundMessage
from batchline.execution.models import Batch
from tests.conftest import run_async

from .conftest import make_erp_plant
from .documents import NS, assert_valid, order

NATS_URL = "nats://127.0.0.1:4222"


def reason_code(reply: bytes) -> str:
    return etree.fromstring(reply).findtext(f".//{{{NS}}}ChangeStatus/{{{NS}}}ReasonCode")


@pytest.mark.django_db
@pytest.mark.req("S95-02", "A11-07")
def test_the_folder_answers_each_document_and_a_document_written_twice_makes_one_batch(
    tmp_path: Path,
) -> None:
    make_erp_plant()
    folder = listen.Folder(tmp_path)
    folder.prepare()
    document = order("BOD-F1", "4711", batch="ERP-F-001").encode()
    (tmp_path / "in" / "a.xml").write_bytes(document)
    (tmp_path / "in" / "b.xml").write_bytes(document)  # the ERP wrote it again after a crash
    (tmp_path / "in" / "c.xml.tmp").write_bytes(b"<half")  # still being written: not taken
    (tmp_path / "in" / "d.xml").write_bytes(b"<ProcessOperationsSchedule>")  # not XML at all

    assert listen.take_folder(folder, listen.interface_handler("erp-sap")) == 3

    assert Batch.objects.filter(number="ERP-F-001").count() == 1
    for name in ("a", "b", "d"):
        assert_valid((tmp_path / "out" / f"{name}.reply.xml").read_bytes())
    assert reason_code((tmp_path / "out" / "a.reply.xml").read_bytes()) == "APPLIED"
    assert (tmp_path / "out" / "a.reply.xml").read_bytes() == (tmp_path / "out" / "b.reply.xml").read_bytes()
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["a.xml", "b.xml"]
    assert [p.name for p in (tmp_path / "refused").iterdir()] == ["d.xml"]
    assert [p.name for p in (tmp_path / "in").iterdir()] == ["c.xml.tmp"]
    created = AuditEntry.objects.get(record_type="execution.batch", action="create")
    assert (created.actor_username, created.via) == ("erp-sap", "erp-folder")
    assert listen.take_folder(folder, listen.interface_handler("erp-sap")) == 0


@pytest.mark.django_db
@pytest.mark.req("A11-07", "P11-13")
def test_the_folder_refuses_for_an_account_that_is_not_the_interface_and_keeps_nothing(
    tmp_path: Path,
) -> None:
    people = make_erp_plant()
    folder = listen.Folder(tmp_path)
    folder.prepare()
    (tmp_path / "in" / "a.xml").write_bytes(order("BOD-F2", "4712").encode())

    listen.take_folder(folder, listen.interface_handler(people["admin"].username))

    assert "may not send ERP messages" in (tmp_path / "out" / "a.reply.xml").read_text()
    assert not InboundMessage.objects.exists() and not Batch.objects.filter(number__startswith="ERP").exists()
    with pytest.raises(CommandError, match=r"not an active account with erp\.send_message"):
        call_command("erp", "listen", "--user", people["admin"].username, "--folder", str(tmp_path), "--once")


@pytest.mark.django_db
@pytest.mark.req("S95-02")
def test_the_command_answers_what_waits_in_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_erp_plant()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "order.xml").write_bytes(order("BOD-F3", "4713", batch="ERP-F-003").encode())
    call_command("erp", "listen", "--user", "erp-sap", "--folder", str(tmp_path), "--once")
    assert "1 document(s) answered" in capsys.readouterr().out
    assert Batch.objects.filter(number="ERP-F-003").exists()


class Listener:
    """``serve_nats`` on a thread of its own with its own event loop, as the command runs it."""

    def __init__(self, where: listen.Subject) -> None:
        self.where = where
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=1) as pool:
                await listen.serve_nats(self.where, listen.interface_handler("erp-sap"), pool, self.stop)

        self.loop.run_until_complete(main())

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=20)


async def _exchange(where: listen.Subject, documents: list[bytes], replies: int) -> list[bytes]:
    import nats

    client = await nats.connect(NATS_URL)
    try:
        js = client.jetstream()
        inbox = f"erp.test.reply.{uuid.uuid4().hex}"
        got: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_reply(message: Any) -> None:
            await got.put(message.data)

        await client.subscribe(inbox, cb=on_reply)
        for _ in range(100):  # the listener creates the stream; wait for it
            try:
                await js.stream_info(where.stream)
                break
            except Exception:
                await asyncio.sleep(0.1)
        for document in documents:
            await js.publish(where.subject, document, headers={"Batchline-Reply-To": inbox})
        return [await asyncio.wait_for(got.get(), 30) for _ in range(replies)]
    finally:
        await client.close()


async def _drop(stream: str) -> None:
    import nats

    client = await nats.connect(NATS_URL)
    try:
        await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


@pytest.mark.usefixtures("live_db")
@pytest.mark.req("S95-02", "A11-07")
def test_an_order_over_nats_jetstream_is_answered_on_its_reply_subject_and_a_resend_makes_no_second_batch() -> (
    None
):
    make_erp_plant()
    tag = uuid.uuid4().hex[:8]
    where = listen.Subject(NATS_URL, f"batchline.test.erp.{tag}", f"BL_TEST_ERP_{tag}")
    document = order("BOD-N1", "4714", batch="ERP-N-001").encode()
    try:
        with Listener(where):
            replies = run_async(_exchange(where, [document, document, b"not xml"], 3))
    finally:
        run_async(_drop(where.stream))
    for reply in replies:
        assert_valid(reply)
    assert [reason_code(r) for r in replies[:2]] == ["APPLIED", "APPLIED"]
    assert reason_code(replies[2]) != "APPLIED"
    assert Batch.objects.filter(number="ERP-N-001").count() == 1
    assert (
        InboundMessage.objects.filter(bodid="BOD-N1", transport="nats", repeat_of__isnull=True).count() == 1
    )
