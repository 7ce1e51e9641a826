"""The command line as a station: who is acting is checked by their own user ID and password."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import authenticate
from django.core.management.base import CommandError, CommandParser
from django.http import HttpRequest

from batchline.audit.services import Actor


def cli_request() -> HttpRequest:
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    request.META["HTTP_USER_AGENT"] = "batchline-cli"
    request.path = "/cli/"
    return request


def add_actor_arguments(parser: CommandParser) -> None:
    parser.add_argument("--by", required=True, help="your user ID: the action is recorded under your name")
    parser.add_argument("--reason", required=True, help="why: kept in the audit trail")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read your password from standard input"
    )


def acting_administrator(options: dict[str, Any]) -> Actor:
    """The administrator named by ``--by``, after their password; a wrong one counts towards lockout."""
    return acting_person(options, "accounts.manage_users", "a security administrator")


def acting_person(options: dict[str, Any], permission: str, who: str) -> Actor:
    """The person named by ``--by``, after their password, holding ``permission`` (``who`` in words)."""
    if options["password_stdin"]:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password of {options['by']}: ")
    user = authenticate(cli_request(), username=options["by"], password=password)
    if user is None:
        raise CommandError("User ID or password is wrong, or the account is locked. Nothing was changed.")
    if not user.has_perm(permission):
        raise CommandError(f"{user.username} is not {who}: nothing was changed.")
    if not options["reason"].strip():
        raise CommandError("Give a reason (--reason): it is kept in the audit trail.")
    return Actor.of(user, via="cli")
