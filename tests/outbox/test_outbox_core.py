"""The outbox's write side: a message shares the fate of the change it reports."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import override_settings

from batchline.outbox import events
from batchline.outbox.models import Message
from batchline.outbox.services import enqueue

# Committed transactions are the point here: the test itself must not run inside one.
pytestmark = [pytest.mark.usefixtures("live_db")]

ERP = {"erp": {"type": "webhook", "url": "http://127.0.0.1:9/erp"}}


@pytest.mark.req("A11-07")
@override_settings(OUTBOX_DESTINATIONS=ERP)
def test_a_message_commits_and_rolls_back_with_its_change() -> None:
    with transaction.atomic():
        kept = enqueue("erp", stream="batch:B-1", kind="batch.started", body={"batch": "B-1"})
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        enqueue("erp", stream="batch:B-1", kind="batch.complete", body={"batch": "B-1"})
        1 / 0  # noqa: B018 (the change fails after its message was written)
    assert [m.kind for m in Message.objects.all()] == ["batch.started"]
    assert kept is not None
    assert kept.key.startswith("batchline:erp:")
    assert kept.content_type == "application/json" and kept.body == '{"batch":"B-1"}'
    assert kept.state == Message.State.PENDING


@pytest.mark.req("A11-07")
@override_settings(OUTBOX_DESTINATIONS=ERP)
def test_a_message_outside_a_transaction_is_refused_and_an_unconfigured_destination_gets_none() -> None:
    with pytest.raises(RuntimeError, match="transaction of the change"):
        enqueue("erp", stream="s", kind="k", body="x")
    with transaction.atomic():
        assert enqueue("lims", stream="s", kind="k", body="x") is None
    assert not Message.objects.exists()


@pytest.mark.req("A11-07")
@override_settings(OUTBOX_DESTINATIONS=ERP)
def test_an_event_reaches_its_subscribers_inside_the_publishing_transaction() -> None:
    heard: list[str] = []

    def handler(*, batch: str) -> None:
        heard.append(batch)
        enqueue("erp", stream=f"batch:{batch}", kind="test.event", body={"batch": batch})

    events.subscribe("test.event")(handler)
    try:
        with pytest.raises(RuntimeError, match="outside a transaction"):
            events.publish("test.event", batch="B-0")
        with pytest.raises(KeyError), transaction.atomic():
            events.publish("test.event", batch="B-2")
            raise KeyError("the change fails")
        with transaction.atomic():
            events.publish("test.event", batch="B-3")
    finally:
        events._handlers["test.event"].remove(handler)
    assert heard == ["B-2", "B-3"]
    assert [m.body for m in Message.objects.all()] == ['{"batch":"B-3"}']
