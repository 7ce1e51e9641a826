"""``batchline datacheck snapshot|compare|migrate``: GMP data unchanged by a migration (A11-06)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.backup.datacheck import (
    Comparison,
    DatacheckError,
    snapshot_compare,
    snapshot_read,
    snapshot_take,
    snapshot_write,
)


class Command(BaseCommand):
    help = (
        "Data-migration check. 'snapshot FILE' records the count and content hashes (per column, per "
        "row) of every GMP table; 'compare FILE' checks the database against it after a migration; "
        "'migrate [APP [MIGRATION]]' does both around 'migrate'. Exit 1 when data changed or was lost."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        snapshot = sub.add_parser("snapshot", help="record the GMP tables before a migration")
        snapshot.add_argument("file", type=Path, help="the snapshot to write (gzip JSON; never overwritten)")
        compare = sub.add_parser("compare", help="compare the GMP tables with a snapshot")
        compare.add_argument("file", type=Path)
        migrate = sub.add_parser("migrate", help="snapshot, migrate, compare")
        migrate.add_argument("app_label", nargs="?")
        migrate.add_argument("migration_name", nargs="?")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        try:
            if options["action"] == "snapshot":
                snapshot = snapshot_take()
                snapshot_write(options["file"], snapshot)
                rows = sum(t["count"] for t in snapshot["tables"].values())
                self.stdout.write(
                    f"Snapshot written: {options['file']}: {len(snapshot['tables'])} GMP tables, {rows} rows; "
                    f"{time.perf_counter() - started:.2f} s"
                )
                return
            if options["action"] == "compare":
                self._report(snapshot_compare(snapshot_read(options["file"])), started)
                return
            before = snapshot_take()
            names = [n for n in (options["app_label"], options["migration_name"]) if n]
            call_command("migrate", *names, verbosity=options["verbosity"], stdout=self.stdout)
            self._report(snapshot_compare(before), started)
        except DatacheckError as problem:
            raise CommandError(str(problem)) from None

    def _report(self, comparison: Comparison, started: float) -> None:
        for addition in comparison.additions:
            self.stdout.write(f"added: {addition}")
        for difference in comparison.differences:
            self.stderr.write(f"DIFFERENCE: {difference}")
        summary = (
            f"{comparison.tables} GMP tables, {comparison.rows} rows compared; "
            f"{time.perf_counter() - started:.2f} s"
        )
        if not comparison.ok:
            raise CommandError(
                f"the GMP data is NOT as it was ({len(comparison.differences)} differences); {summary}"
            )
        self.stdout.write(f"OK: every GMP value and row is as it was (0 differences). {summary}")
