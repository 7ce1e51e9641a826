"""``sqlflush`` is refused (batchline/backup/refusals.py)."""

from django.core.management.commands import sqlflush

from batchline.backup.refusals import SQLFLUSH, RefusedCommandMixin


class Command(RefusedCommandMixin, sqlflush.Command):
    refusal = SQLFLUSH
