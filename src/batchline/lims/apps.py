from django.apps import AppConfig


class LimsConfig(AppConfig):
    name = "batchline.lims"
    label = "lims"
    verbose_name = "LIMS: sample requests out, laboratory results in"

    def ready(self) -> None:
        from batchline.execution.sampling import SAMPLE_TAKEN
        from batchline.outbox import events

        from . import sample_requests

        events.subscribe(SAMPLE_TAKEN)(sample_requests.on_sample_taken)
