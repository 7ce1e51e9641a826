"""``batchline audit verify``: exit 0 when trail, chain and live tables agree."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.audit.verify import verify


class Command(BaseCommand):
    help = "Audit trail tools. 'verify' recomputes the hash chain and replays it against the live tables."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        v = sub.add_parser("verify", help="check the chain and replay it against the live tables")
        v.add_argument("--chain-only", action="store_true", help="skip the replay against live tables")
        v.add_argument("--max-findings", type=int, default=100)

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        report = verify(replay=not options["chain_only"], max_findings=options["max_findings"])
        seconds = time.perf_counter() - started
        for finding in report.findings:
            self.stderr.write(f"FAIL {finding.kind}: {finding}")
        summary = (
            f"{report.entries} audit entries, {report.records} live records checked "
            f"in {seconds:.2f} s; head #{report.head_id} {report.head_hash}"
        )
        if not report.ok:
            raise CommandError(f"audit trail does NOT verify ({len(report.findings)} findings); {summary}")
        self.stdout.write(f"OK: audit trail verifies. {summary}")
