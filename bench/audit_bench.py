"""Audit trail benchmark: audited writes and ``audit verify``, each beside a raw baseline from the same run.

    ./dev bench                       # SQLite and PostgreSQL, 1,000,000 entries
    ./dev bench --databases sqlite --entries 200000 --seconds 2

For each database, in a fresh bench database (never the one you work in):

1. raw two-INSERT transactions through the bare driver (sqlite3 / psycopg): one
   row into the record table and one into the audit table, committed;
2. audited writes through the service layer: ``record_create`` of a record and
   its chained audit entry, one transaction each, one writer;
3. on PostgreSQL, the same with 8 writer processes at once (the parallel chains,
   ``audit/chain.py``), between two signed checkpoints, then a check of every chain;
4. the trail is filled to ``--entries`` entries (a consistent history of record
   updates, chained with the production hash function), then timed:
   ``audit verify`` (chain and replay), its chain-only mode, and a raw loop that
   fetches the same rows through the bare driver and hashes them with sha256;
   and the signing of a checkpoint over the whole trail.

Machines here are shared and noisy: compare the ratios, not the absolutes.

The PostgreSQL bench database is ``batchline_bench``; ``BATCHLINE_BENCH_PG_DB`` names
another, so that two people's runs on one server do not drop each other's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PG_ADMIN_URL = os.environ.get("BATCHLINE_BENCH_POSTGRES_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/test")
# Overridable so that two benches (or two worktrees) can run at once.
PG_BENCH_DB = os.environ.get("BATCHLINE_BENCH_PG_DB", "batchline_bench")


# --- the parent: prepares each database and runs one child per database -----------------


def database_url(kind: str, sqlite_name: str = "bench.sqlite3") -> str:
    if kind == "sqlite":
        path = RESULTS / sqlite_name
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB}")
        conn.execute(f"CREATE DATABASE {PG_BENCH_DB}")
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_BENCH_DB}"


def run_parent(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for kind in args.databases.split(","):
        url = database_url(kind)
        anchor = RESULTS / f"anchor-{kind}.jsonl"  # the bench database is new, so is its anchor
        anchor.unlink(missing_ok=True)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "BATCHLINE_HOME": str(RESULTS / "home"),
            "BATCHLINE_ANCHOR_PATH": str(anchor),
        }
        subprocess.run(
            [sys.executable, "-m", "batchline.cli", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT
        )
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.audit_bench",
                "--child",
                kind,
                "--entries",
                str(args.entries),
                "--seconds",
                str(args.seconds),
                "--writers",
                str(args.writers),
            ],
            env=env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    (RESULTS / "audit.json").write_text(json.dumps(results, indent=2))
    report(results)


def report(results: dict[str, Any]) -> None:
    print(
        f"\nAudit trail benchmark ({os.cpu_count()} cores); ratios are against the raw baseline of the same run\n"
    )
    for kind, r in results.items():
        w = r["writes"]
        print(f"[{kind}]")
        print(f"  raw two-INSERT transactions      {w['raw_per_s']:>10,.0f} /s")
        print(
            f"  ORM write, no audit entry        {w['orm_no_audit_per_s']:>10,.0f} /s   "
            f"{w['orm_no_audit_per_s'] / w['raw_per_s']:6.0%} of raw   (reference: Django's share of the gap)"
        )
        print(
            f"  audited writes (service layer)   {w['service_per_s']:>10,.0f} /s   {w['service_per_s'] / w['raw_per_s']:6.0%} of raw"
            f"   p50 {w['service_p50_ms']:.2f} ms  p95 {w['service_p95_ms']:.2f} ms"
        )
        if "concurrent" in r:
            c = r["concurrent"]
            print(
                f"  raw two-INSERT, {c['writers']} clients          {c['raw_per_s']:>10,.0f} /s   "
                f"{c['raw_per_s'] / w['raw_per_s']:6.2f}x one client (what the database itself scales to here)"
            )
            print(
                f"  audited writes, {c['writers']} writers          {c['per_s']:>10,.0f} /s   "
                f"{c['per_s'] / w['service_per_s']:6.2f}x one writer (target >= 3x), "
                f"{c['per_s'] / c['raw_per_s']:4.0%} of raw at {c['writers']}, on {c['chains_used']} chains; "
                f"chains and checkpoints intact: {c['chain_intact']} {' '.join(c['findings'])}"
            )
            print(
                f"    the same, all on chain 0        {c['one_chain_per_s']:>10,.0f} /s   "
                f"{c['one_chain_per_s'] / w['service_per_s']:6.2f}x one writer (one lock, as before the chains)"
            )
        v = r["verify"]
        print(
            f"  raw fetch + sha256               {v['raw_per_s']:>10,.0f} entries/s over {v['entries']:,} entries"
        )
        print(
            f"  audit verify (chain + replay)    {v['full_per_s']:>10,.0f} entries/s   {v['full_per_s'] / v['raw_per_s']:6.0%} of raw"
        )
        print(
            f"  audit verify --chain-only        {v['chain_per_s']:>10,.0f} entries/s   {v['chain_per_s'] / v['raw_per_s']:6.0%} of raw"
            f"   (target >= 50 %; checks {v['checkpoints']} signed checkpoints and the anchor too)"
        )
        print(
            f"  checkpoint (sign + anchor)       {v['checkpoint_ms']:>10,.1f} ms over {v['entries']:,} entries"
        )
        print()
    print(f"(figures also in {RESULTS / 'audit.json'})")


# --- the child: Django set up on one bench database --------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def raw_connection(kind: str) -> Any:
    from django.conf import settings

    db = settings.DATABASES["default"]
    if kind == "sqlite":
        conn = sqlite3.connect(db["NAME"], isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn
    import psycopg

    return psycopg.connect(os.environ["DATABASE_URL"])


def raw_tables(kind: str, conn: Any, copies: dict[str, str] | None = None) -> None:
    """Copies of the record and audit tables (same columns and indexes) for the raw loop.

    Same database, same disk, same index maintenance; but the real trail stays a
    valid chain for the phases that follow.
    """
    copies = copies or {"equipment_site": "bench_raw_site", "audit_auditentry": "bench_raw_audit"}
    if kind == "sqlite":
        for original, copy in copies.items():
            conn.execute(f"DROP TABLE IF EXISTS {copy}")
            ddl = conn.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('table', 'index') AND sql IS NOT NULL "
                "ORDER BY type DESC",
                (original,),
            ).fetchall()
            for (statement,) in ddl:
                renamed = re.sub(
                    r'INDEX "?(\w+)"?', lambda m, c=copy: f'INDEX "{c}__{m.group(1)}"', statement, count=1
                )
                conn.execute(renamed.replace(original, copy))
    else:
        with conn.cursor() as cur:
            for original, copy in copies.items():
                cur.execute(f"DROP TABLE IF EXISTS {copy}")
                cur.execute(f"CREATE TABLE {copy} (LIKE {original} INCLUDING ALL)")
        conn.commit()


def raw_writes(kind: str, seconds: float, *, tag: str = "raw", fresh: bool = True) -> float:
    """The floor: two INSERTs per committed transaction through the bare driver.

    ``fresh`` makes new copies of the tables first; concurrent clients share
    copies made once, each writing its own codes (``tag``).
    """
    conn = raw_connection(kind)
    if fresh:
        raw_tables(kind, conn)
    ph = "?" if kind == "sqlite" else "%s"
    site_sql = f"INSERT INTO bench_raw_site (code, name, time_zone, address) VALUES ({ph}, {ph}, 'UTC', '')"
    audit_sql = (
        "INSERT INTO bench_raw_audit (at, actor_id, actor_username, actor_name, action, record_type, record_id, "
        f"changes, reason, via, chain, seq, prev_hash, hash) VALUES ({', '.join([ph] * 14)})"
    )
    n, start = 0, time.perf_counter()
    stamp = "2026-01-01 00:00:00.000000"
    prev = "0" * 64
    while time.perf_counter() - start < seconds:
        code = f"{tag}{n}"
        digest = hashlib.sha256(f"{prev}{n}".encode()).hexdigest()
        if kind == "sqlite":
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute(site_sql, (code, "Raw site"))
            conn.execute(
                audit_sql,
                (
                    stamp,
                    1,
                    "bench",
                    "Bench",
                    "create",
                    "equipment.site",
                    cur.lastrowid,
                    '{"name":[null,"Raw site"]}',
                    "",
                    "cli",
                    0,
                    cur.lastrowid,  # unique, like a chain position
                    prev,
                    digest,
                ),
            )
            conn.execute("COMMIT")
        else:
            with conn.cursor() as cur:
                cur.execute(site_sql + " RETURNING id", (code, "Raw site"))
                rid = cur.fetchone()[0]
                cur.execute(
                    audit_sql,
                    (
                        stamp,
                        1,
                        "bench",
                        "Bench",
                        "create",
                        "equipment.site",
                        rid,
                        '{"name":[null,"Raw site"]}',
                        "",
                        "cli",
                        0,
                        rid,  # unique, like a chain position
                        prev,
                        digest,
                    ),
                )
            conn.commit()
        prev = digest
        n += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def orm_writes(seconds: float) -> float:
    """Reference: the same record written through the ORM in a transaction, without its audit entry.

    Shows how much of the gap to the raw loop is Django's and how much the audit trail's.
    """
    from django.db import transaction

    from batchline.audit.services import _save
    from batchline.equipment.models import Site

    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        with transaction.atomic():
            _save(Site(code=f"orm{n}", name="ORM site"), force_insert=True)
        n += 1
    rate = n / (time.perf_counter() - start)
    from django.db import connection

    with connection.cursor() as cursor:  # they have no trail on purpose; audit verify must not meet them
        cursor.execute("DELETE FROM equipment_site WHERE code LIKE %s", ["orm%"])
    return rate


def service_writes(seconds: float, prefix: str, *, one_chain: bool = False) -> tuple[int, float, list[float]]:
    from django.db import connection, transaction

    from batchline.audit.services import Actor, record_create
    from batchline.equipment.models import Site

    actor = Actor(id=1, username="bench", name="Bench Writer", via="cli")
    if one_chain:  # every transaction of this session on chain 0: the single lock there was before
        with connection.cursor() as cursor:
            cursor.execute("SET batchline.audit_chain = '0'")
    latencies: list[float] = []
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        with transaction.atomic():
            record_create(Site(code=f"{prefix}{n}", name="Bench site"), actor=actor)
        latencies.append(time.perf_counter() - t0)
        n += 1
    return n, time.perf_counter() - start, latencies


def in_processes(work: Callable[[int], Any], clients: int) -> tuple[list[Any], float]:
    """``work(i)`` for i in 0..clients-1, each in a forked process with its own database
    connection, all at once: their results and the wall time from the first start to the last."""
    from django.db import connections

    connections.close_all()  # a fresh connection per process, none shared across the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()

    def client(i: int) -> None:
        connections.close_all()
        queue.put(work(i))

    procs = [ctx.Process(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return results, time.perf_counter() - start


def concurrent_writes(writers: int, seconds: float) -> dict[str, Any]:
    """``writers`` processes at once, each its own transactions, then a checkpoint and a full check.

    "Intact" means every chain gapless and linked, the checkpoint taken before the
    run still passed through, the one after it signed over every entry.
    """
    from batchline.audit.checkpoints import checkpoint_create
    from batchline.audit.verify import verify

    # The database's own scaling on this machine, like for like: raw two-INSERT transactions at N clients.
    conn = raw_connection("postgresql")
    raw_tables("postgresql", conn)
    conn.close()
    raw_counts, raw_wall = in_processes(
        lambda i: raw_writes("postgresql", seconds, tag=f"raw{i}-", fresh=False) * seconds, writers
    )
    checkpoint_create()
    counts, elapsed = in_processes(lambda i: service_writes(seconds, prefix=f"w{i}-")[0], writers)
    total = sum(counts)
    after = checkpoint_create().checkpoint
    one_counts, one_elapsed = in_processes(
        lambda i: service_writes(seconds, prefix=f"o{i}-", one_chain=True)[0], writers
    )
    report = verify(replay=False)
    used = sum(1 for head in report.heads.values() if head.seq > 0)
    return {
        "writers": writers,
        "per_s": total / elapsed,
        "raw_per_s": sum(raw_counts) / raw_wall,
        "one_chain_per_s": sum(one_counts) / one_elapsed,
        "writes": total,
        "chains_used": used,
        "chain_intact": report.ok and after.entries + sum(one_counts) == report.entries,
        "findings": [str(f) for f in report.findings[:3]],
    }


def fill_trail(kind: str, target: int) -> int:
    """Append a consistent history of site renames until the trail holds ``target`` entries.

    The entries continue the real chain (the production hash function) and the
    live names are set to where the history ends, so ``audit verify`` must pass.
    """
    import datetime as dt

    from batchline.audit.models import AuditEntry
    from batchline.equipment.models import Site
    from batchline.rules import canonical, hashchain

    existing = AuditEntry.objects.count()
    missing = max(0, target - existing)
    if missing == 0:
        return existing
    last = AuditEntry.objects.order_by("-id").first()
    next_id = last.pk + 1 if last else 1
    # Continue chain 0 from its head (the writers before may have used several chains).
    head = AuditEntry.objects.filter(chain=0).order_by("-seq").values_list("seq", "hash").first()
    seq, prev = head if head else (0, hashchain.GENESIS)
    names = dict(Site.objects.order_by("pk").values_list("pk", "name")[:1000])
    sites = list(names)
    at = dt.datetime.now(dt.UTC)
    rows: list[tuple[Any, ...]] = []
    for k in range(missing):
        pk = sites[k % len(sites)]
        new = f"Site {k}"
        changes = canonical.dumps({"name": [names[pk], new]})
        names[pk] = new
        stamp = at + dt.timedelta(microseconds=k)
        fields = (
            str(canonical.normalise(stamp)),
            1,
            "bench",
            "Bench Writer",
            "update",
            "equipment.site",
            str(pk),
            changes,
            "",
            "cli",
        )
        digest = hashchain.entry_hash(prev, fields)
        db_stamp = stamp.strftime("%Y-%m-%d %H:%M:%S.%f") if kind == "sqlite" else stamp
        rows.append((next_id + k, db_stamp, *fields[1:], 0, seq + k + 1, prev, digest))
        prev = digest
    conn = raw_connection(kind)
    columns = (
        "id, at, actor_id, actor_username, actor_name, action, record_type, record_id, "
        "changes, reason, via, chain, seq, prev_hash, hash"
    )
    renames = [(n, pk) for pk, n in names.items()]
    if kind == "sqlite":
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT INTO audit_auditentry ({columns}) VALUES ({', '.join(['?'] * 15)})", rows)
        conn.executemany("UPDATE equipment_site SET name = ? WHERE id = ?", renames)
        conn.execute("COMMIT")
    else:
        with conn.cursor() as cur, cur.copy(f"COPY audit_auditentry ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        with conn.cursor() as cur:
            cur.executemany("UPDATE equipment_site SET name = %s WHERE id = %s", renames)
            cur.execute(
                "SELECT setval(pg_get_serial_sequence('audit_auditentry', 'id'), %s)", [next_id + missing]
            )
            cur.execute("UPDATE audit_auditchain SET seq = %s, hash = %s WHERE id = 0", [seq + missing, prev])
        conn.commit()
    conn.close()
    return existing + missing


def raw_fetch_and_hash(kind: str) -> tuple[int, float]:
    """The floor for verification: fetch every entry through the bare driver and sha256 it."""
    conn = raw_connection(kind)
    at = "CAST(at AS TEXT)" if kind == "sqlite" else "at::text"  # text, as audit verify reads it
    sql = (
        f"SELECT id, {at}, actor_id, actor_username, actor_name, action, record_type, record_id, "
        "changes, reason, via, chain, seq, prev_hash, hash FROM audit_auditentry ORDER BY id"
    )
    n, start = 0, time.perf_counter()
    sha = hashlib.sha256
    if kind == "sqlite":
        cur = conn.execute(sql)
    else:
        cur = conn.cursor(name="raw_fetch")  # server-side, as audit verify uses
        cur.itersize = 5000
        cur.execute(sql)
    while batch := cur.fetchmany(5000):
        for row in batch:
            sha("\x1f".join(map(str, row)).encode()).hexdigest()
            n += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return n, elapsed


def run_child(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchline.settings")
    import django

    django.setup()
    from batchline.audit.verify import verify

    kind = args.child
    raw = raw_writes(kind, args.seconds)
    orm = orm_writes(args.seconds)
    n, elapsed, latencies = service_writes(args.seconds, prefix="s")
    result: dict[str, Any] = {
        "writes": {
            "raw_per_s": raw,
            "orm_no_audit_per_s": orm,
            "service_per_s": n / elapsed,
            "service_p50_ms": percentile(latencies, 0.50),
            "service_p95_ms": percentile(latencies, 0.95),
        }
    }
    if kind == "postgresql":
        result["concurrent"] = concurrent_writes(args.writers, args.seconds)
    entries = fill_trail(kind, args.entries)
    from batchline.audit.checkpoints import checkpoint_create

    t0 = time.perf_counter()
    checkpoint_create()  # signed over the whole filled trail: what verify holds it to
    checkpoint_ms = (time.perf_counter() - t0) * 1000
    raw_n, raw_s = raw_fetch_and_hash(kind)
    t0 = time.perf_counter()
    full = verify(replay=True)
    full_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    chain = verify(replay=False)
    chain_s = time.perf_counter() - t0
    if not (full.ok and chain.ok):
        raise SystemExit(f"the bench trail does not verify: {[str(f) for f in full.findings[:3]]}")
    result["verify"] = {
        "entries": entries,
        "raw_per_s": raw_n / raw_s,
        "full_per_s": full.entries / full_s,
        "chain_per_s": chain.entries / chain_s,
        "records_replayed": full.records,
        "checkpoint_ms": checkpoint_ms,
        "checkpoints": full.checkpoints,
    }
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
