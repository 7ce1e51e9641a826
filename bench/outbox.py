"""Outbox throughput to NATS JetStream, beside a bare nats-py publish loop of the same messages.

    ./dev bench outbox                                   # SQLite and PostgreSQL, 10,000 messages
    ./dev bench outbox --databases sqlite --messages 2000 --streams 200

For each database, in a fresh bench database (``bench/results/outbox.sqlite3``, PostgreSQL
``$BATCHLINE_BENCH_OUTBOX_PG_DB``, default ``batchline_bench_outbox``) and a NATS server at
``$BATCHLINE_BENCH_NATS_URL`` (default nats://127.0.0.1:4222):

1. ``--messages`` messages are enqueued through ``outbox.services.enqueue``, one transaction each
   as the changes that write them would, spread over ``--streams`` streams (a batch's or a
   deviation's events), each body a ~600-byte JSON document; on PostgreSQL the table is then
   analysed, as autovacuum does within a minute of such a burst;
2. the outbox delivers them (``outbox.delivery.deliver_due``, the worker's call) to the ``erp``
   destination, a JetStream stream the outbox creates, with its duplicate window: claimed in
   batches, published with acknowledgement, recorded;
3. the baseline, same messages, same run, same server: a bare nats-py loop that publishes each
   message with its ``Nats-Msg-Id`` and awaits JetStream's acknowledgement before the next, to a
   stream of the same configuration; run before and after the outbox, the faster of the two counts.
   For reference, the same messages pipelined (``publish_async``) are timed too;
4. both streams are read back: each holds every message once (count and ids), and each outbox
   stream's messages are in the order they were written.

Machines here are shared and noisy: compare the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from typing import Any

from bench.audit_bench import PG_ADMIN_URL, RESULTS, ROOT

NATS_URL = os.environ.get("BATCHLINE_BENCH_NATS_URL", "nats://127.0.0.1:4222")
PG_DB = os.environ.get("BATCHLINE_BENCH_OUTBOX_PG_DB", "batchline_bench_outbox")
DUPLICATE_WINDOW = 600.0
TARGET = 0.50


# --- the parent ---------------------------------------------------------------------------


def fresh_database(kind: str) -> str:
    if kind == "sqlite":
        path = RESULTS / "outbox.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB}")
        conn.execute(f"CREATE DATABASE {PG_DB}")
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DB}"


def run_parent(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for kind in args.databases.split(","):
        tag = uuid.uuid4().hex[:10]
        subject, stream = f"bench.outbox.{tag}", f"BENCH_OUTBOX_{tag.upper()}"
        env = {
            **os.environ,
            "DATABASE_URL": fresh_database(kind),
            "BATCHLINE_HOME": str(RESULTS / "home"),
            "BATCHLINE_OUTBOX_ERP": f"{NATS_URL}?subject={subject}&stream={stream}&duplicate_window={DUPLICATE_WINDOW:g}",
            "BATCHLINE_OUTBOX_DELIVER_ON_COMMIT": "off",  # the deliverer is timed on its own
        }
        subprocess.run(
            [sys.executable, "-m", "batchline.cli", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT
        )
        child = [
            sys.executable,
            "-m",
            "bench.outbox",
            "--child",
            kind,
            "--subject",
            subject,
            "--stream",
            stream,
        ]
        child += ["--messages", str(args.messages), "--streams", str(args.streams)]
        out = subprocess.run(child, env=env, check=True, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    (RESULTS / "outbox.json").write_text(json.dumps(results, indent=2))
    report(results)


def report(results: dict[str, Any]) -> None:
    print(
        f"\nOutbox to NATS JetStream ({os.cpu_count()} cores); the bare nats-py loop of the same run beside\n"
    )
    ok = True
    for kind, r in results.items():
        ratio = r["outbox_per_s"] / r["baseline_per_s"]
        ok &= ratio >= TARGET and r["checks"]["ok"]
        print(
            f"[{kind}]  {r['messages']:,} messages in {r['streams']:,} streams, bodies {r['body_bytes']} bytes"
        )
        print(f"  enqueue, one transaction each                  {r['enqueue_per_s']:9,.0f} messages/s")
        print(
            f"  bare nats-py loop, publish and await the ack   {r['baseline_per_s']:9,.0f} messages/s"
            f"   (runs: {', '.join(f'{x:,.0f}' for x in r['baseline_runs'])})"
        )
        print(
            f"  outbox: claim, publish, record                 {r['outbox_per_s']:9,.0f} messages/s"
            f"   = {ratio:.0%} of the loop (target >= {TARGET:.0%})"
        )
        print(
            f"  for reference: nats-py pipelined publish_async {r['pipelined_per_s']:9,.0f} messages/s"
            f"   (the outbox = {r['outbox_per_s'] / r['pipelined_per_s']:.0%} of it)"
        )
        c = r["checks"]
        print(
            f"  read back: outbox stream {c['outbox_held']:,} messages, {c['outbox_ids']:,} distinct ids, "
            f"{c['missing']} missing, {c['duplicated']} duplicated, {c['out_of_order']} streams out of order; "
            f"baseline stream {c['baseline_held']:,}; database {c['delivered']:,} delivered, "
            f"{c['attempts']:,} attempts -> {'ok' if c['ok'] else 'FAILED'}\n"
        )
    print(f"(figures also in {RESULTS / 'outbox.json'})")
    if not ok:
        sys.exit(1)


# --- the child ----------------------------------------------------------------------------


def body_of(i: int, stream: str) -> dict[str, Any]:
    """A consumption report the size an ERP gets: ~600 bytes of JSON."""
    return {
        "format": "batchline.bench/1",
        "stream": stream,
        "n": i,
        "event": "material.consumed",
        "batch": stream.split(":", 1)[1],
        "material": {"code": "PCM-API", "name": "Paracetamol, micronised", "lot": f"L-{i % 977:05d}"},
        "quantity": {"value": f"{(i % 9000) / 7:.3f}", "unit": "kg"},
        "container": f"C-{i:07d}",
        "step": {"key": "dispense_api", "title": "Dispense the active ingredient"},
        "operator": "Olga Operator",
        "verified_by": "Sam Supervisor",
        "at": "2026-12-07T10:15:00.000000+00:00",
        "note": "x" * 160,
    }


def enqueue_all(args: argparse.Namespace) -> tuple[list[tuple[str, str, int]], float, int]:
    from django.db import transaction

    from batchline.outbox.services import enqueue

    written: list[tuple[str, str, int]] = []  # (key, stream, n)
    started = time.perf_counter()
    size = 0
    for i in range(args.messages):
        stream = f"batch:PCM-{i % args.streams:05d}"
        body = body_of(i, stream)
        with transaction.atomic():
            message = enqueue("erp", stream=stream, kind="material.consumed", body=body)
        assert message is not None
        written.append((message.key, stream, i))
        size = len(message.body)
    return written, time.perf_counter() - started, size


def messages_for_baseline() -> list[tuple[str, bytes]]:
    from batchline.outbox.models import Message

    return [(key, body.encode()) for key, body in Message.objects.order_by("id").values_list("key", "body")]


async def bare_loop(
    subject: str, stream: str, messages: list[tuple[str, bytes]], *, pipelined: bool
) -> float:
    """The baseline: the same messages straight to JetStream with nats-py, each acknowledged."""
    import nats

    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    await js.add_stream(name=stream, subjects=[subject], duplicate_window=DUPLICATE_WINDOW)
    try:
        started = time.perf_counter()
        if pipelined:
            futures = [
                await js.publish_async(subject, body, headers={"Nats-Msg-Id": key}) for key, body in messages
            ]
            await asyncio.gather(*futures)
        else:
            for key, body in messages:
                await js.publish(subject, body, headers={"Nats-Msg-Id": key})
        return time.perf_counter() - started
    finally:
        await nc.close()


async def read_back(stream: str) -> list[tuple[str, str]]:
    """(Nats-Msg-Id, Batchline-Stream) of every message the stream holds, in the stream's order."""
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        held = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else []:
            raw = await js.get_msg(stream, seq)
            headers = raw.headers or {}
            held.append((headers.get("Nats-Msg-Id", ""), headers.get("Batchline-Stream", "")))
        return held
    finally:
        await nc.close()


