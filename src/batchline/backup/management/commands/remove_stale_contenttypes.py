"""``remove_stale_contenttypes`` is refused: its cascade removes what roles may do (batchline/backup/refusals.py)."""

from django.contrib.contenttypes.management.commands import remove_stale_contenttypes

from batchline.backup.refusals import STALE_CONTENTTYPES, RefusedCommandMixin


class Command(RefusedCommandMixin, remove_stale_contenttypes.Command):
    refusal = STALE_CONTENTTYPES
