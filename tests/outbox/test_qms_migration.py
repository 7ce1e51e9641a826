"""The QMS feed's messages move into the outbox with their meaning unchanged (quality 0005), and back."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from batchline.outbox.models import Delivery, Message
from tests.quality.test_quality_services import make_people, raise_deviation

pytestmark = [pytest.mark.usefixtures("live_db")]

BEFORE = [("quality", "0004_reviewstage_record_sha256"), ("outbox", "0002_delivery")]


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


def latest() -> list[tuple[str, str]]:
    graph = MigrationExecutor(connection).loader.graph
    return [node for node in graph.leaf_nodes() if node[0] in ("quality", "outbox")]


@pytest.mark.req("A11-06", "DEV-03")
def test_every_qms_message_and_attempt_moves_into_the_outbox_unchanged_and_back() -> None:
    people, _recipe = make_people()
    dev = raise_deviation(people, [])
    forward_to = latest()
    old = migrate(BEFORE).loader.project_state(BEFORE).apps
    QmsMessage, QmsDelivery = old.get_model("quality", "QmsMessage"), old.get_model("quality", "QmsDelivery")
    at = timezone.now().replace(microsecond=0) - dt.timedelta(hours=2)
    payload = {
        "format": "batchline.deviation/1",
        "message_id": "batchline:17",
        "event": "raised",
        "at": at.isoformat(),
        "signature": "Rita Reviewer — Performed — …",
        "deviation": {"number": dev.number, "title": "Granulator stopped — “wet” massing"},
    }
    delivered = QmsMessage.objects.create(
        deviation_id=dev.pk,
        event="raised",
        payload=payload,
        created_at=at,
        state="delivered",
        attempts=2,
        next_attempt_at=at,
        delivered_at=at + dt.timedelta(minutes=1),
    )
    QmsDelivery.objects.create(
        message=delivered, at=at, url="https://qms/x", status=503, error="", milliseconds=12
    )
    QmsDelivery.objects.create(
        message=delivered, at=at, url="https://qms/x", status=201, error="", milliseconds=9
    )
    failed = QmsMessage.objects.create(
        deviation_id=dev.pk,
        event="investigate",
        payload={**payload, "message_id": "batchline:18", "event": "investigate"},
        created_at=at + dt.timedelta(minutes=5),
        state="failed",
        attempts=12,
        next_attempt_at=at,
    )
    QmsDelivery.objects.create(
        message=failed, at=at, url="https://qms/x", status=None, error="refused", milliseconds=1
    )

    migrate(forward_to)
    first, second = Message.objects.order_by("id")
    assert (first.destination, first.stream, first.kind, first.key) == (
        "qms",
        f"deviation:{dev.number}",
        "deviation.raised",
        "batchline:17",  # the id the QMS saw: a re-send is still a duplicate to it
    )
    assert json.loads(first.body) == payload and first.content_type == "application/json"
    assert first.body == json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert (first.state, first.attempts, first.created_at, first.delivered_at) == (
        "delivered",
        2,
        at,
        at + dt.timedelta(minutes=1),
    )
    assert [(d.status, d.ok, d.target) for d in first.deliveries.all()] == [
        (503, False, "https://qms/x"),
        (201, True, "https://qms/x"),
    ]
    assert (second.kind, second.key, second.state, second.attempts) == (
        "deviation.investigate",
        "batchline:18",
        "failed",
        12,
    )
    assert [(d.status, d.error) for d in second.deliveries.all()] == [(None, "refused")]

    old = migrate(BEFORE).loader.project_state(BEFORE).apps  # and back: the same rows again
    back = list(old.get_model("quality", "QmsMessage").objects.order_by("id"))
    assert [(m.event, m.payload["message_id"], m.state, m.attempts) for m in back] == [
        ("raised", "batchline:17", "delivered", 2),
        ("investigate", "batchline:18", "failed", 12),
    ]
    assert not Message.objects.exists() and not Delivery.objects.exists()
    migrate(forward_to)
