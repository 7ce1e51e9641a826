"""``batchline restore FILE``: into an empty database only, then verified against the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.backup.services import BackupError, command_line_actor, restore

# Exit codes: 1 refused or failed (nothing restored), 2 restored but it does not verify.
DOES_NOT_VERIFY = 2


class Command(BaseCommand):
    help = (
        "Restore FILE (written by 'batchline backup') into the configured database, which must be "
        "empty, then verify it: the file against its signed manifest, 'audit verify', and the counts "
        "and content hashes of every GMP table. Exit 0 verified, 1 refused, 2 restored with differences."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="the backup file; FILE.manifest.json beside it")
        parser.add_argument(
            "--no-owner",
            action="store_true",
            help="PostgreSQL: do not restore table owners and grants (restoring as another role)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = restore(options["file"], actor=command_line_actor(), no_owner=options["no_owner"])
        except BackupError as problem:
            raise CommandError(str(problem)) from None
        m = report.manifest
        for note in report.notes:
            self.stdout.write(f"note: {note}")
        for difference in report.differences:
            self.stderr.write(f"DIFFERENCE: {difference}")
        summary = (
            f"{options['file']} (backup of {m['created_at']}, {m['vendor']}): {len(m['tables'])} GMP tables, "
            f"{report.audit_entries} audit entries, {report.records} live records checked; "
            f"{report.seconds:.2f} s"
        )
        if not report.ok:
            raise CommandError(
                f"restored, but it does NOT verify ({len(report.differences)} differences): {summary}",
                returncode=DOES_NOT_VERIFY,
            )
        self.stdout.write(f"OK: restored and verified against its manifest. {summary}")