async def delete_streams(*names: str) -> None:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        for name in names:
            with contextlib.suppress(Exception):  # already gone
                await nc.jetstream().delete_stream(name)
    finally:
        await nc.close()


def run_child(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchline.settings")
    import django

    django.setup()
    from batchline.outbox.delivery import deliver_due
    from batchline.outbox.models import Delivery, Message

    written, enqueue_s, size = enqueue_all(args)
    from django.db import connection

    if connection.vendor == "postgresql":
        # Statistics as autovacuum keeps them within a minute of such a burst: without them the
        # planner takes the 10,000 fresh rows for one and plans the claim for that.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE outbox_message")
    messages = messages_for_baseline()
    baselines = [f"{args.stream}_LOOP1", f"{args.stream}_LOOP2", f"{args.stream}_PIPE"]
    subjects = [f"{args.subject}.loop1", f"{args.subject}.loop2", f"{args.subject}.pipe"]
    try:
        loop_s = [asyncio.run(bare_loop(subjects[0], baselines[0], messages, pipelined=False))]

        started = time.perf_counter()
        rounds = 0
        while Message.objects.filter(state=Message.State.PENDING).exists() and rounds < 100:
            deliver_due()
            rounds += 1
        outbox_s = time.perf_counter() - started

        loop_s.append(asyncio.run(bare_loop(subjects[1], baselines[1], messages, pipelined=False)))
        pipe_s = asyncio.run(bare_loop(subjects[2], baselines[2], messages, pipelined=True))

        held = asyncio.run(read_back(args.stream))
        baseline_held = asyncio.run(read_back(baselines[0]))
    finally:
        asyncio.run(delete_streams(args.stream, *baselines))

    keys = [key for key, _ in held]
    expected = {key for key, _, _ in written}
    order_of = {key: n for key, _, n in written}
    by_stream: dict[str, list[int]] = defaultdict(list)
    for key, stream in held:
        by_stream[stream].append(order_of.get(key, -1))
    checks = {
        "outbox_held": len(held),
        "outbox_ids": len(set(keys)),
        "missing": len(expected - set(keys)),
        "duplicated": len(keys) - len(set(keys)),
        "out_of_order": sum(1 for ns in by_stream.values() if ns != sorted(ns)),
        "baseline_held": len(baseline_held),
        "delivered": Message.objects.filter(state=Message.State.DELIVERED).count(),
        "attempts": Delivery.objects.count(),
    }
    checks["ok"] = (
        checks["outbox_held"]
        == checks["outbox_ids"]
        == len(written)
        == checks["delivered"]
        == checks["attempts"]
        and checks["missing"] == checks["duplicated"] == checks["out_of_order"] == 0
        and checks["baseline_held"] == len(written)
        and set(keys) == expected
    )
    n = len(written)
    print(
        json.dumps(
            {
                "messages": n,
                "streams": args.streams,
                "body_bytes": size,
                "enqueue_per_s": n / enqueue_s,
                "baseline_runs": [n / s for s in loop_s],
                "baseline_per_s": n / min(loop_s),
                "outbox_per_s": n / outbox_s,
                "outbox_rounds": rounds,
                "pipelined_per_s": n / pipe_s,
                "checks": checks,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--streams", type=int, default=1_000, help="batches (or deviations) the messages belong to"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--subject", help=argparse.SUPPRESS)
    parser.add_argument("--stream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    run_child(args) if args.child else run_parent(args)


if __name__ == "__main__":
    main()
