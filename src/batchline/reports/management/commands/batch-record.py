"""``batchline batch-record BATCH [--format pdf|json|batchml] [-o FILE]``: the executed batch record."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.execution.models import Batch
from batchline.reports.documents import FORMATS, batch_document


class Command(BaseCommand):
    help = "Write a batch's executed record as PDF (default), JSON or BatchML XML."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("batch", help="batch number")
        parser.add_argument("--format", choices=FORMATS, default="pdf")
        parser.add_argument(
            "-o", "--output", help="file to write; default batch-record-BATCH.<ext>; '-' for stdout"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            batch = Batch.objects.get(number=options["batch"])
        except Batch.DoesNotExist:
            raise CommandError(f"No batch {options['batch']!r}.") from None
        doc = batch_document(batch, options["format"])
        out = options["output"] or doc.filename
        if out == "-":
            sys.stdout.buffer.write(doc.data)
            return
        Path(out).write_bytes(doc.data)
        self.stdout.write(f"Wrote {out} ({len(doc.data)} bytes).")
