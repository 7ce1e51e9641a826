"""``batchline backup FILE``: the database as one file, a signed manifest beside it (Annex 11 §7.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.backup.services import BackupError, backup_create, command_line_actor


class Command(BaseCommand):
    help = (
        "Back the database up into FILE (SQLite: the online backup API; PostgreSQL: pg_dump, custom "
        "format) and write FILE.manifest.json: its SHA-256, row counts and content hashes of every GMP "
        "table, the audit trail's head, signed with the installation key. The backup is audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="the backup file to write (never overwritten)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = backup_create(options["file"], actor=command_line_actor())
        except BackupError as problem:
            raise CommandError(f"no backup written: {problem}") from None
        for warning in result.warnings:
            self.stderr.write(f"WARNING: {warning}")
        m = result.manifest
        rows = sum(t["count"] for t in m["tables"].values())
        self.stdout.write(
            f"Backup written: {result.path} ({m['bytes']} bytes, sha256 {m['sha256']}), "
            f"{m['vendor']}; {len(m['tables'])} GMP tables, {rows} rows; audit trail "
            f"{m['audit']['count']} entries on {len(m['audit']['heads'])} chains, checkpoint "
            f"{m['checkpoint']['number'] if m['checkpoint'] else 'none'}; "
            f"manifest {result.manifest_path}; {result.seconds:.2f} s"
        )
