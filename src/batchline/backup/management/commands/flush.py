"""``flush`` is refused: it deletes every GMP record and its trail (batchline/backup/refusals.py)."""

from django.core.management.commands import flush

from batchline.backup.refusals import FLUSH, RefusedCommandMixin


class Command(RefusedCommandMixin, flush.Command):
    refusal = FLUSH
    allow_in_tests = True  # TransactionTestCase empties the test database after each test
