"""Django's commands that write GMP tables without the audit trail, refused (21 CFR 11.10(e); Annex 11 §9).

``loaddata`` inserts rows with no audit entry; ``flush`` deletes every record
and its trail (``sqlflush`` prints how); ``changepassword`` sets someone's
password with no entry and hands it to whoever runs the command;
``remove_stale_contenttypes`` deletes permissions and, by cascade, what roles
may do. Each is
overridden by a command of the same name in this app (listed first in
``INSTALLED_APPS``, so its commands win) that refuses in words.

The test suite needs two of them internally: Django's ``TransactionTestCase``
(pytest-django's ``transactional_db``) empties the database with ``flush``
after each such test, and a test case may load fixtures. Those run through
``call_command`` with the test settings (``TESTING = True``) and are let
through; from the command line (``batchline flush``, ``manage.py flush``)
they are refused whatever the settings say, and outside the test settings
they are refused however they are called.

What this does not stop: whoever can run ``batchline shell`` or ``dbshell``
(or holds the database's credentials) can write any row. That is the
database writer of the threat model (docs/operations.md), and what catches
them is ``audit verify``: a row without its trail is reported as created
outside the application, a deleted one as deleted, an edit as changed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

LOADDATA = (
    "Refused: loaddata writes rows straight into the tables, with no audit entry and no reason "
    "(21 CFR 11.10(e)); 'batchline audit verify' would report each one as created outside the "
    "application. Enter GMP data through the application (its pages, the API, 'batchline recipe "
    "import'); move a whole database with 'batchline backup' and 'batchline restore'."
)
FLUSH = (
    "Refused: flush would delete every GMP record and the audit trail with it; GMP records are "
    "never deleted (the append-only triggers refuse it too). To start again, create a new, empty "
    "database; to go back to a backup, restore it into a new database with 'batchline restore'."
)
SQLFLUSH = (
    "Refused: sqlflush prints the statements that would delete every GMP record and the audit "
    "trail; GMP records are never deleted. See 'batchline restore' for starting from a backup."
)
CHANGEPASSWORD = (
    "Refused: changepassword would set another person's password with no audit entry and give it "
    "to whoever runs this command. A person changes their own password on the 'Change password' "
    "page; an administrator resets one, audited, from the user's page or the API."
)

STALE_CONTENTTYPES = (
    "Refused: remove_stale_contenttypes deletes permissions, and with them what each role may do "
    "(who may sign), with no audit entry. Roles change only through the role definitions and their "
    "audited synchronisation."
)


def internal_test_call(command: BaseCommand) -> bool:
    """Django's own test machinery calling the command, under the test settings, not a person at a shell."""
    return bool(getattr(settings, "TESTING", False)) and not getattr(command, "_from_command_line", False)


class RefusedCommandMixin:
    """Refuses the command unless :func:`internal_test_call` (``allow_in_tests``)."""

    refusal: str = ""
    allow_in_tests: bool = False

    def run_from_argv(self, argv: list[str]) -> None:
        self._from_command_line = True
        super().run_from_argv(argv)  # type: ignore[misc]

    def execute(self, *args: Any, **options: Any) -> Any:
        if not (self.allow_in_tests and internal_test_call(self)):  # type: ignore[arg-type]
            raise CommandError(self.refusal)
        return super().execute(*args, **options)  # type: ignore[misc]
