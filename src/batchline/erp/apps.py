from django.apps import AppConfig


class ErpConfig(AppConfig):
    name = "batchline.erp"
    label = "erp"
    verbose_name = "ERP inbound (B2MML)"

    def ready(self) -> None:
        from batchline import arrivals

        from . import inbound

        # A parked message waits for a material, a recipe or an order: told when one arrives.
        arrivals.listen(inbound.on_arrival)
