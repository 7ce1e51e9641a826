"""``batchline masterdata import FILE``: a plant's first load of master data, under the same approval.

``--preview`` prints what each line of the file would do and writes nothing.
Without it the file is imported as the person named by ``--user``, who signs
the request (their password is asked, or read with ``--password-stdin``, and
a wrong one counts towards lockout); a QA approver approves it on the
**Master data** page or the API, and only then do the items exist.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.accounts.management.cli import cli_request
from batchline.approvals.services import ChangeRefused
from batchline.audit.services import Actor, ReasonRequired
from batchline.masterdata.definitions import KINDS
from batchline.masterdata.imports import (
    FORMATS,
    MAX_BYTES,
    ImportRefused,
    Preview,
    import_preview,
    import_request,
)
from batchline.signatures.models import Meaning
from batchline.signatures.services import SignatureRefused, signer_authenticate


class Command(BaseCommand):
    help = "Import master data from a CSV or B2MML file: a preview per line, then one signed request."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="preview or import a CSV (one kind) or B2MML V0700 file")
        imp.add_argument("file", type=Path)
        imp.add_argument("--kind", choices=list(KINDS), help="for CSV: the kind of master data it holds")
        imp.add_argument("--format", choices=FORMATS, help="default: b2mml for .xml, else csv")
        imp.add_argument("--preview", action="store_true", help="say what each line would do; write nothing")
        imp.add_argument("--user", help="your user ID: the import is requested and signed under your name")
        imp.add_argument("--reason", default="", help="why: kept in the audit trail, read by the approver")
        imp.add_argument(
            "--password-stdin", action="store_true", help="read your password from standard input"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        fmt = options["format"] or ("b2mml" if path.suffix.lower() == ".xml" else "csv")
        try:
            if path.stat().st_size > MAX_BYTES:  # before the file is read
                raise CommandError(
                    f"{path} is larger than {MAX_BYTES // 1048576} MB: split it; nothing was imported"
                )
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        try:
            if options["preview"]:
                preview = import_preview(data=data, file_name=path.name, format=fmt, kind=options["kind"])
                self._show(preview)
                if preview.refused:
                    raise CommandError(f"{len(preview.refused)} line(s) refused: the file cannot be imported")
                return
            if not options["user"] or not options["reason"].strip():
                raise CommandError("give --user (you sign the request) and --reason, or ask for --preview")
            password = (
                sys.stdin.readline().rstrip("\n")
                if options["password_stdin"]
                else getpass.getpass(f"Password of {options['user']}: ")
            )
            signer = signer_authenticate(
                request=cli_request(), username=options["user"], password=password, meaning=Meaning.REQUESTED
            )
            done = import_request(
                actor=Actor.of(signer.user, via="cli"),
                signer=signer,
                data=data,
                file_name=path.name,
                format=fmt,
                kind=options["kind"],
                reason=options["reason"],
            )
        except ImportRefused as exc:
            if exc.preview is not None:
                self._show(exc.preview, only_refused=True)
            raise CommandError(str(exc)) from exc
        except (ChangeRefused, ReasonRequired, SignatureRefused) as exc:
            raise CommandError(f"{exc} Nothing was imported.") from exc
        for row in done.applied:
            self.stdout.write(f"applied at once: {row.sentence()}")
        if done.request is not None:
            self.stdout.write(
                f"{done.request.number} requested: {len(done.request.payload['rows'])} row(s) wait for a QA approver"
            )

    def _show(self, preview: Preview, *, only_refused: bool = False) -> None:
        self.stdout.write(f"{preview.file_name} ({preview.format}, SHA-256 {preview.sha256})")
        for row in preview.rows:
            if only_refused and row.operation != "refused":
                continue
            self.stdout.write(row.sentence())
            for note in row.notes:
                self.stdout.write(f"    note: {note}")
        counts = preview.counts()
        self.stdout.write(", ".join(f"{n} {op}" for op, n in counts.items()))
