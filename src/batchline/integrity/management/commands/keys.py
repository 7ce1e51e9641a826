"""``batchline keys generate|show``: the installation key that signs checkpoints and archive manifests."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline import keys


class Command(BaseCommand):
    help = (
        "Create the installation's Ed25519 key (never replaces one) or show its public key and fingerprint."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["generate", "show"])

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "generate":
                public = keys.key_generate(keys.key_path())
                self.stdout.write(
                    f"created {keys.key_path()} (mode 600) and {keys.public_path_of(keys.key_path())}"
                )
            else:
                public = keys.installation_public_key()
        except (keys.KeyProblem, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"fingerprint {keys.fingerprint(public)}")
        self.stdout.write(public.decode().strip())
