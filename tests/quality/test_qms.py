"""Deviations handed to an external QMS over a real HTTP server: after commit, signed, retried, logged.

The QMS feed is the outbox's ``qms`` destination (issue 14): its messages and attempts are the
outbox's, and a deviation is one stream.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from batchline.outbox.models import Delivery, Message
from batchline.quality import qms
from batchline.quality import services as q
from tests.quality.test_quality_services import raise_deviation

pytestmark = pytest.mark.django_db(transaction=True)


class FakeQms:
    """A real HTTP endpoint that records what it was sent and answers with ``status``."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, dict]] = []
        self.status = 201
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), {"raw": body, "json": json.loads(body)}))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/deviations"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, n: int) -> None:
        deadline = time.monotonic() + 10  # a wait for the background delivery, not a speed check
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.received) >= n, self.received


@pytest.fixture
def plant(live_db):
    from tests.quality.test_quality_services import make_people

    return make_people()


@pytest.fixture
def fake_qms():
    server = FakeQms()
    yield server
    server.server.shutdown()


def qms_at(url: str, *, secret: str = "", max_attempts: int = 12, timeout: float = 10) -> override_settings:
    """The QMS destination as BATCHLINE_QMS_WEBHOOK_URL and its siblings configure it, delivered
    right after commit as in production (the suite's settings switch that off elsewhere)."""
    spec = {"url": url, "secret": secret, "max_attempts": str(max_attempts), "timeout": str(timeout)}
    return override_settings(OUTBOX_DESTINATIONS={"qms": spec}, OUTBOX_DELIVER_ON_COMMIT=True)


def settle() -> None:
    """Let a delivery thread started on commit finish writing its log."""
    deadline = time.monotonic() + 10
    while Message.objects.filter(deliveries__isnull=True).exists() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.req("DEV-03")
def test_a_raised_deviation_reaches_the_qms_after_commit_signed_and_logged(plant, fake_qms) -> None:
    people, recipe = plant
    from tests.execution.test_engine import new_batch

    batch = new_batch(people, recipe)
    with qms_at(fake_qms.url, secret="s3cret"):
        dev = raise_deviation(people, [batch.number])
        fake_qms.wait_for(1)
        settle()
    headers, body = fake_qms.received[0]
    payload = body["json"]
    assert payload["format"] == "batchline.deviation/1" and payload["event"] == "raised"
    assert (
        payload["deviation"]["number"] == dev.number
        and payload["deviation"]["links"][0]["batch"] == batch.number
    )
    assert "Quinn" not in payload["signature"] and "Performed" in payload["signature"]
    expected = "sha256=" + hmac.new(b"s3cret", body["raw"], hashlib.sha256).hexdigest()
    assert headers["X-Batchline-Signature"] == expected
    message = Message.objects.get()
    assert message.state == "delivered" and message.attempts == 1
    # one deviation, one stream of the qms destination; the message id is the idempotency key
    assert (message.destination, message.stream, message.kind) == (
        "qms",
        f"deviation:{dev.number}",
        "deviation.raised",
    )
    assert headers["Idempotency-Key"] == payload["message_id"] == message.key
    assert payload["message_id"].startswith("batchline:qms:")
    # the deviation's page shows what the QMS received
    client = Client()
    client.force_login(people["reviewer"])
    page = client.get(f"/deviations/{dev.number}/").content.decode()
    feed = page.split('data-testid="qms-feed"')[1].split("</table>")[0]
    assert 'data-event="deviation.raised"' in feed and 'data-state="delivered"' in feed
    assert list(message.deliveries.values_list("status", flat=True)) == [201]


@pytest.mark.req("DEV-03")
def test_a_failed_delivery_is_retried_later_and_every_attempt_is_logged(plant, fake_qms) -> None:
    people, _recipe = plant
    fake_qms.status = 503
    with qms_at(fake_qms.url, max_attempts=3):
        raise_deviation(people, [])
        fake_qms.wait_for(1)
        settle()
        message = Message.objects.get()
        assert (message.state, message.attempts) == ("pending", 1)
        assert message.next_attempt_at > timezone.now()  # waits before trying again
        assert qms.deliver_due() == 0  # nothing due yet
        fake_qms.status = 200
        Message.objects.update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
        assert qms.deliver_due() == 1
    message.refresh_from_db()
    assert message.state == "delivered" and message.attempts == 2
    assert list(Delivery.objects.values_list("status", flat=True)) == [503, 200]
    # the QMS receives the same message id twice and can drop the duplicate
    ids = {body["json"]["message_id"] for _, body in fake_qms.received}
    assert len(ids) == 1


@pytest.mark.req("DEV-03")
def test_an_unreachable_qms_is_logged_and_the_message_fails_after_its_last_attempt(plant) -> None:
    people, _recipe = plant
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with qms_at(f"http://127.0.0.1:{port}/x", max_attempts=2, timeout=2):
        raise_deviation(people, [])
        settle()
        Message.objects.update(next_attempt_at=timezone.now())
        qms.deliver_due()
    message = Message.objects.get()
    assert (message.state, message.attempts) == ("failed", 2)
    assert all(d.status is None and d.error for d in message.deliveries.all())


@pytest.mark.req("DEV-03")
def test_a_refused_change_sends_nothing(plant, fake_qms) -> None:
    people, _recipe = plant
    with qms_at(fake_qms.url), pytest.raises(q.QualityRefused):
        raise_deviation(people, ["NO-SUCH-BATCH"])
    assert not Message.objects.exists() and fake_qms.received == []
