"""``batchline recipe import FILE --user NAME`` and ``batchline recipe export CODE [--version N]``.

An import is attributed to a person: the command asks for that person's
password (or reads it from standard input with ``--password-stdin``), and the
attempt counts towards lockout like any login.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import authenticate
from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.accounts.management.cli import cli_request
from batchline.audit.services import Actor
from batchline.recipes import document as doc
from batchline.recipes import services
from batchline.recipes.models import MasterRecipe, RecipeStatus


class Command(BaseCommand):
    help = "Import a recipe file as a new draft version, or export a version as YAML."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="import a YAML or JSON recipe file as a new draft version")
        imp.add_argument("file", type=Path)
        imp.add_argument("--user", required=True, help="your user ID: the import is recorded under your name")
        imp.add_argument(
            "--password-stdin", action="store_true", help="read your password from standard input"
        )
        imp.add_argument("--reason", default="")
        exp = sub.add_parser("export", help="print a recipe version as YAML")
        exp.add_argument("code")
        exp.add_argument("--version", type=int, help="default: the effective version, else the newest")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "import":
            self._import(options)
        else:
            self._export(options)

    def _import(self, options: dict[str, Any]) -> None:
        path: Path = options["file"]
        try:
            refused = doc.too_large(path.stat().st_size)
            if refused:  # before the file is read
                raise CommandError(f"{path}: {refused}; nothing was imported")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        password = (
            sys.stdin.readline().rstrip("\n") if options["password_stdin"] else getpass.getpass("Password: ")
        )
        user = authenticate(cli_request(), username=options["user"], password=password)
        if user is None:
            raise CommandError("user ID or password is wrong, or the account is locked; nothing was imported")
        if not user.has_perm("recipes.author_recipe"):
            raise CommandError("your roles do not allow importing recipes; nothing was imported")
        try:
            recipe = services.recipe_import(
                actor=Actor.of(user, via="cli"), text=text, reason=options["reason"]
            )
        except doc.RecipeInvalid as exc:
            for problem in exc.problems:
                self.stderr.write(f"{path}: {problem}")
            raise CommandError(f"{path} was not imported ({len(exc.problems)} problem(s))") from exc
        self.stdout.write(f"imported {recipe.code} version {recipe.version} as a draft")

    def _export(self, options: dict[str, Any]) -> None:
        versions = MasterRecipe.objects.filter(code=options["code"])
        if options["version"]:
            recipe = versions.filter(version=options["version"]).first()
        else:
            recipe = (
                versions.filter(status=RecipeStatus.EFFECTIVE).first()
                or versions.order_by("-version").first()
            )
        if recipe is None:
            raise CommandError(
                f"no recipe {options['code']}"
                + (f" version {options['version']}" if options["version"] else "")
            )
        self.stdout.write(
            f"# {recipe.code} version {recipe.version} ({recipe.get_status_display().lower()})\n"
        )
        self.stdout.write(doc.dump_yaml(doc.from_canonical(recipe.document)), ending="")
