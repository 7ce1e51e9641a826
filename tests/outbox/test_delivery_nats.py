"""Delivery to NATS JetStream (127.0.0.1:4222): acknowledged publishes, the stream made when absent,
and exactly one copy in the stream across a worker killed between publishing and recording."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from batchline.outbox.delivery import deliver_due
from batchline.outbox.models import Delivery, Message
from tests.conftest import free_port

from .peers import (
    NATS_URL,
    nats_names,
    stream_config,
    stream_delete,
    stream_messages,
    this_database_url,
    write,
)

pytestmark = [pytest.mark.usefixtures("live_db")]


@pytest.fixture
def jetstream() -> Iterator[tuple[str, str]]:
    stream, subject = nats_names()
    yield stream, subject
    stream_delete(stream)


def nats_destination(stream: str, subject: str, **query: str) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"{NATS_URL}?subject={subject}&stream={stream}{extra}"


@pytest.mark.req("A11-07", "DI-07")
def test_messages_reach_jetstream_in_order_acknowledged_and_the_stream_is_made_when_absent(
    jetstream: tuple[str, str],
) -> None:
    stream, subject = jetstream
    url = nats_destination(stream, subject, duplicate_window="600")
    with override_settings(
        OUTBOX_DESTINATIONS={"erp": {"url": url, "secret": "k"}}, OUTBOX_DELIVER_ON_COMMIT=False
    ):
        made = write("erp", "batch:PCM-0001", 5) + write("erp", "batch:PCM-0002", 5)
        assert deliver_due() == 10
    config = stream_config(stream)
    assert config.subjects == [subject] and config.duplicate_window == 600
    held = stream_messages(stream)
    assert sorted(h["Nats-Msg-Id"] for h, _ in held) == sorted(m.key for m in made)
    for name in ("batch:PCM-0001", "batch:PCM-0002"):
        ns = [json.loads(body)["n"] for h, body in held if h["Batchline-Stream"] == name]
        assert ns == list(range(5))  # each stream in the order it was written
    headers, _ = held[0]
    assert headers["Content-Type"] == "application/json" and headers["Batchline-Signature"].startswith(
        "sha256="
    )
    attempt = Delivery.objects.order_by("id").first()
    assert attempt is not None and attempt.ok and f"stream {stream} sequence" in attempt.response
    assert attempt.target == f"nats://127.0.0.1:4222 subject {subject} stream {stream}"


@pytest.mark.req("A11-07", "A11-17")
def test_no_nats_server_is_a_logged_failed_attempt_and_the_message_waits() -> None:
    url = f"nats://127.0.0.1:{free_port()}?subject=bltest.nowhere"
    with override_settings(
        OUTBOX_DESTINATIONS={"erp": {"url": url, "timeout": "2"}}, OUTBOX_DELIVER_ON_COMMIT=False
    ):
        write("erp", "batch:B-1", 2)
        assert deliver_due() == 0
    (attempt,) = Delivery.objects.all()  # the head only: the second waits behind it
    assert not attempt.ok and "could not connect" in attempt.error
    assert list(Message.objects.values_list("state", "attempts")) == [("pending", 1), ("pending", 0)]


# A worker that publishes and is killed (SIGKILL) before it records the result: its process is
# the real `batchline outbox deliver`, with the recording step replaced by the kill.
KILLED_AFTER_PUBLISHING = """
import os, signal, sys
import django
django.setup()
from batchline.outbox import delivery

def killed(*args, **kwargs):
    sys.stdout.write("published; killed before recording\\n")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)

delivery._record_results = killed
from django.core.management import call_command
call_command("outbox", "deliver")
"""


@pytest.mark.req("A11-07", "DI-07")
def test_a_message_is_held_once_by_jetstream_across_a_worker_killed_after_publishing(
    jetstream: tuple[str, str], tmp_path: Path
) -> None:
    stream, subject = jetstream
    url = nats_destination(stream, subject)
    with override_settings(OUTBOX_DESTINATIONS={"erp": {"url": url}}, OUTBOX_DELIVER_ON_COMMIT=False):
        (message,) = write("erp", "batch:PCM-0001", 1, kind="batch.started")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"} | {
        "DATABASE_URL": this_database_url(),
        "DJANGO_SETTINGS_MODULE": "batchline.settings",
        "BATCHLINE_HOME": str(tmp_path),
        "BATCHLINE_OUTBOX_ERP": url,
        "BATCHLINE_OUTBOX_LEASE_SECONDS": "1",  # the dead worker's hold ends soon
    }
    first = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_PUBLISHING], env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert "killed before recording" in first.stdout
    assert len(stream_messages(stream)) == 1  # it was published...
    message.refresh_from_db()
    assert (message.state, message.attempts) == ("pending", 0)  # ...and never recorded
    assert not Delivery.objects.exists()

    deadline = time.monotonic() + 30  # waiting for the lease to end, not a speed check
    while Message.objects.get().next_attempt_at > timezone.now() and time.monotonic() < deadline:
        time.sleep(0.1)
    restarted = subprocess.run(
        [sys.executable, "-m", "batchline.cli", "outbox", "deliver"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert restarted.returncode == 0, restarted.stderr
    assert "delivered 1" in restarted.stdout
    message.refresh_from_db()
    assert (message.state, message.attempts) == ("delivered", 1)
    (attempt,) = Delivery.objects.all()
    assert attempt.ok and "a duplicate" in attempt.response  # JetStream dropped the second copy
    held = stream_messages(stream)
    assert len(held) == 1
    assert held[0][0]["Nats-Msg-Id"] == message.key and held[0][1] == message.body.encode()
