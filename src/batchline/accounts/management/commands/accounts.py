"""``batchline accounts``: the command-line doors to accounts, each audited with who and why.

- ``first-approver USER --reason``: a new installation's first QA approver
  (only while there is none; raises a security alert);
- ``reset USER --by YOU --reason``: void a password and issue a credential
  that reaches the person (mailed, or an enrolment code redeemed with a second
  person's identity check); never a password;
- ``unlock USER`` / ``unlock-address IP`` ``--by YOU --reason``;
- ``interface-token USER --name NAME --out FILE [--days N] --by YOU --reason``: a read-write token
  for an interface's account (a LIMS's), written to a new file only its owner can read and never
  printed, for the interface's configuration.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.accounts import grants, services
from batchline.accounts.lockout import address_unlock
from batchline.accounts.management.cli import acting_administrator, add_actor_arguments
from batchline.accounts.models import User
from batchline.audit.services import Actor


def _user(name: str) -> User:
    user = User.objects.filter(username__iexact=name).first()
    if user is None:
        raise CommandError(f"No account {name!r}.")
    return user


class Command(BaseCommand):
    help = "Accounts from the command line: first QA approver, credential reset, unlocks (all audited)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        first = sub.add_parser("first-approver", help="make the installation's first QA approver")
        first.add_argument("username")
        first.add_argument("--reason", required=True)
        for name in ("reset", "unlock"):
            p = sub.add_parser(name)
            p.add_argument("username")
            add_actor_arguments(p)
        p = sub.add_parser("interface-token", help="a token for an interface account, into a file")
        p.add_argument("username")
        p.add_argument("--name", required=True, help="the system that will use it, e.g. 'LabWare LIMS PRD'")
        p.add_argument("--out", type=Path, required=True, help="a new file for the token (mode 600)")
        p.add_argument("--days", type=int, default=services.TOKEN_DAYS)
        add_actor_arguments(p)
        p = sub.add_parser("unlock-address")
        p.add_argument("ip")
        add_actor_arguments(p)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "first-approver":
                user = _user(options["username"])
                grants.first_approver_grant(
                    actor=Actor(None, "cli", "Command line", "cli"), user=user, reason=options["reason"]
                )
                self.stdout.write(f"{user.username} is the first QA approver; the auditors are alerted.")
                return
            actor = acting_administrator(options)
            if action == "reset":
                user = _user(options["username"])
                issued = services.credential_deliver(
                    services.user_reset_password(actor=actor, user=user, reason=options["reason"])
                )
                self.stdout.write(issued.notice)
                if issued.enrolment_code:
                    self.stdout.write(f"Enrolment code for {user.username}: {issued.enrolment_code}")
            elif action == "interface-token":
                self._interface_token(actor, options)
            elif action == "unlock":
                services.user_unlock(actor=actor, user=_user(options["username"]), reason=options["reason"])
                self.stdout.write(f"{options['username']} unlocked.")
            else:
                address_unlock(actor=actor, ip_address=options["ip"], reason=options["reason"])
                self.stdout.write(f"{options['ip']} unblocked.")
        except (services.AccountError, grants.RolesRefused) as exc:
            raise CommandError(str(exc)) from exc

    def _interface_token(self, actor: Actor, options: dict[str, Any]) -> None:
        out: Path = options["out"]
        if out.exists():
            raise CommandError(f"{out} exists: a token goes into a new file, never over another one.")
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent} is no directory: nothing was issued.")
        user = _user(options["username"])
        # The file is made before the token, so that a token is never issued with nowhere to go.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            token, raw = services.interface_token_issue(
                actor=actor,
                user=user,
                name=options["name"],
                reason=options["reason"],
                days=options["days"],
            )
        except BaseException:
            os.close(fd)
            out.unlink()
            raise
        with os.fdopen(fd, "w") as f:
            f.write(raw + "\n")
        self.stdout.write(
            f"Token {token.prefix}… for {user.username} written to {out} (readable by its owner only); "
            f"valid until {token.expires_at:%Y-%m-%d %H:%M %Z}."
        )
