from django.apps import AppConfig


class SignaturesConfig(AppConfig):
    name = "batchline.signatures"
    label = "signatures"
    verbose_name = "Electronic signatures"
