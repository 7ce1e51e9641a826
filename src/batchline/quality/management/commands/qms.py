"""``batchline qms deliver [--loop]``: send the deviations' events that are due to the external QMS."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.quality import qms
from batchline.quality.models import QmsMessage


class Command(BaseCommand):
    help = (
        "Deliver due deviation events to the QMS webhook (BATCHLINE_QMS_WEBHOOK_URL); --loop to keep going."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["deliver", "status"])
        parser.add_argument("--loop", action="store_true", help="deliver every --every seconds until stopped")
        parser.add_argument("--every", type=float, default=30.0)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "status":
            for state in QmsMessage.State:
                self.stdout.write(f"{state.label}: {QmsMessage.objects.filter(state=state).count()}")
            return
        if not qms.configured():
            raise CommandError("No QMS is configured: set BATCHLINE_QMS_WEBHOOK_URL.")
        while True:
            sent = qms.deliver_due()
            self.stdout.write(f"delivered {sent}")
            if not options["loop"]:
                return
            time.sleep(options["every"])
