"""How a message reaches its destination: an HMAC-signed HTTP POST, an AMQP publish with the broker's
confirm, or a JetStream publish with the stream's acknowledgement.

A transport sends one message and says what came back as an :class:`Attempt`; it never raises and
never touches the database (outbox/delivery.py claims and records). Every message carries its
idempotency key the way its receiver can use it: ``Idempotency-Key`` (HTTP), ``message_id``
(AMQP), ``Nats-Msg-Id`` (JetStream, whose duplicate window drops a second publish of the same id).
Connections are opened at the first message and kept for the whole delivery run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import http.client
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .destinations import Destination

AGENT = "Batchline-Outbox/1"
RESPONSE_LIMIT = 2000


@dataclass(frozen=True)
class Outgoing:
    """A claimed message, as plain data: what is sent, and what the deliverer needs to record it."""

    id: int
    destination: str
    stream: str
    kind: str
    key: str
    content_type: str
    body: bytes
    created_at: dt.datetime
    attempts: int


@dataclass(frozen=True)
class Attempt:
    message_id: int
    at: dt.datetime
    ok: bool
    milliseconds: int
    status: int | None = None
    response: str = ""
    error: str = ""


def signature(secret: str, data: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def signatures(secret: str, message: Outgoing) -> dict[str, str]:
    """The body's HMAC (what docs/qms.md promised), and one over key and body together, so that a
    replayed request with a new idempotency key fails the receiver's check."""
    if not secret:
        return {}
    return {
        "body": signature(secret, message.body),
        "key": signature(secret, message.key.encode() + b"\n" + message.body),
    }


def _header_value(value: str) -> str:
    return value if value.isascii() and value.isprintable() else quote(value, safe="")


def _text(data: bytes) -> str:
    return data[:RESPONSE_LIMIT].decode("utf-8", "replace")


