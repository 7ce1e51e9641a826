"""``loaddata`` is refused: it writes GMP rows without the audit trail (batchline/backup/refusals.py)."""

from django.core.management.commands import loaddata

from batchline.backup.refusals import LOADDATA, RefusedCommandMixin


class Command(RefusedCommandMixin, loaddata.Command):
    refusal = LOADDATA
    allow_in_tests = True  # a test case's fixtures
