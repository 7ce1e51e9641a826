"""``batchline outbox deliver [--loop] [--destination NAME]`` and ``batchline outbox status``.

The worker (``batchline worker``) delivers the outbox every round already; this command is for a
plant that runs delivery on its own schedule, or an engineer who wants it now.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count

from batchline.outbox import destinations
from batchline.outbox.delivery import deliver_due
from batchline.outbox.models import Message


def status_lines(only: str | None = None) -> list[str]:
    configured = destinations.configured()
    counts: dict[str, dict[str, int]] = {}
    rows = Message.objects.order_by().values("destination", "state").annotate(n=Count("id"))
    for row in rows:
        counts.setdefault(row["destination"], {})[row["state"]] = row["n"]
    lines = []
    for name in sorted(set(configured) | set(counts)):
        if only and name != only:
            continue
        where = configured[name].shown if name in configured else "not configured"
        n = counts.get(name, {})
        states = ", ".join(f"{s.label.split(':')[0].lower()} {n.get(s.value, 0)}" for s in Message.State)
        lines.append(f"{name} ({where}): {states}")
    return lines


def deliver(command: BaseCommand, options: dict[str, Any], only: list[str] | None) -> None:
    configured = destinations.configured()
    if not configured or (only and not set(only) & set(configured)):
        raise CommandError(
            "No such destination is configured: set BATCHLINE_OUTBOX_QMS, _ERP or _LIMS "
            "(or BATCHLINE_QMS_WEBHOOK_URL), see docs/integration.md."
        )
    while True:
        sent = deliver_due(destinations=only)
        command.stdout.write(f"delivered {sent}")
        command.stdout.flush()
        if not options["loop"]:
            return
        time.sleep(options["every"])


class Command(BaseCommand):
    help = "Deliver the outbox's due messages (--loop to keep going), or count them by destination and state."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["deliver", "status"])
        parser.add_argument("--destination", action="append", help="only this destination (repeatable)")
        parser.add_argument("--loop", action="store_true", help="deliver every --every seconds until stopped")
        parser.add_argument("--every", type=float, default=30.0)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "status":
            for line in status_lines():
                self.stdout.write(line)
            return
        deliver(self, options, options["destination"])
