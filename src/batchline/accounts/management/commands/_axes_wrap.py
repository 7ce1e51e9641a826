"""axes' reset commands, wrapped: an unlock names who and why and is audited (21 CFR 11.300(d)).

Batchline's accounts app comes before axes in ``INSTALLED_APPS``, so these
replace axes' commands of the same names. Resets that would clear every lock
or the access logs at once are refused: unlock each account or address with
its own reason.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.accounts.lockout import address_unlock
from batchline.accounts.management.cli import acting_administrator, add_actor_arguments
from batchline.accounts.models import User
from batchline.accounts.services import user_unlock


class Refused(BaseCommand):
    help = (
        "Refused in Batchline: unlock accounts and addresses one by one, with a reason, so each is audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("rest", nargs="*")

    def handle(self, *args: Any, **options: Any) -> None:
        raise CommandError(
            "Refused: this would lift locks or delete access records without an audit entry. "
            "Use 'batchline axes_reset_username USER --by YOU --reason WHY' or "
            "'batchline axes_reset_ip ADDRESS --by YOU --reason WHY' (or the Users and Security pages)."
        )


class UnlockUsers(BaseCommand):
    help = "Unlock accounts, audited with who (--by, asks your password) and why (--reason)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", nargs="+")
        add_actor_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = acting_administrator(options)
        for name in options["username"]:
            user = User.objects.filter(username__iexact=name).first()
            if user is None:
                raise CommandError(f"No account {name!r}.")
            user_unlock(actor=actor, user=user, reason=options["reason"])
            self.stdout.write(f"{user.username} unlocked; recorded under {actor.username}.")


class UnlockAddresses(BaseCommand):
    help = "Lift the block of client addresses, audited with who (--by) and why (--reason)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ip", nargs="+")
        add_actor_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = acting_administrator(options)
        for ip in options["ip"]:
            address_unlock(actor=actor, ip_address=ip, reason=options["reason"])
            self.stdout.write(f"{ip} unblocked; recorded under {actor.username}.")
