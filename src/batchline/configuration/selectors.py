"""The GMP configuration in force: :func:`current`.

Every process reads the newest version's number on each use (one indexed
statement; once per request inside a request), so an approved change takes
effect everywhere at the next action, with no restart and no cache to expire.
The parsed values of each version are kept per process: a version never
changes once written.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from .definitions import GmpConfig, config_from
from .models import ConfigVersion

_PARSED: dict[tuple[int, str], GmpConfig] = {}
# Set for the length of one request by ConfigurationMiddleware: the version read first is the
# version the whole request acts under.
_REQUEST: ContextVar[dict[str, GmpConfig] | None] = ContextVar("batchline_config_request", default=None)


def current() -> GmpConfig:
    memo = _REQUEST.get()
    if memo is not None and "config" in memo:
        return memo["config"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT number, effective_at FROM configuration_configversion ORDER BY number DESC LIMIT 1"
        )
        row = cursor.fetchone()
    if row is None:
        raise ImproperlyConfigured(
            "No GMP configuration version: run 'batchline migrate' (it seeds the first)."
        )
    # Keyed by the time as well as the number: a database restored under a running process
    # (or a test's rolled-back version) may hold another version N.
    key = (row[0], str(row[1]))
    config = _PARSED.get(key)
    if config is None:
        version = ConfigVersion.objects.get(number=row[0])
        config = _PARSED[key] = config_from(version.number, version.values)
    if memo is not None:
        memo["config"] = config
    return config


def version_in_force(at: Any) -> int | None:
    """The number of the version that was in force at ``at`` (for the batch record)."""
    return (
        ConfigVersion.objects.filter(effective_at__lte=at)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )


class ConfigurationMiddleware:
    """One configuration version per request: the first read is reused for the rest of it."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        token = _REQUEST.set({})
        try:
            return self.get_response(request)
        finally:
            _REQUEST.reset(token)
