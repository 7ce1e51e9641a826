from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

import batchline


def site(request: HttpRequest) -> dict[str, Any]:
    from batchline.configuration.selectors import current

    config = current()
    return {
        "batchline_version": batchline.__version__,
        # The zone every time on the page is shown in (web/middleware.py DisplayZoneMiddleware).
        "site_time_zone": timezone.get_current_timezone_name(),
        # The GMP configuration in force (configuration/selectors.py), not the environment that seeded it.
        "idle_timeout_seconds": config.idle_timeout_seconds,
        "lockout_failures": config.lockout_failures,
        "min_length": config.password_min_length,
        # Batch states in which a batch's review page is linked from the floor and its record.
        "review_states": ("complete", "in_review"),
        # "Master data" in the navigation for whoever may see a kind of it; asked only when the menu shows.
        "master_data_menu": lambda: _master_data_visible(request),
        "master_data_url_names": (
            "master_data",
            "master_changes",
            "master_kind",
            "master_item",
            "master_item_change",
            "master_item_retire",
            "master_decide",
            "gateway_change_decide",
        ),
        # Pages under "Quality" in the navigation.
        "quality_url_names": ("quality", "review", "deviations", "deviation", "deviation_new"),
    }


def _master_data_visible(request: HttpRequest) -> bool:
    from batchline.masterdata.selectors import kinds_visible

    return bool(kinds_visible(request.user))
