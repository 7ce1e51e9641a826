"""The delivery log page for engineers, and the retry of a failed message: permitted, reasoned, audited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client, override_settings

from batchline.audit.models import AuditEntry
from batchline.outbox.delivery import deliver_due
from batchline.outbox.models import Message
from tests.conftest import make_user

from .peers import Receiver, time_passes, write

pytestmark = [pytest.mark.usefixtures("live_db")]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def client_of(username: str, roles: list[str]) -> Client:
    client = Client()
    client.force_login(make_user(username, roles))
    return client


def failed_stream(receiver: Receiver) -> tuple[Message, Message]:
    """Two messages of one stream to an ERP that answers 500: the first fails for good, the second waits."""
    receiver.answer = lambda n: 500
    write("erp", "batch:PCM-0001", 2, kind="batch.started")
    for _ in range(2):
        deliver_due()
        time_passes()
    first, second = Message.objects.order_by("id")
    assert (first.state, second.state, second.attempts) == ("failed", "pending", 0)
    return first, second


def erp_at(url: str) -> override_settings:
    return override_settings(
        OUTBOX_DESTINATIONS={"erp": {"url": url, "max_attempts": "2", "secret": "not-shown"}},
        OUTBOX_DELIVER_ON_COMMIT=False,
    )


@pytest.mark.req("A11-17", "A11-07")
def test_the_log_shows_each_destination_its_messages_and_every_attempt_with_its_answer(
    receiver: Receiver,
) -> None:
    with erp_at(receiver.url):
        first, second = failed_stream(receiver)
        engineer = client_of("eve", ["administrator"])
        page = engineer.get("/outbox/").content.decode()
        assert 'data-destination="erp"' in page and receiver.url in page and "HMAC-signed" in page
        assert "not-shown" not in page  # the secret never
        assert 'data-testid="failed-count">1<' in page
        failed = engineer.get("/outbox/?state=failed").content.decode()
        assert f'data-message="{first.pk}"' in failed and f'data-message="{second.pk}"' not in failed
        detail = engineer.get(f"/outbox/{first.pk}/").content.decode()
        assert detail.count("HTTP 500") >= 2 and "not taken" in detail and "not now" in detail  # the answer
        assert first.key in detail and 'data-testid="retry"' in detail
        waiting = engineer.get(f"/outbox/{second.pk}/").content.decode()
        assert 'data-testid="blocked"' in waiting and f"/outbox/{first.pk}/" in waiting
        # An auditor reads the log but is offered no retry.
        auditor = client_of("ada", ["auditor"])
        assert 'data-testid="retry"' not in auditor.get(f"/outbox/{first.pk}/").content.decode()
        assert client_of("olga", ["operator"]).get("/outbox/").status_code == 403


@pytest.mark.req("A11-17")
def test_the_log_is_filtered_and_paged(receiver: Receiver) -> None:
    with erp_at(receiver.url):
        write("erp", "batch:PCM-0001", 60, kind="batch.started")
        write("erp", "lot:L-7", 2, kind="lot.released")
        engineer = client_of("eve", ["administrator"])
        first_page = engineer.get("/outbox/").content.decode()
        assert first_page.count("data-message=") == 50 and "Page 1 of 2 · 62 messages" in first_page
        second_page = engineer.get("/outbox/?page=2").content.decode()
        assert second_page.count("data-message=") == 12
        lots = engineer.get("/outbox/?stream=lot:").content.decode()
        assert (
            lots.count("data-message=") == 2
            and "batch:PCM-0001" not in lots.split('data-testid="messages"')[1]
        )
        kind = engineer.get("/outbox/?kind=batch.started&state=pending&destination=erp").content.decode()
        assert "60 messages" in kind
        # Filters that name nothing known show nothing rather than fail.
        assert engineer.get("/outbox/?state=bogus&page=999&destination=" + "x" * 500).status_code == 200
        assert engineer.get("/outbox/999999/").status_code == 404


@pytest.mark.req("A11-07", "A11-13", "P11-05", "P11-07")
def test_an_engineer_retries_a_failed_message_with_a_reason_and_its_stream_follows_in_order(
    receiver: Receiver,
) -> None:
    with erp_at(receiver.url):
        first, second = failed_stream(receiver)
        operator = client_of("olga", ["operator"])
        engineer = client_of("eve", ["administrator"])
        before = AuditEntry.objects.count()
        # Refused: an operator (no permission), a retry without a reason, a message that has not failed.
        assert operator.post(f"/outbox/{first.pk}/retry/", {"reason": "x"}).status_code == 403
        unreasoned = engineer.post(f"/outbox/{first.pk}/retry/", {"reason": "  "})
        assert unreasoned.status_code == 422 and "Say why" in unreasoned.content.decode()
        pending = engineer.post(f"/outbox/{second.pk}/retry/", {"reason": "why not"})
        assert pending.status_code == 409 and "only a failed message is retried" in pending.content.decode()
        assert AuditEntry.objects.count() == before
        first.refresh_from_db()
        assert first.state == "failed"

        receiver.answer = lambda n: 200  # the ERP's interface was repaired
        done = engineer.post(
            f"/outbox/{first.pk}/retry/", {"reason": "ERP inbound queue restarted (INC-4711)"}
        )
        assert done.status_code == 302
        entry = AuditEntry.objects.get(action="outbox_retry")
        assert (entry.record_type, entry.record_id) == ("outbox.message", str(first.pk))
        assert entry.actor_username == "eve" and entry.reason == "ERP inbound queue restarted (INC-4711)"
        assert '"state":["failed","pending"]' in entry.changes and '"attempts":[2,0]' in entry.changes
        assert deliver_due() == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == ("delivered", "delivered")
    assert [r.json["n"] for r in receiver.taken] == [0, 1]  # the retried one first, then the one it held back
    assert first.deliveries.count() == 3  # the two failed attempts stay in the log


@pytest.mark.req("A11-17")
def test_the_configuration_page_links_the_log_for_engineers_and_auditors_only() -> None:
    assert (
        'data-testid="outbox-link"'
        in client_of("eve", ["administrator"]).get("/configuration/").content.decode()
    )
    assert (
        'data-testid="outbox-link"' in client_of("ada", ["auditor"]).get("/configuration/").content.decode()
    )
    approver = client_of("quinn", ["qa_approver"]).get("/configuration/").content.decode()
    assert 'data-testid="outbox-link"' not in approver
