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
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from . import destinations as dests
from .models import Delivery, Message
from .transports import Attempt, Outgoing, Transport, transport_for

log = logging.getLogger("batchline.outbox")

# The most messages of one stream sent in one claim: bounds how long a chain keeps its lease.
CHAIN = 25
# Claims one delivery run makes at most, so that a worker's round ends under a steady inflow.
MAX_CLAIMS = 200
# Messages being sent at one moment, over all chains.
CONCURRENCY = 256


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


def _claim(names: Iterable[str], *, batch: int) -> Claim | None:
    """Take up to ``batch`` messages that may be sent now, and lease them; None when none may."""
    names = list(names)
    with transaction.atomic():
        now = timezone.now()
        # An earlier message of the same stream that is not on its way in this claim's reach:
        # failed, waiting for its retry, or leased to a deliverer.
        holding_back = Message.objects.filter(
            destination=OuterRef("destination"), stream=OuterRef("stream"), id__lt=OuterRef("id")
        ).filter(Q(state=Message.State.FAILED) | Q(state=Message.State.PENDING, next_attempt_at__gt=now))
        due = (
            Message.objects.filter(
                state=Message.State.PENDING, next_attempt_at__lte=now, destination__in=names
            )
            .filter(~Exists(holding_back))
            .order_by("id")
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        picked = list(due.values_list("id", "destination", "stream")[:batch])
        if not picked:
            return None
        taken = {pk for pk, _, _ in picked}
        # The rows another deliverer had locked were skipped: a message after one of them must wait.
        # Read again (a newer snapshot on PostgreSQL): a chain starts at the stream's first
        # undelivered message and runs while every message is one this claim holds.
        streams = {(d, s) for _, d, s in picked}
        undelivered = (
            Message.objects.exclude(state=Message.State.DELIVERED)
            .filter(destination__in={d for d, _ in streams}, stream__in={s for _, s in streams})
            .filter(id__lte=max(taken))
            .order_by("id")
            .values_list("id", "destination", "stream")
        )
        chains: dict[tuple[str, str], list[int]] = {}
        closed: set[tuple[str, str]] = set()
        for pk, d, s in undelivered:
            if (d, s) not in streams or (d, s) in closed:
                continue
            chain = chains.setdefault((d, s), [])
            if pk in taken and len(chain) < CHAIN:
                chain.append(pk)
            else:
                closed.add((d, s))
        accepted = [pk for chain in chains.values() for pk in chain]
        if not accepted:
            return None
        token = secrets.token_hex(16)
        leased_until = now + dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
        Message.objects.filter(id__in=accepted).update(next_attempt_at=leased_until, lease=token)
        rows = {
            row["id"]: row
            for row in Message.objects.filter(id__in=accepted).values(
                "id", "destination", "stream", "kind", "key", "content_type", "body", "created_at", "attempts"
            )
        }
    claim = Claim(token=token, leased_until=leased_until)
    for (d, _s), chain in chains.items():
        if chain:
            claim.chains.setdefault(d, []).append(
                [
                    Outgoing(
                        id=pk,
                        destination=rows[pk]["destination"],
                        stream=rows[pk]["stream"],
                        kind=rows[pk]["kind"],
                        key=rows[pk]["key"],
                        content_type=rows[pk]["content_type"],
                        body=rows[pk]["body"].encode(),
                        created_at=rows[pk]["created_at"],
                        attempts=rows[pk]["attempts"],
                    )
                    for pk in chain
                ]
            )
    return claim


async def _send(claim: Claim, transports: dict[str, Transport]) -> tuple[list[Attempt], list[int]]:
    """Every chain at once, each chain in order; a chain stops at its first failure."""
    gate = asyncio.Semaphore(CONCURRENCY)
    # A chain stops early rather than outlive its lease (another deliverer would take it over).
    deadline = time.monotonic() + settings.OUTBOX_LEASE_SECONDS / 2
    for transport in transports.values():
        transport.new_batch()

    async def run(transport: Transport, chain: list[Outgoing]) -> tuple[list[Attempt], list[int]]:
        done: list[Attempt] = []
        for i, message in enumerate(chain):
            if i and time.monotonic() > deadline:
                return done, [m.id for m in chain[i:]]
            async with gate:
                attempt = await transport.send(message)
            done.append(attempt)
            if not attempt.ok:
                return done, [m.id for m in chain[i + 1 :]]
        return done, []

    results = await asyncio.gather(
        *(run(transports[d], chain) for d, chains in claim.chains.items() for chain in chains)
    )
    return [a for done, _ in results for a in done], [pk for _, unsent in results for pk in unsent]


def _record_results(
    claim: Claim, attempts: list[Attempt], unsent: list[int], known: dict[str, dests.Destination]
) -> int:
    """Each attempt logged, delivered messages marked, failed ones rescheduled or failed for good."""
    by_id = {m.id: m for m in claim.messages}
    with transaction.atomic():
        now = timezone.now()
        Delivery.objects.bulk_create(
            [
                Delivery(
                    message_id=a.message_id,
                    at=a.at,
                    target=known[by_id[a.message_id].destination].shown,
                    status=a.status,
                    ok=a.ok,
                    response=a.response,
                    error=a.error,
                    milliseconds=a.milliseconds,
                )
                for a in attempts
            ],
            batch_size=500,
        )
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
            else:
                mine.filter(id=a.message_id).update(
                    attempts=tries, next_attempt_at=now + pause(tries), lease=""
                )
        if unsent:
            # Held back by their chain's failure (whose retry now holds them back) or the lease's end.
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
    with asyncio.Runner() as runner:
        try:
            for _ in range(MAX_CLAIMS):
                claim = _claim(names, batch=size)
                if claim is None:
                    break
                for d in claim.chains:
                    if d not in transports:
                        transports[d] = transport_for(known[d])
                attempts, unsent = runner.run(_send(claim, transports))
                delivered += _record_results(claim, attempts, unsent, known)
        finally:
            for transport in transports.values():
                runner.run(transport.close())
    return delivered


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
