"""Delivery to an HMAC-signed webhook, over a real HTTP server: order, retries, failure, signatures."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from batchline.outbox.delivery import deliver_due, pause
from batchline.outbox.models import Delivery, Message

from .peers import Receiver, time_passes, write

pytestmark = [pytest.mark.usefixtures("live_db")]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def erp_at(url: str, **extra: str) -> override_settings:
    # The on-commit delivery is off here: each test drives the deliverer itself, step by step.
    return override_settings(
        OUTBOX_DESTINATIONS={"erp": {"url": url, **extra}}, OUTBOX_DELIVER_ON_COMMIT=False
    )


def deliver_until_done(rounds: int = 200) -> int:
    """The worker's rounds, with the retry pauses over between them, until nothing is pending."""
    for used in range(rounds):
        deliver_due()
        if not Message.objects.filter(state=Message.State.PENDING).exists():
            return used + 1
        time_passes()
    raise AssertionError("messages still pending after the rounds")


@pytest.mark.req("A11-07", "DI-07")
def test_a_stream_arrives_in_order_and_once_while_the_destination_fails_every_second_delivery(
    receiver: Receiver,
) -> None:
    receiver.answer = lambda n: 503 if n % 2 == 0 else 200  # every second request of a stream refused
    with erp_at(receiver.url):
        write("erp", "batch:PCM-0001", 20)
        write("erp", "batch:PCM-0002", 20)  # a second stream: each keeps its own order
        deliver_until_done()
    for stream in ("batch:PCM-0001", "batch:PCM-0002"):
        taken = [r.json["n"] for r in receiver.taken if r.json["stream"] == stream]
        assert taken == list(range(20)), taken  # in order, none missing, none twice
        seen = [r.json["n"] for r in receiver.requests if r.json["stream"] == stream]
        assert seen == sorted(seen)  # a later message was never even tried before an earlier one arrived
    assert any(r.status == 503 for r in receiver.requests)
    assert Message.objects.filter(state=Message.State.DELIVERED).count() == 40
    # every attempt logged: the refused ones with the answer, the taken ones once per message
    assert Delivery.objects.count() == len(receiver.requests)
    assert Delivery.objects.filter(ok=True).count() == 40
    refused = Delivery.objects.filter(ok=False).first()
    assert refused is not None and refused.status == 503 and '"error"' in refused.response


@pytest.mark.req("A11-07")
def test_the_receiver_checks_the_hmac_signatures_and_the_key_travels_with_every_attempt(
    receiver: Receiver,
) -> None:
    receiver.secret = "s3cret-shared-with-the-erp"
    with erp_at(receiver.url, secret="s3cret-shared-with-the-erp"):
        (message,) = write("erp", "lot:L-1", 1, kind="lot.released")
        assert deliver_due() == 1
    (request,) = receiver.requests
    assert request.status == 200  # the receiver recomputed both signatures and they matched
    assert request.headers["Idempotency-Key"] == message.key
    assert request.headers["X-Batchline-Kind"] == "lot.released"
    assert request.headers["X-Batchline-Stream"] == "lot:L-1"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"stream": "lot:L-1", "n": 0}


@pytest.mark.req("A11-07")
def test_a_wrong_secret_is_refused_by_the_receiver_and_the_message_waits(receiver: Receiver) -> None:
    receiver.secret = "the-right-one"
    with erp_at(receiver.url, secret="a-stale-one"):
        write("erp", "lot:L-1", 1)
        assert deliver_due() == 0
    (attempt,) = Delivery.objects.all()
    assert (attempt.ok, attempt.status) == (False, 401)
    message = Message.objects.get()
    assert (message.state, message.attempts) == ("pending", 1)
    assert message.next_attempt_at > timezone.now()  # waits before it is tried again


@pytest.mark.req("A11-07", "A11-17")
def test_a_message_that_fails_for_good_holds_back_its_stream_and_not_the_others(receiver: Receiver) -> None:
    receiver.answer = lambda n: 500
    with erp_at(receiver.url, max_attempts="3"):
        write("erp", "batch:B-1", 2)
        for _ in range(3):
            deliver_due()
            time_passes()
        first, second = Message.objects.filter(stream="batch:B-1").order_by("id")
        assert (first.state, first.attempts) == ("failed", 3)
        assert (second.state, second.attempts) == ("pending", 0)  # never sent past the failed one
        receiver.answer = lambda n: 200
        write("erp", "batch:B-2", 1)  # another stream goes on
        deliver_due()
        time_passes()
        deliver_due()
    assert [r.json["stream"] for r in receiver.taken] == ["batch:B-2"]
    second.refresh_from_db()
    assert (second.state, second.attempts) == ("pending", 0)
    assert [d.status for d in first.deliveries.all()] == [500, 500, 500]


