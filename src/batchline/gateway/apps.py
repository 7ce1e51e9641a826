from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "batchline.gateway"
    label = "gateway"
    verbose_name = "Equipment gateway"

    def ready(self) -> None:
        # Execution freezes each monitored value's course into the record when its step completes; the
        # values are the gateway's (execution never imports it: the gateway offers them).
        from batchline.execution import monitoring

        from .selectors import parameter_series

        monitoring.series_source = parameter_series
