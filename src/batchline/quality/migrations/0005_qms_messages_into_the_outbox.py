"""The QMS feed's messages and attempts move into the one outbox (issue 14).

Every QmsMessage becomes an outbox Message to destination ``qms``, stream ``deviation:<number>``,
its idempotency key the ``message_id`` it was sent with (so a QMS that saw it once drops it
again), its body the same canonical JSON, its state, attempts and times unchanged; every
QmsDelivery becomes a Delivery of it. All of them, delivered ones too: the delivery log is then
one place, and the old tables go (0006). Backwards, the same mapping in reverse.
"""

import json

from django.db import migrations


def _body(payload):
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def forward(apps, schema_editor):
    QmsMessage = apps.get_model("quality", "QmsMessage")
    QmsDelivery = apps.get_model("quality", "QmsDelivery")
    Message = apps.get_model("outbox", "Message")
    Delivery = apps.get_model("outbox", "Delivery")
    for old in QmsMessage.objects.select_related("deviation").order_by("id").iterator():
        message = Message.objects.create(
            destination="qms",
            stream=f"deviation:{old.deviation.number}",
            kind=f"deviation.{old.event}",
            key=old.payload.get("message_id") or f"qms-message:{old.pk}",
            content_type="application/json",
            body=_body(old.payload),
            created_at=old.created_at,
            state=old.state,
            attempts=old.attempts,
            next_attempt_at=old.next_attempt_at,
            delivered_at=old.delivered_at,
        )
        Delivery.objects.bulk_create(
            [
                Delivery(
                    message=message,
                    at=d.at,
                    target=d.url,
                    status=d.status,
                    ok=d.status is not None and 200 <= d.status < 300,
                    error=d.error,
                    milliseconds=d.milliseconds,
                )
                for d in QmsDelivery.objects.filter(message=old).order_by("id")
            ]
        )


def backward(apps, schema_editor):
    QmsMessage = apps.get_model("quality", "QmsMessage")
    QmsDelivery = apps.get_model("quality", "QmsDelivery")
    Deviation = apps.get_model("quality", "Deviation")
    Message = apps.get_model("outbox", "Message")
    Delivery = apps.get_model("outbox", "Delivery")
    moved = Message.objects.filter(destination="qms", stream__startswith="deviation:").order_by("id")
    for message in moved.iterator():
        deviation = Deviation.objects.filter(number=message.stream.removeprefix("deviation:")).first()
        if deviation is None:
            continue
        old = QmsMessage.objects.create(
            deviation=deviation,
            event=message.kind.removeprefix("deviation."),
            payload=json.loads(message.body),
            created_at=message.created_at,
            state=message.state,
            attempts=message.attempts,
            next_attempt_at=message.next_attempt_at,
            delivered_at=message.delivered_at,
        )
        for d in Delivery.objects.filter(message=message).order_by("id"):
            QmsDelivery.objects.create(
                message=old,
                at=d.at,
                url=d.target,
                status=d.status,
                error=d.error,
                milliseconds=d.milliseconds,
            )
        Delivery.objects.filter(message=message).delete()
        message.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("quality", "0004_reviewstage_record_sha256"),
        ("outbox", "0002_delivery"),
    ]

    operations = [migrations.RunPython(forward, backward)]
