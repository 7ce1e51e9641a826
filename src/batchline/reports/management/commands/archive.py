"""``batchline archive export BATCH [-o FILE]`` and ``batchline archive verify FILE [--public-key PEM]``.

``verify`` never touches the database: it calls ``reports.verify``, which
imports only the standard library, ``batchline.rules`` and ``batchline.keys``;
by default it checks the manifest's signature with this installation's public key.
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
        v.add_argument("--manifest-sha256", help="the manifest hash recorded at export (the trail keeps it)")
        v.add_argument(
            "--public-key",
            help="the installation's public key (PEM) the manifest is signed with; default: this installation's",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "verify":
            from batchline.keys import installation_public_key

            public_key = (
                Path(options["public_key"]).read_bytes()
                if options["public_key"]
                else installation_public_key()
            )
            report = verify_archive(
                options["file"], public_key=public_key, manifest_sha256=options["manifest_sha256"]
            )
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
        data, manifest_hash = archive_export(batch, actor=_shell_actor())
        out = options["output"] or f"batch-archive-{batch.number}.zip"
        Path(out).write_bytes(data)
        self.stdout.write(
            f"Wrote {out} ({len(data)} bytes); manifest SHA-256 {manifest_hash} (kept in the audit trail)"
        )


def _shell_actor() -> Any:
    """The export is recorded under the shell's user: a command line is not a signed-in person."""
    import getpass

    from batchline.audit.services import Actor

    who = getpass.getuser()
    return Actor(id=None, username=f"cli:{who}", name=f"command line ({who})", via="cli")
