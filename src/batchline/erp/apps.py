from django.apps import AppConfig


class ErpConfig(AppConfig):
    name = "batchline.erp"
    label = "erp"
    verbose_name = "ERP: orders and material in, performance and lots out (ISA-95 B2MML V0700)"

    def ready(self) -> None:
        # The lower apps never import this one (tests/test_layers.py): they publish events, and
        # tell of arrivals, which this app listens to.
        from batchline import arrivals

        from . import inbound, outbound

        # A parked message waits for a material, a recipe or an order: told when one arrives.
        arrivals.listen(inbound.on_arrival)
        outbound.connect()
