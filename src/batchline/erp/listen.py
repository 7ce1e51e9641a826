"""The ERP's doors other than HTTPS: a watched folder and a NATS JetStream subject (``batchline erp listen``).

Both hand each document to :func:`batchline.erp.inbound.receive` exactly as the HTTPS endpoint
does, with the configured interface account as the audited actor, and answer with its reply.
Neither door acknowledges a document before its effect has committed: a crash in between
delivers it again, and ``receive`` is idempotent by the message's BODID, so the repeat has no
second effect and gets the same reply.

- **Folder** (``BATCHLINE_ERP_FOLDER``): the ERP writes ``NAME.xml`` into ``in/`` (written under
  another name and renamed, so a half-written file is never read: only ``*.xml`` is taken). Its
  reply goes to ``out/NAME.reply.xml`` (written and renamed the same way), then the document
  moves to ``done/`` (applied, parked) or ``refused/``.
- **NATS JetStream** (``BATCHLINE_ERP_NATS_URL``, subject ``BATCHLINE_ERP_NATS_SUBJECT``): a
  durable pull consumer on a stream holding that subject (created when absent). The reply is
  published to the subject in the message's ``Batchline-Reply-To`` header, or to
  ``<subject>.reply``, with the answered message's sequence in ``Batchline-In-Reply-To``; the
  message is acknowledged after that.

Device-style I/O in its own asyncio process; the ORM work runs on one worker thread, so a slow
database never stalls the NATS connection's heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.db import close_old_connections, connection

log = logging.getLogger("batchline.erp.listen")

# (document, transport) -> (reply document, state: applied | parked | refused | expired), or None when
# nothing was kept and the document must be offered again (someone else wrote the same record at once).
Handler = Callable[[bytes, str], "tuple[bytes, str] | None"]

POLL_SECONDS = 0.5
FETCH = 50


@dataclass(frozen=True)
class Folder:
    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "in"

    def prepare(self) -> None:
        for name in ("in", "out", "done", "refused"):
            (self.root / name).mkdir(parents=True, exist_ok=True)

    def waiting(self) -> list[Path]:
        # Oldest first: files from one ERP arrive in the order it wrote them.
        return sorted(self.inbox.glob("*.xml"), key=lambda path: (path.stat().st_mtime_ns, path.name))

    def answer(self, document: Path, reply: bytes, state: str) -> None:
        out = self.root / "out" / f"{document.stem}.reply.xml"
        partial = out.with_suffix(".partial")
        partial.write_bytes(reply)
        os.replace(partial, out)
        # FileNotFoundError: another listener answered it at the same moment, with the same reply.
        with contextlib.suppress(FileNotFoundError):
            os.replace(document, self.root / ("refused" if state == "refused" else "done") / document.name)


def take_folder(folder: Folder, handler: Handler) -> int:
    """Every document waiting in the folder, answered; how many."""
    folder.prepare()  # an operator may have tidied the answer folders away
    taken = 0
    for document in folder.waiting():
        try:
            body = document.read_bytes()
        except FileNotFoundError:  # another listener took it
            continue
        answer = _handle(handler, body, "folder")
        if answer is None:
            continue
        folder.answer(document, *answer)
        taken += 1
    return taken


def _handle(handler: Handler, body: bytes, transport: str) -> tuple[bytes, str] | None:
    if not connection.in_atomic_block:  # a caller inside a transaction (a test) keeps its connection
        close_old_connections()  # a database restart between documents is survived
    return handler(body, transport)


async def serve_folder(
    folder: Folder, handler: Handler, pool: ThreadPoolExecutor, stop: asyncio.Event
) -> None:
    folder.prepare()
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            await loop.run_in_executor(pool, take_folder, folder, handler)
        except Exception:  # one bad round (database down) must not end the listener
            log.exception("reading %s failed", folder.inbox)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_SECONDS)


@dataclass(frozen=True)
class Subject:
    url: str
    subject: str
    stream: str
    durable: str = "batchline-erp-in"

    @property
    def reply_subject(self) -> str:
        return f"{self.subject}.reply"


async def serve_nats(where: Subject, handler: Handler, pool: ThreadPoolExecutor, stop: asyncio.Event) -> None:
    import nats
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.errors import NotFoundError

    loop = asyncio.get_running_loop()
    client = await nats.connect(where.url, max_reconnect_attempts=-1)
    try:
        js = client.jetstream()
        try:
            await js.stream_info(where.stream)
        except NotFoundError:
            await js.add_stream(name=where.stream, subjects=[where.subject], duplicate_window=120)
        subscription = await js.pull_subscribe(where.subject, durable=where.durable, stream=where.stream)
        while not stop.is_set():
            try:
                messages = await subscription.fetch(FETCH, timeout=POLL_SECONDS)
            except (TimeoutError, NatsTimeout):
                continue
            for message in messages:
                try:
                    answer = await loop.run_in_executor(pool, _handle, handler, message.data, "nats")
                except Exception:  # the database away, say: offered again, the listener stays up
                    log.exception("receiving NATS message %s failed", message.metadata.sequence.stream)
                    answer = None
                if answer is None:
                    await message.nak(delay=1)
                    continue
                reply, _state = answer
                headers = message.headers or {}
                answered = str(message.metadata.sequence.stream)
                await client.publish(
                    headers.get("Batchline-Reply-To") or where.reply_subject,
                    reply,
                    headers={"Batchline-In-Reply-To": answered},
                )
                await message.ack()
    finally:
        # Every message taken was answered and acked or nak'ed: nothing is in flight to drain.
        await client.close()


async def serve(handler: Handler, *, folder: Folder | None, subject: Subject | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="erp-orm") as pool:
        doors = []
        if folder is not None:
            doors.append(serve_folder(folder, handler, pool, stop))
        if subject is not None:
            doors.append(serve_nats(subject, handler, pool, stop))
        await asyncio.gather(*doors)


def interface_handler(username: str) -> Handler:
    """Each document received as the ERP interface's account, read afresh every time: an account
    deactivated, or its role taken away, stops the next document, not the next restart."""
    from batchline.accounts.models import User

    from . import inbound

    def handle(body: bytes, transport: str) -> tuple[bytes, str] | None:
        user = User.objects.filter(username=username).first()
        if user is None or not user.is_active:
            words = (
                f"The ERP interface's account {username} does not exist or is deactivated: nothing was kept."
            )
            log.error(words)
            return words.encode(), "refused"
        try:
            reply = inbound.receive(body, transport=transport, actor=inbound.interface_actor(user, transport))
        except inbound.NotAllowed as exc:
            log.error("%s", exc)
            return str(exc).encode(), "refused"
        except inbound.Busy:
            return None
        return reply.xml, reply.state

    return handle