class Transport:
    """Sends to one destination; subclasses open the connection lazily and keep it."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self._lock = asyncio.Lock()
        self._open = False
        self._failure = ""  # the connection failed in this batch: every message fails with it, at once

    def new_batch(self) -> None:
        self._failure = ""

    async def send(self, message: Outgoing) -> Attempt:
        at = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        try:
            async with self._lock:
                if self._failure:
                    raise ConnectionError(self._failure)
                if not self._open:
                    try:
                        await self._connect()
                    except Exception as exc:
                        self._failure = f"could not connect to {self.destination.shown}: {_reason(exc)}"
                        raise ConnectionError(self._failure) from exc
                    self._open = True
            ok, status, response, error = await self._send(message)
        except Exception as exc:  # a transport reports, it never raises: the message is retried later
            ok, status, response, error = False, None, "", _reason(exc)
        return Attempt(
            message_id=message.id,
            at=at,
            ok=ok,
            milliseconds=int((time.perf_counter() - started) * 1000),
            status=status,
            response=response[:RESPONSE_LIMIT],
            error=error[:RESPONSE_LIMIT],
        )

    async def close(self) -> None:
        if self._open:
            self._open = False
            with contextlib.suppress(Exception):  # closing a connection that already broke
                await self._disconnect()

    async def _connect(self) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        raise NotImplementedError

    async def _send(self, message: Outgoing) -> tuple[bool, int | None, str, str]:
        raise NotImplementedError

    def _lost(self) -> None:
        """The connection broke: the next message opens a new one."""
        self._open = False


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", "") or exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would follow a 302 with a GET and no body, and its 200 would count as delivered.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Webhook(Transport):
    """POST the body; a 2xx answer delivers it. Threads, since urllib blocks; a few streams at once."""

    THREADS = 8

    async def _connect(self) -> None:
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._pool = ThreadPoolExecutor(max_workers=self.THREADS, thread_name_prefix="outbox-http")

    async def _disconnect(self) -> None:
        self._pool.shutdown(wait=False)

    async def _send(self, message: Outgoing) -> tuple[bool, int | None, str, str]:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._post, message)

    def _post(self, message: Outgoing) -> tuple[bool, int | None, str, str]:
        d = self.destination
        request = urllib.request.Request(d.url, data=message.body, method="POST")  # noqa: S310 (the plant's URL)
        request.add_header("Content-Type", message.content_type)
        request.add_header("User-Agent", AGENT)
        request.add_header("Idempotency-Key", _header_value(message.key))
        request.add_header("X-Batchline-Kind", _header_value(message.kind))
        request.add_header("X-Batchline-Stream", _header_value(message.stream))
        signed = signatures(d.secret, message)
        if signed:
            request.add_header("X-Batchline-Signature", signed["body"])
            request.add_header("X-Batchline-Key-Signature", signed["key"])
        try:
            with self._opener.open(request, timeout=d.timeout) as response:
                status = response.status
                return 200 <= status < 300, status, _text(response.read(RESPONSE_LIMIT)), ""
        except urllib.error.HTTPError as exc:
            body = _text(exc.read(RESPONSE_LIMIT)) if exc.fp else ""
            error = f"HTTP {exc.code} {exc.reason}"
            if 300 <= exc.code < 400:
                error += f": redirected to {exc.headers.get('Location', '?')}; configure the final URL"
            return False, exc.code, body, error
        except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
            return False, None, "", _reason(exc)


class Amqp(Transport):
    """A persistent message to RabbitMQ with publisher confirms: delivered once the broker confirmed it.

    ``mandatory``: a message no queue is bound to receive is returned by the broker, and counts as
    not delivered, rather than vanish. pika's blocking connection lives in its own thread; messages
    go out one at a time, so the order of a stream is kept on the channel.
    """

    async def _connect(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-amqp")
        await asyncio.get_running_loop().run_in_executor(self._pool, self._open_channel)

    def _open_channel(self) -> None:
        import pika

        params = pika.URLParameters(self.destination.connect_url)
        params.socket_timeout = self.destination.timeout
        params.stack_timeout = self.destination.timeout
        params.blocked_connection_timeout = self.destination.timeout
        params.connection_attempts = 1
        self._connection = pika.BlockingConnection(params)
        self._channel = self._connection.channel()
        self._channel.confirm_delivery()

    async def _disconnect(self) -> None:
        def close() -> None:
            if self._connection.is_open:
                self._connection.close()

        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, close)
        finally:
            self._pool.shutdown(wait=False)

    async def _send(self, message: Outgoing) -> tuple[bool, int | None, str, str]:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._publish, message)

    def _publish(self, message: Outgoing) -> tuple[bool, int | None, str, str]:
        import pika
        import pika.exceptions as errors

        d = self.destination
        headers = {"batchline-stream": message.stream}
        signed = signatures(d.secret, message)
        if signed:
            headers |= {"batchline-signature": signed["body"], "batchline-key-signature": signed["key"]}
        properties = pika.BasicProperties(
            content_type=message.content_type,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=message.key,
            type=message.kind,
            app_id=AGENT,
            timestamp=int(message.created_at.timestamp()),
            headers=headers,
        )
        where = f"exchange {d.exchange or '(default)'} with routing key {d.routing_key}"
        try:
            if self._channel.is_closed:
                self._channel = self._connection.channel()
                self._channel.confirm_delivery()
            self._channel.basic_publish(d.exchange, d.routing_key, message.body, properties, mandatory=True)
        except errors.UnroutableError:
            return False, None, "", f"the broker returned it: no queue is bound to {where}"
        except errors.NackError:
            return False, None, "", "the broker refused it (nack)"
        except errors.ChannelClosedByBroker as exc:
            return False, None, "", f"the broker closed the channel: {exc.reply_code} {exc.reply_text}"
        except (errors.AMQPError, OSError) as exc:
            self._lost()
            return False, None, "", f"the connection to the broker failed: {_reason(exc)}"
        return True, None, f"confirmed by the broker ({where})", ""


class Nats(Transport):
    """A JetStream publish with acknowledgement; ``Nats-Msg-Id`` lets the stream drop a re-publish.

    The stream is created when absent (subject and duplicate window from the destination's URL);
    one that exists is used as the plant configured it.
    """

    async def _connect(self) -> None:
        import nats

        async def quiet(*_: Any) -> None:
            return None

        d = self.destination
        # nats-py tries a refused server forever with max_reconnect_attempts=0; with 1 it gives up
        # after a second try (NoServersError), and wait_for bounds a server that never answers.
        self._nc = await asyncio.wait_for(
            nats.connect(
                servers=[d.connect_url],
                name="batchline-outbox",
                connect_timeout=d.timeout,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                error_cb=quiet,
                disconnected_cb=quiet,
                closed_cb=quiet,
            ),
            d.timeout * 2,
        )
        self._js = self._nc.jetstream(timeout=d.timeout)
        if d.stream:
            await self._stream_ensure()

    async def _stream_ensure(self) -> None:
        from nats.js.errors import APIError, NotFoundError

        d = self.destination
        try:
            await self._js.stream_info(d.stream)
            return
        except NotFoundError:
            pass
        try:
            await self._js.add_stream(
                name=d.stream, subjects=[d.subject], duplicate_window=d.duplicate_window
            )
        except APIError:
            await self._js.stream_info(d.stream)  # another deliverer created it first: it exists now

    async def _disconnect(self) -> None:
        await self._nc.close()

    async def _send(self, message: Outgoing) -> tuple[bool, int | None, str, str]:
        import nats.errors
        from nats.js.errors import Error as JetStreamError

        d = self.destination
        headers = {
            "Nats-Msg-Id": message.key,
            "Content-Type": message.content_type,
            "Batchline-Kind": message.kind,
            "Batchline-Stream": message.stream,
        }
        signed = signatures(d.secret, message)
        if signed:
            headers |= {"Batchline-Signature": signed["body"], "Batchline-Key-Signature": signed["key"]}
        try:
            # publish_async and its future rather than publish: the same acknowledgement, awaited
            # the same way, without a request's round of bookkeeping per message (bench/outbox.py).
            async with asyncio.timeout(d.timeout):
                future = await self._js.publish_async(
                    d.subject, message.body, stream=d.stream or None, headers=headers
                )
                ack = await future
        except (nats.errors.ConnectionClosedError, nats.errors.StaleConnectionError) as exc:
            self._lost()
            return False, None, "", f"the connection to NATS broke: {_reason(exc)}"
        except (JetStreamError, nats.errors.Error, TimeoutError) as exc:
            return False, None, "", f"JetStream did not acknowledge it: {_reason(exc)}"
        said = f"stream {ack.stream} sequence {ack.seq}"
        if ack.duplicate:
            said += " (a duplicate: the stream already held this Nats-Msg-Id, and kept one)"
        return True, None, said, ""


KINDS: dict[str, type[Transport]] = {"webhook": Webhook, "amqp": Amqp, "nats": Nats}


def transport_for(destination: Destination) -> Transport:
    return KINDS[destination.type](destination)
