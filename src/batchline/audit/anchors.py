"""Anchors: copies of every signed checkpoint kept outside the database.

Someone who can write to the database can delete its newest checkpoints or
put back an older copy of the whole database; they cannot take back what was
written elsewhere. ``audit verify`` checks that the database extends the newest
checkpoint an anchor holds (audit/verify.py).

- :class:`FileAnchor` (the default): one JSON line per checkpoint, appended
  with ``O_APPEND`` and fsynced. Put the path on storage the database's
  writers cannot rewrite: another host's mount, WORM storage, a ``chattr +a``
  file (docs/trust.md).
- :class:`NatsAnchor`: a NATS JetStream stream created with deletes and purges
  denied, so even the stream's users cannot remove a checkpoint.
- :class:`SyslogAnchor`: write-only, to the plant's log collector (which keeps
  its own tamper-evident store); it cannot be read back here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import json
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class AnchorProblem(Exception):
    """An anchor could not be written or read; the message says which and why."""


@dataclass(frozen=True)
class Anchored:
    """A checkpoint as an anchor holds it: its number, the signed payload and the signature."""

    number: int
    payload: str
    signature: str  # base64
    key_fingerprint: str

    def line(self) -> str:
        return json.dumps(
            {
                "number": self.number,
                "payload": self.payload,
                "signature": self.signature,
                "key": self.key_fingerprint,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_line(cls, text: str) -> Anchored:
        data = json.loads(text)
        return cls(int(data["number"]), str(data["payload"]), str(data["signature"]), str(data["key"]))


class Anchor(Protocol):
    name: str
    readable: bool

    def write(self, checkpoint: Anchored) -> None: ...

    def newest(self) -> Anchored | None:
        """The anchored checkpoint with the highest number, or None if there is none yet."""
        ...


class FileAnchor:
    readable = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"file {self.path}"

    def write(self, checkpoint: Anchored) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise AnchorProblem(f"cannot open the anchor file {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)  # two workers never interleave a line
            os.write(descriptor, (checkpoint.line() + "\n").encode())
            os.fsync(descriptor)
        except OSError as exc:
            raise AnchorProblem(f"cannot write the anchor file {self.path}: {exc.strerror}") from exc
        finally:
            os.close(descriptor)

    def lines(self) -> Iterator[Anchored]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise AnchorProblem(f"cannot read the anchor file {self.path}: {exc.strerror}") from exc
        yield from self._checkpoints((f"line {n}", line) for n, line in enumerate(text.splitlines(), 1))

    def _checkpoints(self, lines: Iterable[tuple[str, str]]) -> Iterator[Anchored]:
        """``(where, text)`` lines as checkpoints; one that is not a checkpoint is a problem naming where."""
        for where, text in lines:
            if not text.strip():
                continue
            try:
                yield Anchored.from_line(text)
            except (ValueError, KeyError, TypeError) as exc:
                raise AnchorProblem(f"{where} of the anchor file {self.path} is not a checkpoint") from exc

    def exists(self) -> bool:
        return self.path.exists()

    def newest(self) -> Anchored | None:
        """The highest-numbered checkpoint among the file's last lines: the file is not read whole.

        Checkpoints are appended in order, so the newest is at the end; a file
        of years of checkpoints (about 25 MB a year at one every 15 minutes)
        is then read in one short seek.
        """
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                start = max(0, size - _TAIL)
                f.seek(start)
                tail = f.read().decode()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise AnchorProblem(f"cannot read the anchor file {self.path}: {exc}") from exc
        if start == 0:  # the whole file: lines can be numbered
            lines = [(f"line {n}", text) for n, text in enumerate(tail.splitlines(), 1)]
        else:  # the first line may be cut off by the seek
            lines = [("a line near the end", text) for text in tail.splitlines()[1:]]
        return max(self._checkpoints(lines), key=lambda a: a.number, default=None)


_TAIL = 64 * 1024  # far more than one checkpoint's line (about 1.5 KB with 16 chains)


class NatsAnchor:
    readable = True

    def __init__(self, url: str, stream: str, *, timeout: float = 5.0) -> None:
        self.url, self.stream, self.timeout = url, stream, timeout
        self.subject = f"{stream.lower()}.checkpoints"
        self.name = f"NATS JetStream stream {stream} at {url}"

    def _run(self, work: Any) -> Any:
        import nats
        from nats.js.api import StreamConfig

        async def go() -> Any:
            try:
                nc = await asyncio.wait_for(
                    nats.connect(
                        self.url,
                        connect_timeout=self.timeout,
                        allow_reconnect=False,
                        max_reconnect_attempts=0,
                    ),
                    self.timeout * 2,
                )
            except Exception as exc:  # nats raises its own and OSError; all mean unreachable
                raise AnchorProblem(f"{self.name} is unreachable: {exc or type(exc).__name__}") from exc
            try:
                js = nc.jetstream(timeout=self.timeout)
                config = StreamConfig(
                    name=self.stream, subjects=[self.subject], deny_delete=True, deny_purge=True
                )
                try:
                    await js.stream_info(self.stream)
                except Exception:
                    await js.add_stream(config)
                return await asyncio.wait_for(work(js), self.timeout * 2)
            finally:
                await nc.close()

        try:
            # In a thread of its own: the caller's thread may already run an event loop (an async
            # server, Playwright in the tests), where asyncio.run() is refused.
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                return pool.submit(lambda: asyncio.run(go())).result()
        except AnchorProblem:
            raise
        except Exception as exc:
            raise AnchorProblem(f"{self.name}: {exc or type(exc).__name__}") from exc

    def write(self, checkpoint: Anchored) -> None:
        async def publish(js: Any) -> None:
            # The message id makes a repeated publish of the same checkpoint a no-op.
            await js.publish(
                self.subject,
                checkpoint.line().encode(),
                headers={"Nats-Msg-Id": f"checkpoint-{checkpoint.number}-{checkpoint.key_fingerprint}"},
            )

        self._run(publish)

    def newest(self) -> Anchored | None:
        from nats.js.errors import NotFoundError

        async def last(js: Any) -> Anchored | None:
            # Stored in order of number (the worker anchors them in order), so the last message is the newest.
            try:
                message = await js.get_last_msg(self.stream, self.subject)
            except NotFoundError:
                return None
            return Anchored.from_line(message.data.decode())

        result: Anchored | None = self._run(last)
        return result


class SyslogAnchor:
    """``udp://host:port`` or a unix socket path such as ``/dev/log``."""

    readable = False

    def __init__(self, address: str) -> None:
        self.address = address
        self.name = f"syslog {address}"

    def write(self, checkpoint: Anchored) -> None:
        # RFC 3164 framing, facility local0, severity notice: <133>.
        message = f"<133>batchline: checkpoint {checkpoint.line()}".encode()
        try:
            if self.address.startswith("udp://"):
                host, _, port = self.address[len("udp://") :].rpartition(":")
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.sendto(message, (host or "127.0.0.1", int(port or 514)))
            else:
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                    s.sendto(message, self.address)
        except (OSError, ValueError) as exc:
            raise AnchorProblem(f"cannot write to {self.name}: {exc}") from exc

    def newest(self) -> Anchored | None:
        return None


def configured_anchors() -> list[Anchor]:
    """The file anchor always; NATS and syslog where configured."""
    from django.conf import settings

    anchors: list[Anchor] = [FileAnchor(settings.BATCHLINE_ANCHOR_PATH)]
    if settings.BATCHLINE_ANCHOR_NATS_URL:
        anchors.append(NatsAnchor(settings.BATCHLINE_ANCHOR_NATS_URL, settings.BATCHLINE_ANCHOR_NATS_STREAM))
    if settings.BATCHLINE_ANCHOR_SYSLOG:
        anchors.append(SyslogAnchor(settings.BATCHLINE_ANCHOR_SYSLOG))
    return anchors
