from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "batchline.gateway"
    label = "gateway"
    verbose_name = "Equipment gateway"

    def ready(self) -> None:
        # Execution freezes each monitored value's course into the record when its step completes; the
        # values are the gateway's (execution never imports it: the gateway offers them).
        from batchline.approvals.services import kind_register
        from batchline.execution import instruments, monitoring

        from .selectors import device_value, parameter_series
        from .services import ENDPOINT_CHANGE, TAG_CHANGE

        monitoring.series_source = parameter_series
        # An input read from the machine takes the gateway's latest reading of its tag.
        instruments.reading_source = device_value
        # Tags and endpoints change by a request and a QA approver's approval (services).
        kind_register(TAG_CHANGE)
        kind_register(ENDPOINT_CHANGE)
