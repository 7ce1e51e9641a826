"""``batchline qms deliver [--loop]`` and ``batchline qms status``: the outbox's ``qms`` destination.

The name of old; ``batchline outbox deliver --destination qms`` does the same (docs/qms.md).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from batchline.outbox.management.commands.outbox import deliver, status_lines


class Command(BaseCommand):
    help = "Deliver due deviation events to the QMS (the outbox's qms destination); --loop to keep going."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["deliver", "status"])
        parser.add_argument("--loop", action="store_true", help="deliver every --every seconds until stopped")
        parser.add_argument("--every", type=float, default=30.0)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "status":
            for line in status_lines("qms") or ["qms: not configured, no message"]:
                self.stdout.write(line)
            return
        deliver(self, options, ["qms"])
