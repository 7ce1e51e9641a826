"""Process data into the gateway's store, beside a bare write of the same rows in the same run.

    ./dev bench gateway                                   # SQLite and PostgreSQL, 100,000 readings
    ./dev bench gateway --databases postgresql --readings 20000

For each database, in a fresh bench database (``bench/results/gateway.sqlite3``, PostgreSQL
``$BATCHLINE_BENCH_PG_DB``, default ``batchline_bench``), migrated as an installation is:

1. ``--readings`` readings of 200 tags (one a second per tag, a day's partition on PostgreSQL), as
   the adapters hand them over, turned into rows by ``gateway.store.rows_of``;
2. the baseline, same rows, same run: a bare write into an unpartitioned table of the same columns
   and primary key, in batches of 1,000 — psycopg's ``COPY`` on PostgreSQL, one ``executemany``
   INSERT per batch on SQLite — with nothing else (no staging, no conflict check, no partitions);
3. the gateway's own path, ``gateway.store.rows_store`` in batches of 1,000 (PostgreSQL: ``COPY``
   into a staging table and ``INSERT … ON CONFLICT DO NOTHING`` into the day partition; SQLite:
   ``INSERT OR IGNORE``), as the gateway's writer calls it;
4. the same rows again (a replay after a restart): stored nothing twice, timed too.

Prints both rates, their ratio and the checks. Machines here are shared and noisy: compare the
ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.audit_bench import RESULTS, ROOT, database_url

BATCH = 1000
TAGS = 200


def run_parent(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for kind in args.databases.split(","):
        env = {
            **os.environ,
            "DATABASE_URL": database_url(kind, "gateway.sqlite3"),
            "BATCHLINE_HOME": str(RESULTS / "home"),
        }
        subprocess.run(
            [sys.executable, "-m", "batchline.cli", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT
        )
        out = subprocess.run(
            [sys.executable, "-m", "bench.gateway", "--child", kind, "--readings", str(args.readings)],
            env=env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    (RESULTS / "gateway.json").write_text(json.dumps(results, indent=2))
    print(f"\nGateway process data store ({os.cpu_count()} cores); a bare write of the same rows beside it\n")
    ok = True
    for kind, r in results.items():
        ok &= r["checks"]["ok"]
        print(f"[{kind}]  {r['readings']:,} readings of {TAGS} tags, batches of {BATCH:,}")
        print(f"  {'bare write (' + r['baseline_how'] + ')':40}{r['baseline_per_s']:10,.0f} rows/s")
        print(
            f"  {'gateway store (rows_store)':40}{r['store_per_s']:10,.0f} rows/s"
            f"   = {r['store_per_s'] / r['baseline_per_s']:.0%} of the bare write"
        )
        print(f"  {'the same rows again (a replay)':40}{r['replay_per_s']:10,.0f} rows/s")
        c = r["checks"]
        print(
            f"  checks: stored {c['stored']:,} new, replay stored {c['replayed_new']:,}, "
            f"table holds {c['in_table']:,} -> {'ok' if c['ok'] else 'FAILED'}\n"
        )
    print(f"(figures also in {RESULTS / 'gateway.json'})")
    if not ok:
        sys.exit(1)


def run_child(kind: str, count: int) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchline.settings")
    django.setup()
    from django.db import connection, transaction

    from batchline.gateway import store
    from batchline.gateway.models import StoredReading
    from batchline.gateway.readings import Protocol, Quality, Reading, Source

    start = dt.datetime.now(dt.UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    readings = [
        Reading(
            Source(f"UNIT-{i % TAGS // 10:02d}", Protocol.OPCUA, "opc.tcp://plc:4840", f"ns=2;s=T{i % TAGS}"),
            20.0 + (i % 97) / 10,
            Quality.GOOD,
            start + dt.timedelta(seconds=i // TAGS, milliseconds=i % TAGS),
            start + dt.timedelta(seconds=i // TAGS, milliseconds=i % TAGS + 30),
            unit_of_measure="°C",
        )
        for i in range(count)
    ]
    rows = store.rows_of(readings)
    batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
    now = dt.datetime.now(dt.UTC)
    stamped = [[(*r[: store.STORED_AT], now, *r[store.STORED_AT + 1 :]) for r in b] for b in batches]
    columns = ", ".join(store.COLUMNS)

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_bare")
        if connection.vendor == "postgresql":
            # A plain table (LIKE a partitioned one makes an ordinary one) with the same primary key.
            cursor.execute(f"CREATE TABLE bench_bare (LIKE {store.TABLE} INCLUDING DEFAULTS)")
            cursor.execute("ALTER TABLE bench_bare ADD PRIMARY KEY (key, at)")
        else:
            cursor.execute(f"CREATE TABLE bench_bare AS SELECT * FROM {store.TABLE} WHERE 0")
            cursor.execute("CREATE UNIQUE INDEX bench_bare_key ON bench_bare (key, at)")

    began = time.perf_counter()
    for b in stamped:
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY bench_bare ({columns}) FROM STDIN") as copy:
                    for r in b:
                        copy.write_row(r)
            else:
                marks = ", ".join("%s" for _ in store.COLUMNS)
                cursor.executemany(f"INSERT INTO bench_bare ({columns}) VALUES ({marks})", b)
    baseline = time.perf_counter() - began

    began = time.perf_counter()
    stored = sum(store.rows_store(b) for b in batches)
    timed = time.perf_counter() - began
    began = time.perf_counter()
    replayed = sum(store.rows_store(b) for b in batches)
    replay = time.perf_counter() - began
    in_table = StoredReading.objects.count()
    print(
        json.dumps(
            {
                "readings": count,
                "baseline_how": "psycopg COPY" if connection.vendor == "postgresql" else "executemany INSERT",
                "baseline_per_s": count / baseline,
                "store_per_s": count / timed,
                "replay_per_s": count / replay,
                "checks": {
                    "stored": stored,
                    "replayed_new": replayed,
                    "in_table": in_table,
                    "ok": stored == count and replayed == 0 and in_table == count,
                },
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--child", default="")
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.readings)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