@pytest.mark.req("A11-07")
def test_a_redirect_is_not_a_delivery(receiver: Receiver) -> None:
    receiver.answer = lambda n: 302  # urllib would follow it with a GET and count the 200
    with erp_at(receiver.url):
        write("erp", "batch:B-1", 1)
        assert deliver_due() == 0
    (attempt,) = Delivery.objects.all()
    assert attempt.status == 302 and not attempt.ok and "configure the final URL" in attempt.error
    assert len(receiver.requests) == 1


@pytest.mark.req("A11-07", "A11-17")
def test_an_unreachable_destination_is_logged_and_retried_with_a_growing_pause() -> None:
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with erp_at(f"http://127.0.0.1:{port}/x", timeout="2"):
        write("erp", "batch:B-1", 1)
        deliver_due()
        after_one = Message.objects.get().next_attempt_at
        time_passes()
        deliver_due()
    message = Message.objects.get()
    assert message.attempts == 2 and message.state == "pending"
    attempts = list(message.deliveries.all())
    assert all(a.status is None and not a.ok and a.error for a in attempts)
    # 30 s after the first failure, a minute after the second (scheduled, not waited for)
    assert (after_one - attempts[0].at).total_seconds() == pytest.approx(30, abs=10)
    assert (message.next_attempt_at - attempts[1].at).total_seconds() == pytest.approx(60, abs=10)
    assert attempts[0].target == f"http://127.0.0.1:{port}/x"


@pytest.mark.req("A11-07", "DI-07")
def test_two_deliverers_at_once_never_send_a_message_twice(receiver: Receiver) -> None:
    """Two deliverers (a worker and a web process's kick, or two workers) race for the same messages:
    on PostgreSQL the claims skip each other's locked rows, on SQLite they take turns."""
    receiver.delay = 0.002  # long enough that both deliverers are sending at the same time
    with erp_at(receiver.url):
        for s in range(30):
            write("erp", f"batch:B-{s:02d}", 8)
        errors: list[BaseException] = []
        delivered: dict[str, int] = {}
        go = threading.Barrier(2)

        def deliverer() -> None:
            try:
                go.wait()
                for _ in range(200):
                    me = threading.current_thread().name
                    delivered[me] = delivered.get(me, 0) + deliver_due(batch=20)
                    if not Message.objects.filter(state=Message.State.PENDING).exists():
                        break
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=deliverer) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    assert not errors, errors
    assert sum(delivered.values()) == 240 and all(delivered.values()), delivered  # both took a share
    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert len(keys) == 240 and len(set(keys)) == 240  # every message once, none twice
    for s in range(30):
        got = [r.json["n"] for r in receiver.requests if r.json["stream"] == f"batch:B-{s:02d}"]
        assert got == list(range(8))
    assert Message.objects.filter(state=Message.State.DELIVERED).count() == 240
    assert Delivery.objects.count() == 240


@pytest.mark.req("A11-07")
def test_the_pause_between_attempts_doubles_up_to_an_hour() -> None:
    assert [pause(n).total_seconds() for n in (1, 2, 3, 4, 8, 20)] == [30, 60, 120, 240, 3600, 3600]


@pytest.mark.req("A11-07")
def test_delivery_works_from_a_thread_that_runs_an_event_loop_already(receiver: Receiver) -> None:
    """An ASGI server's thread, or sync Playwright's in the suite: asyncio.run would refuse there."""
    import asyncio

    async def inside_a_running_loop() -> int:
        return deliver_due()  # called synchronously, as a sync view under an async server would

    delivered: list[int] = []

    def server_thread() -> None:  # a thread of its own: the suite's main thread may run Playwright's loop
        try:
            delivered.append(asyncio.run(inside_a_running_loop()))
        finally:
            connections.close_all()

    with erp_at(receiver.url):
        write("erp", "batch:B-1", 3)
        thread = threading.Thread(target=server_thread)
        thread.start()
        thread.join(timeout=120)
    assert delivered == [3]
    assert [r.json["n"] for r in receiver.taken] == [0, 1, 2]
