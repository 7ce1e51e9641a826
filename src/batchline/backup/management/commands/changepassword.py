"""``changepassword`` is refused: an unaudited password set by whoever runs it (batchline/backup/refusals.py)."""

from django.contrib.auth.management.commands import changepassword

from batchline.backup.refusals import CHANGEPASSWORD, RefusedCommandMixin


class Command(RefusedCommandMixin, changepassword.Command):
    refusal = CHANGEPASSWORD
