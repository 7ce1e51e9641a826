"""Delivery to RabbitMQ (127.0.0.1:5672) with publisher confirms: a message counts as delivered only
once the broker took it; one it cannot route, or an exchange that is not there, is a failed attempt."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from django.test import override_settings

from batchline.outbox.delivery import deliver_due
from batchline.outbox.models import Delivery, Message
from tests.conftest import free_port

from .peers import AMQP_URL, write

pytestmark = [pytest.mark.usefixtures("live_db")]


@pytest.fixture
def broker() -> Iterator[tuple[Any, str, str]]:
    """An exchange of the test's own with one queue bound to routing key ``erp``."""
    tag = uuid.uuid4().hex[:12]
    exchange, queue = f"bltest.outbox.{tag}", f"bltest.outbox.{tag}.erp"
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    channel.exchange_declare(exchange, exchange_type="direct", durable=False, auto_delete=False)
    channel.queue_declare(queue, durable=False, auto_delete=False)
    channel.queue_bind(queue, exchange, routing_key="erp")
    yield channel, exchange, queue
    channel.queue_delete(queue)
    channel.exchange_delete(exchange)
    connection.close()


def amqp_at(url: str) -> override_settings:
    return override_settings(OUTBOX_DESTINATIONS={"erp": {"url": url}}, OUTBOX_DELIVER_ON_COMMIT=False)


@pytest.mark.req("A11-07", "DI-07")
def test_messages_are_confirmed_by_the_broker_in_order_with_their_key_as_message_id(
    broker: tuple[Any, str, str],
) -> None:
    channel, exchange, queue = broker
    with amqp_at(f"{AMQP_URL}?exchange={exchange}&routing_key=erp"):
        made = write("erp", "batch:PCM-0001", 3, kind="batch.started")
        assert deliver_due() == 3
    got = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        got.append((properties, body))
    assert [p.message_id for p, _ in got] == [m.key for m in made]  # in order, each once
    assert [json.loads(b)["n"] for _, b in got] == [0, 1, 2]
    properties = got[0][0]
    assert properties.content_type == "application/json" and properties.delivery_mode == 2
    assert properties.type == "batch.started" and properties.headers["batchline-stream"] == "batch:PCM-0001"
    attempts = list(Delivery.objects.all())
    assert all(a.ok and "confirmed by the broker" in a.response for a in attempts)
    assert attempts[0].target == f"amqp://guest:***@127.0.0.1:5672/%2F exchange {exchange} routing key erp"


@pytest.mark.req("A11-07", "A11-17")
def test_a_message_no_queue_would_receive_is_not_delivered(broker: tuple[Any, str, str]) -> None:
    _channel, exchange, _queue = broker
    with amqp_at(f"{AMQP_URL}?exchange={exchange}&routing_key=nobody-listens"):
        write("erp", "batch:PCM-0001", 2)
        assert deliver_due() == 0
    (attempt,) = Delivery.objects.all()  # the second waits behind the first
    assert not attempt.ok and "no queue is bound" in attempt.error
    assert list(Message.objects.values_list("state", "attempts")) == [("pending", 1), ("pending", 0)]


@pytest.mark.req("A11-07", "A11-17")
def test_an_exchange_that_is_not_there_and_a_broker_that_is_not_there_are_failed_attempts() -> None:
    with amqp_at(f"{AMQP_URL}?exchange=bltest.no-such-exchange-{uuid.uuid4().hex}&routing_key=erp"):
        write("erp", "batch:B-1", 1)
        write("erp", "batch:B-2", 1)
        assert deliver_due() == 0
    attempts = list(Delivery.objects.all())
    assert len(attempts) == 2 and all(not a.ok and "404" in a.error for a in attempts)
    Delivery.objects.all().delete()
    Message.objects.all().delete()
    with amqp_at(f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F?routing_key=erp"):
        write("erp", "batch:B-3", 1)
        assert deliver_due() == 0
    (attempt,) = Delivery.objects.all()
    assert not attempt.ok and "could not connect" in attempt.error
