from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "batchline.outbox"
    label = "outbox"
    verbose_name = "Outbox: every message that leaves, written with the change and delivered after it"
