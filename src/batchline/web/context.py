from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

import batchline


def site(request: HttpRequest) -> dict[str, Any]:
    return {
        "batchline_version": batchline.__version__,
        "site_time_zone": settings.TIME_ZONE,
        "idle_timeout_seconds": settings.IDLE_TIMEOUT_SECONDS,
        "lockout_failures": settings.LOCKOUT_FAILURES,
        "min_length": settings.PASSWORD_MIN_LENGTH,
        # Batch states in which a batch's review page is linked from the floor and its record.
        "review_states": ("complete", "in_review"),
        # Pages under "Quality" in the navigation.
        "quality_url_names": ("quality", "review", "deviations", "deviation", "deviation_new"),
    }
