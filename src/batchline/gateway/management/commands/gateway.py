"""``batchline gateway``: the equipment gateway process, and its storage's upkeep.

- ``batchline gateway`` (or ``gateway run``): read the configuration, run an adapter per endpoint and
  store what they read until SIGTERM/SIGINT (docs/devices.md).
- ``batchline gateway connections``: print the configuration as the gateway would run it.
- ``batchline gateway partitions [--ahead N]``: make the day partitions ahead (PostgreSQL).
- ``batchline gateway retention [--days N] [--summary-days N]``: drop process data older than N days,
  and summaries older than theirs.
- ``batchline gateway downsample [--after-days N] [--seconds S]``: summarise the raw readings of the
  days older than N into buckets of S seconds and remove them (``gateway.downsample``; the worker
  runs it every hour).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "The equipment gateway: run it (default), or show its connections, make partitions, apply retention, "
        "downsample old process data."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        name_help = "this gateway's name (default: the host name)"
        parser.add_argument("--name", default="", help=name_help)
        sub = parser.add_subparsers(dest="action")
        run = sub.add_parser("run", help="run the gateway until stopped (the default)")
        # Either "gateway --name X" or "gateway run --name X"; SUPPRESS keeps the first when only it is given.
        run.add_argument("--name", default=argparse.SUPPRESS, help=name_help)
        sub.add_parser("connections", help="print the configured connections and their tags")
        partitions = sub.add_parser("partitions", help="make the day partitions ahead (PostgreSQL)")
        partitions.add_argument("--ahead", type=int, default=None)
        retention = sub.add_parser("retention", help="remove process data older than the retention")
        retention.add_argument("--days", type=int, default=None)
        retention.add_argument("--summary-days", type=int, default=None, help="summaries older than this")
        downsample = sub.add_parser("downsample", help="summarise old process data and remove its raw rows")
        downsample.add_argument("--after-days", type=int, default=None)
        downsample.add_argument("--seconds", type=int, default=None, help="the buckets' length")

    def handle(self, *args: Any, **options: Any) -> None:
        from batchline.gateway import store

        action = options.get("action") or "run"
        if action == "connections":
            self._connections()
        elif action == "partitions":
            made = store.partitions_ensure(ahead_days=options["ahead"])
            self.stdout.write("\n".join(made) if made else "no partitions: the database is not PostgreSQL")
        elif action == "retention":
            self._retention(options["days"], options["summary_days"])
        elif action == "downsample":
            self._downsample(options["after_days"], options["seconds"])
        else:
            self._run(options.get("name") or socket.gethostname())

    def _retention(self, raw_days: int | None, summary_days: int | None) -> None:
        from batchline.gateway import downsample, store

        try:
            plan = downsample.plan_of(retention_days=raw_days, summary_retention_days=summary_days)
        except downsample.DownsampleSettingsError as exc:
            raise CommandError(str(exc)) from None
        if plan.retention_days <= 0 and plan.summary_retention_days <= 0:
            raise CommandError(
                "Retention is off (BATCHLINE_GATEWAY_RETENTION_DAYS is 0): give --days N to remove older data."
            )
        if plan.retention_days > 0:
            removed = store.retention_apply(days=plan.retention_days)
            self.stdout.write(f"process data older than {plan.retention_days} days removed ({removed})")
        if plan.summary_retention_days > 0:
            removed = downsample.summary_retention_apply(days=plan.summary_retention_days)
            self.stdout.write(
                f"process data summaries older than {plan.summary_retention_days} days removed ({removed})"
            )

    def _downsample(self, after_days: int | None, seconds: int | None) -> None:
        from batchline.gateway import downsample

        try:
            plan = downsample.plan_of(after_days=after_days, seconds=seconds)
        except downsample.DownsampleSettingsError as exc:
            raise CommandError(str(exc)) from None
        if not plan.on:
            raise CommandError(
                "Downsampling is off (BATCHLINE_GATEWAY_DOWNSAMPLE_AFTER_DAYS is 0): give --after-days N "
                "to summarise older data."
            )
        days = downsample.downsample_apply(plan=plan)
        for day in days:
            self.stdout.write(
                f"{day.day.isoformat()}: {day.readings} reading(s) summarised into {day.summaries} "
                f"summary row(s) and removed{f' (partition {day.dropped} dropped)' if day.dropped else ''}"
            )
        self.stdout.write(
            f"process data older than {plan.after_days} days downsampled to {plan.seconds} s buckets: "
            f"{len(days)} day(s), {sum(d.readings for d in days)} reading(s), "
            f"{sum(d.summaries for d in days)} summary row(s)"
        )

    def _connections(self) -> None:
        from batchline.gateway.selectors import connections

        for conn in connections():
            self.stdout.write(f"{conn.protocol} {conn.endpoint}")
            for tag in conn.tags:
                self.stdout.write(
                    f"  {tag.unit} {tag.tag} = {tag.name} [{tag.unit_of_measure or '-'}] "
                    f"every {tag.sampling_ms} ms, deadband {tag.deadband:g}"
                )

    def _run(self, name: str) -> None:
        from batchline.gateway.live import LiveJudging
        from batchline.gateway.runner import Gateway
        from batchline.gateway.selectors import connections

        configuration = connections()
        if not configuration:
            raise CommandError(
                "No gateway endpoint with tags is configured: an engineer configures them first."
            )

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            judge = LiveJudging(configuration)
            gateway = Gateway(configuration, name=name, stored_hook=judge.stored, round_hook=judge.round)
            self.stdout.write(
                f"gateway {name} started: {len(configuration)} connection(s), "
                f"{sum(len(c.tags) for c in configuration)} tag(s), spool {gateway.writer.spool.path}"
            )
            self.stdout.flush()
            await gateway.run(stop)

        asyncio.run(main())
        self.stdout.write(f"gateway {name} stopped")
