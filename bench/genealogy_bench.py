"""Backward and forward traces five levels deep over 1,000,000 ledger rows, beside a raw baseline.

    ./dev bench genealogy                                  # PostgreSQL, 1,000,000 ledger rows
    ./dev bench genealogy --databases sqlite,postgresql
    ./dev bench genealogy --raw 8000 --ledger 100000       # quicker
    ./dev bench genealogy --again                          # measure again, same data, no new seed

For each database, in a fresh bench database (``bench/results/genealogy.sqlite3``,
PostgreSQL ``$BATCHLINE_BENCH_PG_DB``, default ``batchline_bench``):

1. a person, a site, a recipe (through the services);
2. the volumes, written straight into the scratch tables (COPY / executemany, no
   audit entries): ``--raw`` received lots (one container each, a supplier lot
   each), then five levels of batches: a batch of level *i* merges three lots of
   level *i − 1*, and every other lot of level *i − 1* goes into two batches (a
   split), so a level has half the batches of the one before. Each batch has a
   Batch row, two done steps, a use of one of ``--units`` units in the logbook,
   and an output lot with one produced container. The ledger is then filled up
   to ``--ledger`` rows with consumptions (ledger entry and genealogy edge) of
   the received lots by older batches that made no lot;
3. ``genealogy.selectors.backward`` from a random lot of the fifth level (down
   to the received lots) and ``forward`` from a random received lot (up to the
   packed lots), ``--calls`` times each, then a recall by supplier lot and by
   unit and a one-day window;
4. the baseline, same database, same run: the bare driver (sqlite3 / psycopg)
   reads one lot by primary key, ``--calls`` times.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from typing import Any

from bench.audit_bench import (
    PG_ADMIN_URL,
    PG_BENCH_DB,
    RESULTS,
    ROOT,
    database_url,
    percentile,
    raw_connection,
)
from bench.material_bench import Writer, _next_id, _person

LEVELS = 5
INPUTS_PER_BATCH = 3

RECIPE = """\
format: batchline.recipe/1
recipe: {code: BENCH-GEN, name: Genealogy bench, product_code: BENCHG, product_name: Bench product, batch_size: {quantity: 1, unit: kg}}
operations:
  - key: op
    name: Operation
    steps:
      - key: make
        kind: instruction
        title: Make it
