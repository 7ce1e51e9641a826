"""The equipment gateway (issue 15), each path beside a bare baseline in the same run.

    ./dev bench gateway                                   # everything, about three minutes
    ./dev bench gateway --quick                           # smaller counts, about two minutes
    ./dev bench gateway --parts store --databases postgresql --readings 20000

Five parts (``--parts``, default all):

- ``store``: the process-data store's write rate beside bare COPY (below);
- ``opcua``: OPC UA data changes from subscription to committed row (``bench/gateway_live.py``):
  an asyncua server of ``--tags`` variables in a process of its own writes ``--rate`` changes a
  second for ``--seconds``; first a bare asyncua client with the same subscriptions only counts
  them, then the gateway (``OpcUaAdapter`` → queue → ``Writer`` → ``rows_store`` on PostgreSQL)
  stores them; changes/s, p99 of source timestamp to receipt / to commit, the process's CPU, and
  every change checked stored once by value;
- ``sparkplug``: ``--messages`` Sparkplug DDATA (5 metrics each) from an edge node process through
  a private Mosquitto: a bare aiomqtt subscriber that only decodes them, then the gateway's
  Sparkplug host storing them; messages/s of each and every value checked stored once;
- ``restarts``: Sparkplug (paced, QoS 1) and OPC UA into one gateway writing to a private
  PostgreSQL cluster, while the bench stops and starts its private Mosquitto, then the cluster;
  rows counted against what the peers sent: lost and duplicated;
- ``breach``: a limit breach at the plant simulator's OPC UA server through the gateway, wired as
  ``batchline gateway`` wires it, to the exception on a running step's batch (``bench/gateway_breach.py``):
  ``--breaches`` breaches, p50/p95/max from the value's source timestamp to the exception's ``at``
  and to its being visible to another connection, against the issue's 2 s; and the same breach
  after the step completed, stored and raising nothing. On ``--breach-databases`` (PostgreSQL by
  default, ``sqlite,postgresql`` for both), each freshly made; 75–90 s a database.

The live parts run on PostgreSQL only (``$BATCHLINE_BENCH_PG_DB``, the restart part on a cluster of
its own); ``--databases`` chooses the store part's databases.

For each database, in the store part, in a fresh bench database (``bench/results/gateway.sqlite3``, PostgreSQL
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
PARTS = ("store", "opcua", "sparkplug", "restarts", "breach")


def run_parent(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    parts = args.parts.split(",")
    unknown = set(parts) - set(PARTS)
    if unknown:
        sys.exit(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    if args.quick:
        args.readings, args.seconds, args.messages, args.restart_seconds = 20_000, 4.0, 5_000, 12.0
        args.breaches, args.outside = 10, 3
    results: dict[str, Any] = {}
    ok = True
    if "store" in parts:
        results["store"] = run_store(args)
        ok &= all(r["checks"]["ok"] for r in results["store"].values())
    live = [p for p in parts if p not in ("store", "breach")]
    if live:
        results.update(run_live(args, live))
        ok &= print_live(results)
    if "breach" in parts:
        results["breach"] = run_breach(args)
        ok &= print_breach(results["breach"])
    (RESULTS / "gateway.json").write_text(json.dumps(results, indent=2))
    print(f"(figures also in {RESULTS / 'gateway.json'})")
    if not ok:
        sys.exit(1)


def run_live(args: argparse.Namespace, parts: list[str]) -> dict[str, Any]:
    env = {**os.environ, "BATCHLINE_HOME": str(RESULTS / "home")}
    if set(parts) - {"restarts"}:
        env["DATABASE_URL"] = database_url("postgresql")
        subprocess.run(
            [sys.executable, "-m", "batchline.cli", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT
        )
    options = {
        "opcua": ["--tags", str(args.tags), "--rate", str(args.rate), "--seconds", str(args.seconds)],
        "sparkplug": ["--messages", str(args.messages)],
        "restarts": ["--seconds", str(args.restart_seconds), "--rate", "300"],
    }
    out = {}
    for part in parts:
        print(f"[{part}] running …", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "bench.gateway_live", part, *options[part]],
            env=env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # asyncua and the adapters log every reconnection
            text=True,
        )
        out[part] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def _p99(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"


def print_live(results: dict[str, Any]) -> bool:
    ok = True
    if "opcua" in results:
        r = results["opcua"]
        print(
            f"\n[opcua]  {r['tags']:,} variables, asked {r['rate']:,.0f} changes/s for {r['seconds']:g} s "
            "(the server's own rate below; it shares the 2 cores)"
        )
        for name, label in (
            ("bare", "bare asyncua client (counts)"),
            ("gateway", "gateway (stored, committed)"),
        ):
            f = r[name]
            print(
                f"  {label:34}{f['per_s']:8,.0f} changes/s  p99 {_p99(f['p99_s']):>9}  "
                f"server wrote {f['written_per_s']:,.0f}/s  lost {f['lost']:,}  "
                f"{f['per_cpu_s']:,.0f} changes per CPU-second"
            )
        g = r["gateway"]
        ok &= g["lost"] == 0 and g["duplicated"] == 0
        print(
            f"  gateway = {g['per_s'] / r['bare']['per_s']:.0%} of the bare client; duplicated {g['duplicated']}"
        )
    if "sparkplug" in results:
        r = results["sparkplug"]
        b, g = r["bare"], r["gateway"]
        print(f"\n[sparkplug]  {r['messages']:,} DDATA of {r['metrics']} metrics over {r['devices']} devices")
        print(f"  {'bare aiomqtt subscriber (decodes)':38}{b['per_s']:8,.0f} messages/s")
        print(
            f"  {'gateway Sparkplug host (stored)':38}{g['per_s']:8,.0f} messages/s ({g['rows_per_s']:,.0f} rows/s)"
            f"   = {g['per_s'] / b['per_s']:.0%} of the bare subscriber; lost {g['lost']}, duplicated {g['duplicated']}"
        )
        ok &= g["lost"] == 0 and g["duplicated"] == 0
    if "restarts" in results:
        r = results["restarts"]
        print("\n[restarts]  " + "; ".join(r["events"]))
        for name in ("sparkplug", "opcua"):
            f = r[name]
            print(
                f"  {name:10} sent {f['values_sent']:,} values, stored {f['rows']:,} rows: "
                f"lost {f['lost']}, duplicated {f['duplicated']}"
            )
            ok &= f["lost"] == 0 and f["duplicated"] == 0
        print(
            f"  (the gateway spooled up to {r['spooled_during_database_stop']:,} readings while the database was down)"
        )
    print()
    return ok


def run_breach(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for kind in args.breach_databases.split(","):
        anchor = RESULTS / f"anchor-breach-{kind}.jsonl"  # the database is new, so is its anchor
        anchor.unlink(missing_ok=True)
        env = {
            **os.environ,
            "DATABASE_URL": database_url(kind, "gateway_breach.sqlite3"),
            "BATCHLINE_HOME": str(RESULTS / "home"),
            "BATCHLINE_ANCHOR_PATH": str(anchor),
        }
        subprocess.run(
            [sys.executable, "-m", "batchline.cli", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT
        )
        print(f"[breach] running on {kind} …", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "bench.gateway_breach", "run", "--breaches", str(args.breaches),
             "--outside", str(args.outside)],
            env=env, check=True, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"


def print_breach(results: dict[str, Any]) -> bool:
    ok = True
    for kind, r in results.items():
        run, out, after = r["running"], r["outside"], r["just_after_completion"]
        print(
            f"\n[breach, {kind}]  plant simulator (OPC UA, sampling {r['sampling_ms'][0]} ms) -> gateway -> "
            f"exception on the batch; status round {r['status_seconds']:g} s, load {os.getloadavg()[0]:.1f}"
        )
        for name, label in (
            ("to_exception_at", "to the exception's at"),
            ("to_visible", "to visible (polled)"),
        ):
            q = run[name]
            print(f"  {label:26} p50 {_ms(q['p50']):>7}  p95 {_ms(q['p95']):>7}  max {_ms(q['max']):>7}")
        print(
            f"  running step: {run['breaches']} breaches, {run['exceptions']} exceptions, "
            f"{run['under_2_s']} visible in under 2 s (target: all)"
        )
        print(
            f"  no running step: {out['breaches']} breaches, {out['stored']} stored, "
            f"{out['exceptions']} exceptions, {out['alarms']} alarms (target: 0); "
            f"at once after the completion: {after['exceptions']} exceptions"
        )
        print(
            "  a started step judged after "
            + ", ".join(f"{s:.1f} s" for s in r["watched_after_start_s"])
            + f" (its first value judged); a completed one let go after {r['released_after_completion_s']:.1f} s"
        )
        ok &= (
            run["exceptions"] == run["breaches"] == run["under_2_s"]
            and out["stored"] == out["breaches"]
            and out["exceptions"] == out["alarms"] == after["exceptions"] == 0
        )
    print()
    return ok


def run_store(args: argparse.Namespace) -> dict[str, Any]:
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
    print(f"\nGateway process data store ({os.cpu_count()} cores); a bare write of the same rows beside it\n")
    for kind, r in results.items():
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
    return results


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
    parser.add_argument("--parts", default=",".join(PARTS), help="any of " + ",".join(PARTS))
    parser.add_argument("--quick", action="store_true", help="smaller counts and shorter runs")
    parser.add_argument("--tags", type=int, default=1000, help="OPC UA variables")
    parser.add_argument(
        "--rate", type=float, default=6000, help="OPC UA changes a second asked of the server"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="OPC UA run")
    parser.add_argument("--messages", type=int, default=20_000, help="Sparkplug DDATA messages")
    parser.add_argument("--restart-seconds", type=float, default=16.0)
    parser.add_argument("--breaches", type=int, default=20, help="limit breaches during a running step")
    parser.add_argument("--outside", type=int, default=5, help="limit breaches with no step running")
    parser.add_argument("--breach-databases", default="postgresql")
    parser.add_argument("--child", default="")
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.readings)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
