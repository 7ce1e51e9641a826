"""``batchline erp listen``: the ERP's watched folder and NATS JetStream subject, until stopped.

The HTTPS door needs no process of its own (it is the web server's ``/api/v1/erp/b2mml``).
Configured by options or the environment (docs/integration.md): ``BATCHLINE_ERP_USER`` the
interface account the documents are received as, ``BATCHLINE_ERP_FOLDER``, and
``BATCHLINE_ERP_NATS_URL`` with ``BATCHLINE_ERP_NATS_SUBJECT`` / ``BATCHLINE_ERP_NATS_STREAM``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.erp import listen


class Command(BaseCommand):
    help = (
        "ERP transports other than HTTPS: 'listen' serves the watched folder and the NATS JetStream subject."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        serve = sub.add_parser(
            "listen", help="serve the watched folder and/or the NATS subject until stopped"
        )
        serve.add_argument("--user", default=os.environ.get("BATCHLINE_ERP_USER", ""))
        serve.add_argument("--folder", default=os.environ.get("BATCHLINE_ERP_FOLDER", ""))
        serve.add_argument("--nats", default=os.environ.get("BATCHLINE_ERP_NATS_URL", ""))
        serve.add_argument(
            "--subject", default=os.environ.get("BATCHLINE_ERP_NATS_SUBJECT", "batchline.erp.in")
        )
        serve.add_argument(
            "--stream", default=os.environ.get("BATCHLINE_ERP_NATS_STREAM", "BATCHLINE_ERP_IN")
        )
        serve.add_argument("--once", action="store_true", help="take what waits in the folder once and stop")

    def handle(self, *args: Any, **options: Any) -> None:
        from batchline.accounts.models import User
        from batchline.erp.inbound import SEND_PERMISSION

        username = options["user"]
        user = User.objects.filter(username=username, is_active=True).first() if username else None
        if user is None or not user.has_perm(SEND_PERMISSION):
            raise CommandError(
                f"Name the ERP interface's account with --user or BATCHLINE_ERP_USER: {username or 'none'} "
                f"is not an active account with {SEND_PERMISSION} (the erp_interface role)."
            )
        folder = listen.Folder(Path(options["folder"])) if options["folder"] else None
        subject = (
            listen.Subject(options["nats"], options["subject"], options["stream"])
            if options["nats"]
            else None
        )
        if folder is None and subject is None:
            raise CommandError(
                "Give --folder DIR and/or --nats URL (or BATCHLINE_ERP_FOLDER / BATCHLINE_ERP_NATS_URL)."
            )
        handler = listen.interface_handler(username)
        if options["once"]:
            if folder is None:
                raise CommandError("--once reads the folder: give --folder.")
            folder.prepare()
            self.stdout.write(f"{listen.take_folder(folder, handler)} document(s) answered")
            return
        doors = " and ".join(
            part
            for part in (
                f"folder {folder.inbox}" if folder else "",
                f"NATS {subject.url} subject {subject.subject}" if subject else "",
            )
            if part
        )
        self.stdout.write(f"ERP listener started as {username}: {doors}")
        self.stdout.flush()
        asyncio.run(listen.serve(handler, folder=folder, subject=subject))
        self.stdout.write("ERP listener stopped")