"""


# --- the parent ---------------------------------------------------------------------------


def run_parent(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for kind in args.databases.split(","):
        url = _existing_url(kind) if args.again else database_url(kind, sqlite_name="genealogy.sqlite3")
        env = {**os.environ, "DATABASE_URL": url, "BATCHLINE_HOME": str(RESULTS / "home")}
        if not args.again:
            subprocess.run(
                [sys.executable, "-m", "batchline.cli", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT
            )
        child = [sys.executable, "-m", "bench.genealogy_bench", "--child", kind] + ["--again"] * args.again
        for option in ("raw", "ledger", "units", "calls"):
            child += [f"--{option}", str(getattr(args, option))]
        out = subprocess.run(child, env=env, check=True, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    (RESULTS / "genealogy.json").write_text(json.dumps(results, indent=2))
    report(results)


def _existing_url(kind: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{RESULTS / 'genealogy.sqlite3'}"
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_BENCH_DB}"


def _seeded_file(kind: str) -> Any:
    return RESULTS / f"genealogy-{kind}-seeded.json"


def _lat(x: dict[str, Any]) -> str:
    return f"p50 {x['p50_ms']:7.2f}  p95 {x['p95_ms']:7.2f}  p99 {x['p99_ms']:7.2f} ms"


def report(results: dict[str, Any]) -> None:
    print(f"\nGenealogy traces ({os.cpu_count()} cores); baseline of the same run beside\n")
    for kind, r in results.items():
        s = r["sizes"]
        print(
            f"[{kind}]  {s['ledger']:,} ledger rows, {s['consumptions']:,} consumptions, {s['lots']:,} lots, "
            f"{s['batches']:,} batches in {LEVELS} levels, {s['logbook']:,} logbook lines "
            f"(seeded in {r['seed_s']:.0f} s)"
        )
        print(f"  baseline: one lot by primary key, bare driver            {_lat(r['baseline'])}")
        for name in ("backward", "forward", "recall_supplier", "recall_unit"):
            x = r[name]
            print(
                f"  {x['what']:<57}{_lat(x)}   {x['queries']} queries, "
                f"{x['lots']:.0f} lots and {x['batches']:.0f} batches on average"
            )
        print()
    print(f"(figures also in {RESULTS / 'genealogy.json'})")


# --- the child ----------------------------------------------------------------------------


def setup_plant() -> dict[str, Any]:
    from django.db import transaction

    from batchline.audit.services import Actor, record_create
    from batchline.equipment.models import Site
    from batchline.recipes import services as recipes

    author = _person("author", ["recipe_author"])
    operator = _person("operator", ["operator"])
    recipe = recipes.recipe_import(actor=Actor.of(author, via="cli"), text=RECIPE)
    with transaction.atomic():
        site = record_create(Site(code="bench", name="Bench site"), actor=Actor.of(operator, via="cli"))
    return {"operator_id": operator.pk, "author_id": author.pk, "recipe_id": recipe.pk, "site_id": site.pk}


def seed(kind: str, args: argparse.Namespace, plant: dict[str, Any]) -> dict[str, Any]:
    from django.utils import timezone

    from batchline.equipment.models import Equipment, EquipmentClass, LogbookEntry
    from batchline.execution.models import Batch, BatchStep
    from batchline.materials.models import Consumption, Container, LedgerEntry, Lot, Material

    rnd = random.Random(20261125)
    now = timezone.now()
    user = plant["operator_id"]
    conn = raw_connection(kind)
    if kind == "sqlite":
        conn.execute("BEGIN IMMEDIATE")
    w = Writer(kind, conn)
    start = now - dt.timedelta(days=300)

    # Materials: a raw one and one per level.
    m0 = _next_id(conn, "materials_material")
    w.write(
        Material,
        (
            {
                "id": m0 + i,
                "code": f"GEN-L{i}",
                "name": f"Level {i}",
                "kind": "api" if i == 0 else "intermediate",
            }
            | {"unit": "kg", "shelf_life_days": 730}
            for i in range(LEVELS + 1)
        ),
    )

    # Lots level by level: the received ones, then each level's batches and their output lots.
    lot0, b0 = _next_id(conn, "materials_lot"), _next_id(conn, "execution_batch")
    levels: list[list[int]] = [list(range(lot0, lot0 + args.raw))]
    batches: list[tuple[int, str, int, list[int], int]] = []  # (id, number, level, inputs, output lot)
    next_lot = lot0 + args.raw
    for level in range(1, LEVELS + 1):
        before, outputs = levels[-1], []
        for j in range(len(before) // 2):
            inputs = [before[(2 * j + k) % len(before)] for k in range(INPUTS_PER_BATCH)]
            bid = b0 + len(batches)
            batches.append((bid, f"GB-{level}-{j:06d}", level, inputs, next_lot))
            outputs.append(next_lot)
            next_lot += 1
        levels.append(outputs)
    lot_level = {lid: level for level, ids in enumerate(levels) for lid in ids}
    made_by = {out: number for _bid, number, _level, _inputs, out in batches}
    # Moments: batches of a level run after those of the level before, in order.
    batch_at = {
        b[1]: start + dt.timedelta(days=40 * b[2], seconds=30 * int(b[1].rsplit("-", 1)[1])) for b in batches
    }
    w.write(
        Lot,
        (
            {
                "id": lid,
                "material_id": m0 + lot_level[lid],
                "number": made_by.get(lid, f"R-{lid:07d}"),
                "supplier": "" if lid in made_by else "Bench supplier",
                "supplier_lot": "" if lid in made_by else f"S-{lid - lot0:07d}",
                "status": "released",
                "received_at": batch_at[made_by[lid]] if lid in made_by else start,
                "expires_at": now + dt.timedelta(days=400),
                "produced_by_batch": made_by.get(lid, ""),
            }
            for lid in range(lot0, next_lot)
        ),
    )

    # Batches, two done steps each, a unit's use in the logbook.
    w.write(
        Batch,
        (
            {
                "id": bid,
                "number": number,
                "recipe_id": plant["recipe_id"],
                "planned_quantity": Decimal(1),
                "nominal_quantity": Decimal(1),
                "unit": "kg",
                "scale": Decimal(1),
                "state": "complete",
                "control_recipe": "{}",
                "created_by_id": user,
                "created_at": batch_at[number],
            }
            for bid, number, *_ in batches
        ),
    )
    s0 = _next_id(conn, "execution_batchstep")
    w.write(
        BatchStep,
        (
            {
                "id": s0 + 2 * i + k,
                "batch_id": bid,
                "key": f"s{k}",
                "seq": k,
                "operation": "Operation",
                "title": "Make it",
                "kind": "instruction",
                "spec": "{}",
                "predecessors": "[]",
                "state": "done",
                "started_by_id": user,
                "started_at": batch_at[number],
                "completed_by_id": user,
                "completed_at": batch_at[number] + dt.timedelta(minutes=20),
            }
            for i, (bid, number, *_) in enumerate(batches)
            for k in range(2)
        ),
    )
    k0, q0 = _next_id(conn, "equipment_equipmentclass"), _next_id(conn, "equipment_equipment")
    w.write(
        EquipmentClass, iter([{"id": k0, "code": "GEN-GRAN", "name": "Bench granulator", "is_scale": False}])
    )
    w.write(
        Equipment,
        (
            {
                "id": q0 + i,
                "site_id": plant["site_id"],
                "code": f"GU-{i:04d}",
                "name": f"Unit {i}",
                "equipment_class_id": k0,
                "status": "dirty",
                "last_check_passed": False,
            }
            for i in range(args.units)
        ),
    )
    unit_of = {number: q0 + rnd.randrange(args.units) for _bid, number, *_ in batches}
    g0 = _next_id(conn, "equipment_logbookentry")
    logbook = w.write(
        LogbookEntry,
        (
            {
                "id": g0 + 2 * i + k,
                "equipment_id": unit_of[number],
                "kind": ("use_start", "use_end")[k],
                "at": batch_at[number] + dt.timedelta(minutes=25 * k),
                "user_id": user,
                "batch_number": number,
                "product": "BENCHG",
            }
            for i, (_bid, number, *_) in enumerate(batches)
            for k in range(2)
        ),
    )

    # Containers: one per lot (the code says which). Ledger and edges: receipts, the
    # genealogy's consumptions and productions, then older batches' consumptions up to --ledger.
    c0 = _next_id(conn, "materials_container")
    container = {lid: c0 + (lid - lot0) for lid in range(lot0, next_lot)}
    used = args.raw + sum(len(b[3]) + 1 for b in batches)
    noise = max(0, args.ledger - used)
    noise_lots = [rnd.choice(levels[0]) for _ in range(noise)]
    taken = Counter(noise_lots)
    received = {lid: Decimal(10) + taken[lid] for lid in levels[0]}
    balance: dict[int, Decimal] = {}
    e0 = _next_id(conn, "materials_ledgerentry")
    ledger_rows: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    one = Decimal(1)

    def move(lid: int, kind_: str, qty: Decimal, number: str, at: dt.datetime) -> None:
        cid = container[lid]
        balance[cid] = balance.get(cid, Decimal(0)) + qty
        eid = e0 + len(ledger_rows)
        ledger_rows.append(
            {
                "id": eid,
                "container_id": cid,
                "kind": kind_,
                "quantity": qty,
                "unit": "kg",
                "balance": balance[cid],
                "batch_number": number,
                "step_key": "s0" if number else "",
                "user_id": user,
                "at": at,
            }
        )
        if kind_ == "consume":
            edges.append(
                {
                    "lot_id": lid,
                    "container_id": cid,
                    "ledger_id": eid,
                    "batch_number": number,
                    "step_key": "s0",
                    "quantity": -qty,
                    "unit": "kg",
                    "at": at,
                }
            )

    for lid in levels[0]:
        move(lid, "receipt", received[lid], "", start)
    history = start + dt.timedelta(days=1)
    for i, lid in enumerate(noise_lots):
        move(lid, "consume", -one, f"OLD-{i // 20:06d}", history + dt.timedelta(seconds=i))
    for _bid, number, _level, inputs, out in batches:
        for lid in inputs:
            move(lid, "consume", -one if lot_level[lid] == 0 else -Decimal(3) / 2, number, batch_at[number])
        move(out, "produce", Decimal(3), number, batch_at[number] + dt.timedelta(minutes=20))
    assert all(b >= 0 for b in balance.values()), "a container went below zero"
    w.write(
        Container,
        (
            {
                "id": container[lid],
                "code": f"C-{container[lid]:07d}",
                "lot_id": lid,
                "quantity": balance.get(container[lid], Decimal(0)),
                "unit": "kg",
                "created_at": start,
            }
            for lid in range(lot0, next_lot)
        ),
    )
    ledger = w.write(LedgerEntry, iter(ledger_rows))
    c_id = _next_id(conn, "materials_consumption")
    consumptions = w.write(Consumption, ({"id": c_id + i} | e for i, e in enumerate(edges)))

    tables = (
        "materials_material",
        "materials_lot",
        "materials_container",
        "materials_ledgerentry",
        "materials_consumption",
        "execution_batch",
        "execution_batchstep",
        "equipment_equipmentclass",
        "equipment_equipment",
        "equipment_logbookentry",
    )
    if kind == "sqlite":
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    else:
        with conn.cursor() as cur:
            for table in tables:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
                )
        conn.commit()
        conn.autocommit = True
        for table in tables:
            conn.execute(f"VACUUM ANALYZE {table}")
    conn.close()
    return {
        "sizes": {
            "ledger": ledger,
            "consumptions": consumptions,
            "lots": next_lot - lot0,
            "batches": len(batches),
            "logbook": logbook,
        },
        "top": levels[-1],
        "raw": levels[0],
        "lot0": lot0,
        "units": [f"GU-{i:04d}" for i in range(args.units)],
        "start": start.isoformat(),
    }


def _timed(what: str, fn: Any, arguments: list[Any]) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        fn(arguments[0])
    latencies, lots, batches = [], [], []
    for argument in arguments:
        t0 = time.perf_counter()
        trace = fn(argument)
        latencies.append(time.perf_counter() - t0)
        trace = getattr(trace, "trace", trace)
        lots.append(len(trace.lots))
        batches.append(len(trace.batches))
    return {
        "what": what,
        "calls": len(arguments),
        "p50_ms": percentile(latencies, 0.5),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "queries": len(queries),
        "lots": statistics.mean(lots),
        "batches": statistics.mean(batches),
    }


def baseline(kind: str, ids: list[int]) -> dict[str, Any]:
    """One lot read by primary key, bare driver, one call per id."""
    conn = raw_connection(kind)
    ph = "?" if kind == "sqlite" else "%s"
    sql = f"SELECT id, number, status, produced_by_batch FROM materials_lot WHERE id = {ph}"
    latencies = []
    for lid in ids:
        t0 = time.perf_counter()
        cur = conn.execute(sql, (lid,))
        cur.fetchone()
        if kind != "sqlite":
            conn.commit()
        latencies.append(time.perf_counter() - t0)
    conn.close()
    return {
        "calls": len(ids),
        "p50_ms": percentile(latencies, 0.5),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
    }


def run_child(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchline.settings")
    import django

    django.setup()
    from batchline.genealogy import selectors as gen

    kind = args.child
    t0 = time.perf_counter()
    if args.again:  # measure again on the database the last run seeded
        seeded = json.loads(_seeded_file(kind).read_text())
    else:
        seeded = seed(kind, args, setup_plant())
        seeded["seed_s"] = time.perf_counter() - t0
        _seeded_file(kind).write_text(json.dumps(seeded))
    result: dict[str, Any] = {"seed_s": seeded["seed_s"], "sizes": seeded["sizes"]}
    rnd = random.Random(7)
    top = [rnd.choice(seeded["top"]) for _ in range(args.calls)]
    raw = [rnd.choice(seeded["raw"]) for _ in range(args.calls)]
    # Warm the connection and the caches alike for both sides.
    gen.backward(top[0])
    result["baseline"] = baseline(kind, top + raw)
    result["backward"] = _timed(f"backward from a level-{LEVELS} lot", gen.backward, top)
    result["forward"] = _timed("forward from a received lot", gen.forward, raw)
    suppliers = [f"S-{lid - seeded['lot0']:07d}" for lid in raw[: max(1, args.calls // 4)]]
    result["recall_supplier"] = _timed("recall by supplier lot", gen.recall_supplier_lot, suppliers)
    # A day from within the hours a level's batches ran (level i from day 40 i, one every 30 s).
    start = dt.datetime.fromisoformat(seeded["start"])
    windows = [
        (
            rnd.choice(seeded["units"]),
            start + dt.timedelta(days=40 * rnd.randint(1, LEVELS), hours=rnd.random() * 4),
        )
        for _ in suppliers
    ]
    result["recall_unit"] = _timed(
        "recall by unit and one day",
        lambda w: gen.recall_equipment(w[0], w[1], w[1] + dt.timedelta(days=1)),
        windows,
    )
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="postgresql")
    parser.add_argument("--raw", type=int, default=64_000, help="received lots (level 0)")
    parser.add_argument("--ledger", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument(
        "--again", action="store_true", help="measure again on the database the last run seeded, no new seed"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    run_child(args) if args.child else run_parent(args)


if __name__ == "__main__":
    main()
