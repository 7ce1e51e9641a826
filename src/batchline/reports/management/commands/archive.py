"""``batchline archive export BATCH [-o FILE]`` and ``batchline archive verify FILE``.

``verify`` never touches the database: it calls ``reports.verify``, which
imports only the standard library and ``batchline.rules``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.reports.verify import verify_archive


class Command(BaseCommand):
    help = "Batch archives: 'export' writes one, 'verify' checks one without the database."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        e = sub.add_parser("export", help="write a self-contained archive of one batch")
        e.add_argument("batch")
        e.add_argument("-o", "--output", help="default batch-archive-BATCH.zip")
        v = sub.add_parser("verify", help="check an archive's hashes, chain and signatures")
        v.add_argument("file")
        v.add_argument("--manifest-sha256", help="the manifest hash recorded at export")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "verify":
            report = verify_archive(options["file"], manifest_sha256=options["manifest_sha256"])
            if not report.ok:
                raise CommandError(
                    f"TAMPERED: {options['file']} does not verify:\n"
                    + "\n".join(f"  - {p}" for p in report.problems)
                )
            for note in report.notes:
                self.stdout.write(f"note: {note}")
            self.stdout.write(
                f"OK: archive of batch {report.batch} verifies; manifest SHA-256 {report.manifest_sha256}"
            )
            return
        from batchline.execution.models import Batch
        from batchline.reports.archive import archive_export

        try:
            batch = Batch.objects.get(number=options["batch"])
        except Batch.DoesNotExist:
            raise CommandError(f"No batch {options['batch']!r}.") from None
        data, manifest_hash = archive_export(batch)
        out = options["output"] or f"batch-archive-{batch.number}.zip"
        Path(out).write_bytes(data)
        self.stdout.write(f"Wrote {out} ({len(data)} bytes); manifest SHA-256 {manifest_hash}")
