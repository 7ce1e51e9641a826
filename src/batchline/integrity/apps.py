from typing import Any

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_migrate


class IntegrityConfig(AppConfig):
    """Verification, checkpoints and the worker that runs them; the check that ``migrate`` kept the triggers.

    Last in ``INSTALLED_APPS``, so its check runs after every other app's migrations.
    """

    name = "batchline.integrity"
    label = "integrity"
    verbose_name = "Record integrity"

    def ready(self) -> None:
        post_migrate.connect(append_only_after_migrate, sender=self)


def append_only_after_migrate(using: str = "default", plan: Any = None, **kwargs: Any) -> None:
    """Refuse to finish a ``migrate`` that left an append-only table without its triggers.

    On SQLite, altering a column rebuilds the table without its triggers; the
    migration that does so must reinstall them (``audit.db.triggers_install``).
    Fails the test suite's database set-up too, so such a migration cannot land.
    """
    from django.db import connections

    from batchline.audit.db import triggers_missing

    if not plan:  # nothing migrated (or a flush): nothing could have dropped a trigger
        return
    missing = triggers_missing(connections[using])
    if missing:
        names = ", ".join(f"{table} ({trigger})" for table, trigger in missing)
        raise ImproperlyConfigured(
            f"After migrating, append-only triggers are missing: {names}. A migration rebuilt these tables; "
            "add a migration that calls batchline.audit.db.triggers_install for them."
        )
