from django.apps import AppConfig


class ErpConfig(AppConfig):
    name = "batchline.erp"
    label = "erp"
    verbose_name = "ERP: orders and material in, performance and lots out (ISA-95 B2MML V0700)"

    def ready(self) -> None:
        # The lower apps publish events and never import this one (tests/test_layers.py).
        from . import outbound

        outbound.connect()
