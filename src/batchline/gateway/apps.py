from typing import Any

from django.apps import AppConfig
from django.core import checks


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
        checks.register(downsample_settings_check)


def downsample_settings_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Downsampling and retention settings that would lose data, named by ``batchline check`` and at
    every start (the worker's job refuses them too, but only in its log)."""
    from .downsample import DownsampleSettingsError, plan_of

    try:
        plan_of()
    except DownsampleSettingsError as exc:
        return [checks.Error(str(exc), id="gateway.E001")]
    return []
