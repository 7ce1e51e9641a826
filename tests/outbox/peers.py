"""The outbox's real peers in the tests: an HTTP receiver, and helpers for NATS JetStream and RabbitMQ."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from batchline.outbox.models import Message
from batchline.outbox.services import enqueue
from tests.conftest import run_async

NATS_URL = "nats://127.0.0.1:4222"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP endpoint. ``answer(n)`` gives the status of the n-th request of its stream (from
    0, by the X-Batchline-Stream header): streams are sent side by side, so a count over all of them
    would depend on how their requests interleave. A request answered 2xx is one the receiver took. With ``secret`` it checks both signatures, as a
    receiver should, and answers 401 to a request that fails them."""

    answer: Callable[[int], int] = lambda n: 200
    secret: str = ""
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = dict(self.headers)
                if outer.delay:
                    time.sleep(outer.delay)  # a receiver that takes its time: deliverers overlap
                with lock:
                    stream = headers.get("X-Batchline-Stream")
                    status = outer.answer(
                        sum(r.headers.get("X-Batchline-Stream") == stream for r in outer.requests)
                    )
                    if outer.secret and not outer.signed_right(headers, body):
                        status = 401
                    outer.requests.append(Request(headers, body, status))
                self.send_response(status)
                answer = b'{"taken": true}' if 200 <= status < 300 else b'{"error": "not now"}'
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/inbound"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def signed_right(self, headers: dict[str, str], body: bytes) -> bool:
        key = headers.get("Idempotency-Key", "").encode()
        body_mac = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        key_mac = "sha256=" + hmac.new(self.secret.encode(), key + b"\n" + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(
            headers.get("X-Batchline-Signature", ""), body_mac
        ) and hmac.compare_digest(headers.get("X-Batchline-Key-Signature", ""), key_mac)

    @property
    def taken(self) -> list[Request]:
        return [r for r in self.requests if 200 <= r.status < 300]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write(
    destination: str, stream: str, n: int, *, kind: str = "test.event", start: int = 0
) -> list[Message]:
    """``n`` messages of one stream, each in its own transaction as changes write them."""
    made = []
    for i in range(start, start + n):
        with transaction.atomic():
            message = enqueue(destination, stream=stream, kind=kind, body={"stream": stream, "n": i})
        assert message is not None
        made.append(message)
    return made


def time_passes() -> None:
    """Every pending message's pause (or lease) is over: what the clock does in minutes, at once."""
    Message.objects.filter(state=Message.State.PENDING).update(next_attempt_at=timezone.now())


def this_database_url() -> str:
    """The test's own database, for a worker process started by the test."""
    d = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{d['NAME']}"
    user = d["USER"] + (f":{d['PASSWORD']}" if d.get("PASSWORD") else "")
    return f"postgres://{user}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{d['NAME']}"


# --- NATS JetStream ------------------------------------------------------------------------


def nats_names() -> tuple[str, str]:
    """A stream and subject of the test's own, so that runs never meet."""
    tag = uuid.uuid4().hex[:12]
    return f"BL_TEST_{tag.upper()}", f"bltest.outbox.{tag}"


async def _stream_messages(stream: str) -> list[tuple[dict[str, str], bytes]]:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            raw = await js.get_msg(stream, seq)
            out.append((dict(raw.headers or {}), raw.data or b""))
        return out
    finally:
        await nc.close()


def stream_messages(stream: str) -> list[tuple[dict[str, str], bytes]]:
    """Every message the JetStream stream holds, with its headers, in the stream's order."""
    return run_async(_stream_messages(stream))


async def _stream_config(stream: str) -> Any:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        return (await nc.jetstream().stream_info(stream)).config
    finally:
        await nc.close()


def stream_config(stream: str) -> Any:
    return run_async(_stream_config(stream))


async def _stream_delete(stream: str) -> None:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(NATS_URL)
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def stream_delete(stream: str) -> None:
    run_async(_stream_delete(stream))
