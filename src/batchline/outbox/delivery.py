"""The outbox's delivery: due messages claimed in batches, sent, and their results recorded.

Order. Within one destination and stream (a batch, a deviation, a lot) a message is sent only when
every earlier one has been delivered or is being sent before it in the same chain: a message that
waits for its retry, is held by another deliverer, or failed for good holds back every later one of
its stream (a failed message until an engineer retries it, /outbox/). Other streams go on.

Throughput. One claim takes up to ``OUTBOX_BATCH`` messages: the heads of many streams and the
next few of each (a chain). The chains go out concurrently, the messages of one chain one after
the other, each only once its predecessor was taken; then all results are recorded in one
transaction.

Safety with several deliverers (the worker, the web process's on-commit kick, a second worker).
The claim is a short transaction that takes the rows (``SKIP LOCKED`` on PostgreSQL; SQLite's
IMMEDIATE transactions take turns) and leases them: ``next_attempt_at`` moves to the end of the
lease and ``lease`` holds this deliverer's token. No transaction stays open while a destination
is asked. A deliverer that dies lets its messages go when the lease ends; the next one sends them
again with the same idempotency key, which the receiver (or JetStream's duplicate window) uses to
drop the second copy. A result is recorded only while the lease is still the deliverer's own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import threading
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from . import destinations as dests
from .models import Delivery, Message
from .transports import Attempt, Outgoing, Transport, transport_for

log = logging.getLogger("batchline.outbox")
T = TypeVar("T")

# The most messages of one stream sent in one claim: bounds how long a chain keeps its lease.
CHAIN = 25
# Claims one delivery run makes at most, so that a worker's round ends under a steady inflow.
MAX_CLAIMS = 200


def pause(attempts: int) -> dt.timedelta:
    """The wait before the next attempt: 30 s, 1, 2, 4… minutes, at most an hour."""
    return dt.timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


@dataclass
class Claim:
    token: str
    leased_until: dt.datetime
    # destination -> chains, each the next messages of one stream, oldest first
    chains: dict[str, list[list[Outgoing]]] = field(default_factory=dict)

    @property
    def messages(self) -> list[Outgoing]:
        return [m for chains in self.chains.values() for chain in chains for m in chain]


FIELDS = ("id", "destination", "stream", "kind", "key", "content_type", "body", "created_at", "attempts")


def _claim(names: Iterable[str], *, batch: int) -> Claim | None:
    """Take up to ``batch`` messages that may be sent now, and lease them; None when none may."""
    names = list(names)
    with transaction.atomic():
        now = timezone.now()
        # An earlier message of the same stream that is not on its way: failed, waiting for its
        # retry, or leased to a deliverer. Only undelivered rows are looked at (outbox_open_stream_idx).
        holding_back = (
            Message.objects.filter(
                destination=OuterRef("destination"), stream=OuterRef("stream"), id__lt=OuterRef("id")
            )
            .exclude(state=Message.State.DELIVERED)
            .filter(Q(state=Message.State.FAILED) | Q(next_attempt_at__gt=now))
        )
        # In the order they fell due (outbox_due_idx gives it, and the scan stops at the limit);
        # fresh messages fall due as they are written, so that is mostly the order of writing.
        due = (
            Message.objects.filter(
                state=Message.State.PENDING, next_attempt_at__lte=now, destination__in=names
            )
            .filter(~Exists(holding_back))
            .order_by("next_attempt_at", "id")
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        # Narrow rows: the bodies are read below for the messages accepted only.
        picked = {pk: (d, s) for pk, d, s in due.values_list("id", "destination", "stream")[:batch]}
        if not picked:
            return None
        # Rows another deliverer had locked were skipped, and a message written after one of them
        # must wait for it. Read again (a newer snapshot on PostgreSQL): a chain starts at its
        # stream's first undelivered message and runs while every message is one this claim holds.
        streams = set(picked.values())
        undelivered = (
            Message.objects.exclude(state=Message.State.DELIVERED)
            .filter(destination__in={d for d, _ in streams}, stream__in={s for _, s in streams})
            .filter(id__lte=max(picked))
            .order_by("id")
            .values_list("id", "destination", "stream")
        )
        chains: dict[tuple[str, str], list[int]] = {}
        closed: set[tuple[str, str]] = set()
        for pk, d, s in undelivered:
            if (d, s) not in streams or (d, s) in closed:
                continue
            chain = chains.setdefault((d, s), [])
            if pk in picked and len(chain) < CHAIN:
                chain.append(pk)
            else:
                closed.add((d, s))
        accepted = [pk for chain in chains.values() for pk in chain]
        if not accepted:
            return None
        token = secrets.token_hex(16)
        leased_until = now + dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
        Message.objects.filter(id__in=accepted).update(next_attempt_at=leased_until, lease=token)
        rows = {row["id"]: row for row in Message.objects.filter(id__in=accepted).values(*FIELDS)}
    claim = Claim(token=token, leased_until=leased_until)
    for (d, _s), chain in chains.items():
        if chain:
            claim.chains.setdefault(d, []).append([_outgoing(rows[pk]) for pk in chain])
    return claim


def _outgoing(row: dict) -> Outgoing:
    return Outgoing(
        id=row["id"],
        destination=row["destination"],
        stream=row["stream"],
        kind=row["kind"],
        key=row["key"],
        content_type=row["content_type"],
        body=row["body"].encode(),
        created_at=row["created_at"],
        attempts=row["attempts"],
    )


async def _send(claim: Claim, transports: dict[str, Transport]) -> tuple[list[Attempt], list[int]]:
    """Every chain at once, each chain in order; a chain stops at its first failure.

    A claim is at most ``OUTBOX_BATCH`` messages; each transport bounds its own concurrency
    (the webhook's threads, the AMQP channel's one at a time, nats-py's pending publishes)."""
    # A chain stops early rather than outlive its lease (another deliverer would take it over).
    deadline = time.monotonic() + settings.OUTBOX_LEASE_SECONDS / 2
    for transport in transports.values():
        transport.new_batch()

    async def run(transport: Transport, chain: list[Outgoing]) -> tuple[list[Attempt], list[int]]:
        done: list[Attempt] = []
        for i, message in enumerate(chain):
            if i and time.monotonic() > deadline:
                return done, [m.id for m in chain[i:]]
            attempt = await transport.send(message)
            done.append(attempt)
            if not attempt.ok:
                return done, [m.id for m in chain[i + 1 :]]
        return done, []

    results = await asyncio.gather(
        *(run(transports[d], chain) for d, chains in claim.chains.items() for chain in chains)
    )
    return [a for done, _ in results for a in done], [pk for _, unsent in results for pk in unsent]


# A stream held back by a message that failed for good is looked at again this often (a retry
# releases it at once), rather than at every claim.
HELD_BACK = dt.timedelta(hours=1)
_DELIVERY_COLUMNS = ("message_id", "at", "target", "status", "ok", "response", "error", "milliseconds")


def _attempts_insert(attempts: list[Attempt], target_of: dict[int, str]) -> None:
    """Every attempt's row, in one statement run for all: the ORM's bulk_create spent more time
    preparing these rows than the database took to write them (docs/performance.md)."""
    qn = connection.ops.quote_name
    # The model's own names; the values go as parameters.
    table, columns = qn(Delivery._meta.db_table), ", ".join(qn(c) for c in _DELIVERY_COLUMNS)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(_DELIVERY_COLUMNS))})"  # noqa: S608
    adapt = connection.ops.adapt_datetimefield_value
    rows = [
        (
            a.message_id,
            adapt(a.at),
            target_of[a.message_id],
            a.status,
            a.ok,
            a.response,
            a.error,
            a.milliseconds,
        )
        for a in attempts
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _record_results(
    claim: Claim, attempts: list[Attempt], unsent: list[int], known: dict[str, dests.Destination]
) -> int:
    """Each attempt logged, delivered messages marked, failed ones rescheduled or failed for good.

    The later messages of a failed one's stream wait as long as it does (they could not go before
    it anyway), so that the claims do not look at them again and again.
    """
    by_id = {m.id: m for m in claim.messages}
    with transaction.atomic():
        now = timezone.now()
        if attempts:
            _attempts_insert(attempts, {pk: known[m.destination].shown for pk, m in by_id.items()})
        mine = Message.objects.filter(lease=claim.token)
        delivered = mine.filter(id__in=[a.message_id for a in attempts if a.ok]).update(
            state=Message.State.DELIVERED, delivered_at=now, attempts=F("attempts") + 1, lease=""
        )
        for a in attempts:
            if a.ok:
                continue
            message = by_id[a.message_id]
            tries = message.attempts + 1
            if tries >= known[message.destination].max_attempts:
                mine.filter(id=a.message_id).update(state=Message.State.FAILED, attempts=tries, lease="")
                log.warning(
                    "outbox message %s to %s failed for good: %s", message.key, message.destination, a.error
                )
                until = now + HELD_BACK
            else:
                until = now + pause(tries)
                mine.filter(id=a.message_id).update(attempts=tries, next_attempt_at=until, lease="")
            Message.objects.filter(
                destination=message.destination,
                stream=message.stream,
                id__gt=message.id,
                state=Message.State.PENDING,
                next_attempt_at__lt=until,
            ).filter(Q(lease="") | Q(lease=claim.token)).update(next_attempt_at=until, lease="")
        if unsent:
            # Left over when their chain's lease ran short; a failure's followers were moved above.
            mine.filter(id__in=unsent).update(next_attempt_at=now, lease="")
    return delivered


def deliver_due(*, destinations: Iterable[str] | None = None, batch: int | None = None) -> int:
    """Send every message that may be sent now, batch after batch; returns how many were delivered.

    ``destinations`` limits the run to some (default: every configured one). Messages of a
    destination that is not configured stay pending; the log page says so.
    """
    known = dests.configured()
    wanted = None if destinations is None else set(destinations)
    names = [n for n in known if wanted is None or n in wanted]
    if not names:
        return 0
    size = batch or settings.OUTBOX_BATCH
    delivered = 0
    transports: dict[str, Transport] = {}
    with _Loop() as loop:
        try:
            for _ in range(MAX_CLAIMS):
                claim = _claim(names, batch=size)
                if claim is None:
                    break
                for d in claim.chains:
                    if d not in transports:
                        transports[d] = transport_for(known[d])
                attempts, unsent = loop.run(_send(claim, transports))
                delivered += _record_results(claim, attempts, unsent, known)
        finally:
            for transport in transports.values():
                loop.run(transport.close())
    return delivered


class _Loop:
    """An event loop of the delivery's own, in a thread, for the sending; the database work stays in
    the caller's thread. The caller's thread may be running a loop already (an ASGI server; sync
    Playwright in the tests), where asyncio.run would refuse."""

    def __enter__(self) -> _Loop:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="outbox-io", daemon=True)
        self._thread.start()
        return self

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


# --- delivery right after commit ------------------------------------------------------------

_kick_lock = threading.Lock()
_kick_running = False
_kick_again = False


def kick() -> None:
    """Deliver in a background thread now; while one runs, it runs once more instead of a second thread."""
    global _kick_running, _kick_again
    with _kick_lock:
        if _kick_running:
            _kick_again = True
            return
        _kick_running = True
    threading.Thread(target=_kicked, name="outbox-delivery", daemon=True).start()


def _kicked() -> None:
    global _kick_running, _kick_again
    try:
        while True:
            with _kick_lock:
                _kick_again = False
            try:
                deliver_due()
            except Exception:  # the worker's round tries again; the web request already answered
                log.exception("outbox delivery after commit failed")
            with _kick_lock:
                if not _kick_again:
                    _kick_running = False
                    return
    finally:
        connections.close_all()  # this thread's own connections
