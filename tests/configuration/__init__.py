"""A helper for tests that need another GMP configuration in force."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from batchline.audit.services import SYSTEM
from batchline.configuration.models import ConfigVersion
from batchline.configuration.services import configuration_version_create


def configure(**values: Any) -> ConfigVersion:
    """Write the next configuration version, as an approved change request does; in force at once."""
    with transaction.atomic():
        return configuration_version_create(actor=SYSTEM, values=values, reason="set by the test")
