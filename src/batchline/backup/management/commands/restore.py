"""``batchline restore FILE``: into an empty database only, then verified against the manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.backup.services import BackupError, command_line_actor, restore, signed_document

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
        parser.add_argument(
            "--report",
            type=Path,
            metavar="REPORT",
            help="also write the outcome as JSON signed with the installation key (the drill's record)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report_file: Path | None = options["report"]
        if report_file is not None and report_file.exists():
            raise CommandError(f"{report_file} exists: a report never overwrites a file")
        actor = command_line_actor()
        try:
            report = restore(options["file"], actor=actor, no_owner=options["no_owner"])
        except BackupError as refused:
            raise CommandError(str(refused)) from None
        if report_file is not None:
            signed, unsigned = signed_document("report", report.as_json(backup=options["file"], actor=actor))
            report_file.write_text(json.dumps(signed, indent=1, sort_keys=True) + "\n")
            if unsigned:
                self.stderr.write(f"WARNING: the report {report_file} is NOT signed ({unsigned})")
            else:
                self.stdout.write(f"report: {report_file}, signed by {signed['key']}")
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
