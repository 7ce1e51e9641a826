"""``batchline worker``: the long-running process for what is due on a schedule.

Checkpoints (every ``checkpoint_interval_minutes`` of the GMP configuration, when
the trail moved), the full verification (every ``verify_interval_minutes``; a
failure raises a security alert), the delivery of the outbox's due messages, and the
parked ERP messages: applied when what they wait for is here, expired after
``BATCHLINE_ERP_PARKED_HOURS``; every hour, the equipment gateway's old process data
downsampled and the summaries' retention applied (gateway/downsample.py). One
process per installation is enough; two are safe (checkpoint numbers and
chain positions are allocated under locks). Stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from batchline.integrity.verification import log, tick


class Command(BaseCommand):
    help = (
        "Run checkpoints, scheduled verification, outbox delivery, due master-data changes, parked ERP "
        "messages and process data downsampling until stopped (--once for one round)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, default=30.0, help="seconds between rounds (default 30)")
        parser.add_argument("--once", action="store_true", help="run one round and stop")
        parser.add_argument(
            "--parent", type=int, help="stop when this process (the demo that started it) is gone"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"worker started: a round every {options['every']:g} s", ending="\n")
        self.stdout.flush()
        while not stop.is_set():
            close_old_connections()  # a database restart between rounds is survived
            try:
                ran = tick()
            except Exception:  # one failed round (database down) must not end the worker
                log.exception("worker round failed")
            else:
                if (
                    ran.checkpoint
                    or ran.verified is not None
                    or ran.delivered
                    or ran.master_changes
                    or ran.overdue_reviews
                    or ran.erp_applied
                    or ran.erp_expired
                ):
                    verified = {None: "-", True: "ok", False: "FINDINGS"}[ran.verified]
                    self.stdout.write(
                        f"checkpoint {ran.checkpoint or '-'}; verify {verified}; outbox delivered {ran.delivered}; "
                        f"master-data changes in effect {', '.join(ran.master_changes) or '-'}; "
                        f"overdue reviews alerted {', '.join(ran.overdue_reviews) or '-'}; "
                        f"parked ERP messages applied {', '.join(ran.erp_applied) or '-'}, "
                        f"expired {', '.join(ran.erp_expired) or '-'}"
                    )
                    self.stdout.flush()
                upkeep = ran.gateway_upkeep
                if upkeep and (upkeep.days or upkeep.raw_removed or upkeep.summaries_removed):
                    self.stdout.write(
                        f"process data downsampled: {len(upkeep.days)} day(s), {upkeep.readings} reading(s) "
                        f"into {upkeep.summaries} summary row(s); retention removed {upkeep.raw_removed} raw "
                        f"day(s)/row(s) and {upkeep.summaries_removed} summary row(s)"
                    )
                    self.stdout.flush()
            if options["once"] or (options["parent"] and os.getppid() != options["parent"]):
                break
            stop.wait(options["every"])
        self.stdout.write("worker stopped")
        self.stdout.flush()
