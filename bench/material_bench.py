"""The material and equipment gates at realistic volumes, beside a raw baseline from the same run.

    ./dev bench materials                    # SQLite and PostgreSQL, 100,000 lots, 1,000,000 ledger rows
    ./dev bench materials --databases postgresql --seconds 5
    ./dev bench materials --lots 20000 --ledger 200000 --equipment 1000 --seconds 2   # quicker

For each database, in a fresh bench database (``bench/results/materials.sqlite3``,
PostgreSQL ``$BATCHLINE_BENCH_PG_DB``, default ``batchline_bench``):

1. people, an effective recipe (a material charge step and an equipment
   identification step, both through the real services, signed) and one
   running batch per client;
2. the volumes, written straight into the scratch tables (COPY / executemany,
   no audit entries: ``audit verify`` is not part of this bench): ``--lots``
   lots of ~``--materials`` materials, a container per lot (ten per lot of the
   charged material), ``--ledger`` ledger rows with consistent balances, and
   ``--equipment`` units of 50 classes;
3. scan to verdict, through ``execution.services.step_scan`` end to end (batch
   lock, container or unit lock, the gate, the writes or the recorded
   refusal), 1 client and ``--clients`` clients (processes, one batch each):
   a container of an expired lot (refused, the refusal recorded for QA), a
   good container (consumed: ledger entry, container, genealogy edge, step
   value, their audit entries), a clean unit (claimed: status, logbook, step
   value) and a dirty unit (refused, recorded);
4. the baseline, same database, same clients: the bare driver (sqlite3 /
   psycopg) in one transaction locks one container row by primary key
   (``SELECT … FOR UPDATE``; on SQLite ``BEGIN IMMEDIATE`` and a plain
   SELECT) and inserts one row into a copy of the ledger table, then commits;
5. the ledger balance: ``materials.services.ledger_balance`` and the stored
   quantity of containers with 10 and 100,000 ledger rows in the full ledger,
   with and without the ``(container, -id)`` index (dropped in a transaction
   that is rolled back), and the query plan.
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
    RESULTS,
    ROOT,
    database_url,
    in_processes,
    percentile,
    raw_connection,
    raw_tables,
)

BENCH_MATERIAL = "BENCH-API"
BENCH_CLASS = "BENCH-GRAN"
PER_BENCH_LOT = 10  # containers per lot of the charged material
INDEX = "ledger_container_newest_idx"
PASSWORD = "bench-password-1"

RECIPE = f"""\
format: batchline.recipe/1
recipe: {{code: BENCH-MAT, name: Material bench, product_code: BENCHP, product_name: Bench tablets, batch_size: {{quantity: 1, unit: kg}}}}
operations:
  - key: op
    name: Operation
    steps:
      - key: charge
        kind: material_charge
        title: Charge the API
        after: []
        material: {{code: {BENCH_MATERIAL}, quantity: 100000000, unit: kg, tolerance_percent: 0}}
      - key: equip
        kind: equipment_id
        title: Identify the granulator
        after: []
        equipment_class: {BENCH_CLASS}
"""

SCENARIOS = {
    # name: (step, what is scanned, expected outcome)
    "material_refused": ("charge", "a container of an expired lot", "LOT_EXPIRED"),
    "material_accepted": ("charge", "a good container, consumed", None),
    "equipment_claimed": ("equip", "a clean unit, claimed", None),
    "equipment_refused": ("equip", "a dirty unit", "EQUIPMENT_DIRTY"),
}


# --- the parent ---------------------------------------------------------------------------


def run_parent(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for kind in args.databases.split(","):
        url = database_url(kind, sqlite_name="materials.sqlite3")
        env = {**os.environ, "DATABASE_URL": url, "BATCHLINE_HOME": str(RESULTS / "home")}
        subprocess.run(
            [sys.executable, "-m", "batchline.cli", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT
        )
        child = [sys.executable, "-m", "bench.material_bench", "--child", kind]
        for option in ("lots", "materials", "ledger", "equipment", "seconds", "clients", "balance_calls"):
            child += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
        out = subprocess.run(child, env=env, check=True, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    (RESULTS / "materials.json").write_text(json.dumps(results, indent=2))
    report(results, args.clients)


def _lat(x: dict[str, Any]) -> str:
    return f"{x['per_s']:>7,.0f}/s  p50 {x['p50_ms']:6.2f}  p95 {x['p95_ms']:6.2f}  p99 {x['p99_ms']:6.2f} ms"


def report(results: dict[str, Any], clients: int) -> None:
    print(f"\nMaterial and equipment gates ({os.cpu_count()} cores); baseline of the same run beside\n")
    for kind, r in results.items():
        s = r["sizes"]
        print(
            f"[{kind}]  {s['lots']:,} lots of {s['materials']:,} materials, {s['containers']:,} containers, "
            f"{s['ledger']:,} ledger rows, {s['equipment']:,} units (seeded in {r['seed_s']:.0f} s)"
        )
        for n in (1, clients):
            base = r[f"baseline_{n}"]
            print(f"  {n} client(s)")
            print(f"    baseline: lock one row by pk + one INSERT, bare driver  {_lat(base)}")
            for name, (_step, what, _code) in SCENARIOS.items():
                x = r[f"{name}_{n}"]
                print(f"    {what:<55} {_lat(x)}   ({x['per_s'] / base['per_s']:.0%} of baseline rate)")
        b = r["balance"]
        print(
            f"  ledger balance (µs per call, median of {b['calls']} calls; composite index present / dropped)"
        )
        for case in b["cases"]:
            with_index = f"{case['with_index_us']:8.0f}" if "with_index_us" in case else "       —"
            print(
                f"    {case['label']:<48} ({case['rows']:>7,} rows) ledger_balance {with_index} / "
                f"{case['without_index_us']:8.0f}   stored quantity {case['stored_us']:6.0f}"
            )
        for label, plan in b["plans"].items():
            print(f"  plan, {label}:")
            for line in plan:
                print(f"    {line}")
        print()
    print(f"(figures also in {RESULTS / 'materials.json'})")


# --- the child: set-up through the services -----------------------------------------------


def _person(username: str, roles: list[str]) -> Any:

    from batchline.accounts.models import User
    from batchline.accounts.seeding import account_seed
    from batchline.audit.services import SYSTEM

    existing = User.objects.filter(username=username).first()
    if existing:
        return existing
    return account_seed(
        actor=SYSTEM, username=username, full_name=username.title(), roles=roles, password=PASSWORD
    )


def setup_plant(batches: int) -> dict[str, Any]:
    """People, a site, the recipe made effective with signatures, and running batches with both steps started."""
    from django.db import transaction

    from batchline.audit.services import Actor, record_create
    from batchline.equipment.models import Site
    from batchline.execution import services as ex
    from batchline.recipes import services as recipes
    from batchline.recipes.management.commands.recipe import cli_request
    from batchline.signatures.services import signer_authenticate

    author, approver = _person("author", ["recipe_author"]), _person("approver", ["qa_approver"])
    supervisor, operator = _person("supervisor", ["supervisor"]), _person("operator", ["operator"])

    def sign(user: Any, meaning: str) -> Any:
        return signer_authenticate(
            request=cli_request(), username=user.username, password=PASSWORD, meaning=meaning
        )

    recipe = recipes.recipe_import(actor=Actor.of(author, via="cli"), text=RECIPE)
    for who, command, meaning in (
        (author, "submit", "performed"),
        (approver, "approve", "approved"),
        (approver, "make_effective", "approved"),
    ):
        recipe = recipes.recipe_transition(
            actor=Actor.of(who, via="cli"), recipe=recipe, command=command, signer=sign(who, meaning)
        )
    sup, op = Actor.of(supervisor, via="cli"), Actor.of(operator, via="cli")
    numbers = []
    for b in range(batches):
        number = f"MB-{b:03d}"
        batch = ex.batch_create(actor=sup, recipe=recipe, number=number, planned_quantity=Decimal(1))
        batch = ex.batch_command(
            actor=sup, batch=batch, command="release", signer=sign(supervisor, "performed")
        )
        for key in ("charge", "equip"):
            ex.step_start(actor=op, user=operator, batch=batch, step_key=key)
        numbers.append(number)
    with transaction.atomic():
        site = record_create(Site(code="bench", name="Bench site"), actor=op)
    return {"operator_id": operator.pk, "site_id": site.pk, "numbers": numbers}


# --- the child: the volumes, written straight into the scratch tables ---------------------


def _defaults(model: Any, row: dict[str, Any]) -> dict[str, Any]:
    """Every concrete column of ``model``: the given values, else null, the field's default or ''."""
    out = {}
    for f in model._meta.concrete_fields:
        if f.attname in row:
            out[f.column] = row[f.attname]
        elif f.null:
            out[f.column] = None
        elif f.has_default():
            out[f.column] = f.get_default()
        else:
            out[f.column] = ""
    return out


class Writer:
    """Bulk rows into one table: COPY on PostgreSQL, executemany in one transaction on SQLite."""

    def __init__(self, kind: str, conn: Any) -> None:
        self.kind, self.conn = kind, conn

    def value(self, v: Any) -> Any:
        if self.kind == "sqlite":
            if isinstance(v, dt.datetime):
                return v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            if isinstance(v, Decimal):
                return str(v)
            if isinstance(v, bool):
                return int(v)
        return v

    def write(self, model: Any, rows: Any) -> int:
        table = model._meta.db_table
        n = 0
        columns: list[str] | None = None
        if self.kind == "sqlite":
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                full = _defaults(model, row)
                if columns is None:
                    columns = list(full)
                    sql = (
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                    )
                batch.append(tuple(self.value(full[c]) for c in columns))
                if len(batch) >= 50_000:
                    self.conn.executemany(sql, batch)
                    n += len(batch)
                    batch = []
            if batch:
                self.conn.executemany(sql, batch)
                n += len(batch)
            return n
        copy_cm = None
        with self.conn.cursor() as cur:
            for row in rows:
                full = _defaults(model, row)
                if columns is None:
                    columns = list(full)
                    copy_cm = cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN")
                    copy = copy_cm.__enter__()
                copy.write_row([full[c] for c in columns])
                n += 1
            if copy_cm is not None:
                copy_cm.__exit__(None, None, None)
        return n


def _next_id(conn: Any, table: str) -> int:
    cur = conn.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
    return int(cur.fetchone()[0])


def seed(kind: str, args: argparse.Namespace, plant: dict[str, Any]) -> dict[str, Any]:
    """Materials, lots, containers, ledger and equipment in bulk; returns the codes the phases use."""
    from django.utils import timezone

    from batchline.equipment.models import Equipment, EquipmentClass, EquipmentStatus
    from batchline.materials.models import Container, LedgerEntry, Lot, LotStatus, Material, Movement

    rnd = random.Random(20261124)
    now = timezone.now()
    user_id = plant["operator_id"]
    conn = raw_connection(kind)
    if kind == "sqlite":
        conn.execute("BEGIN IMMEDIATE")
    w = Writer(kind, conn)
    kinds = ["api", "excipient", "packaging", "intermediate"]

    # Materials: the charged one first, then the others.
    m0 = _next_id(conn, "materials_material")
    material_ids = list(range(m0, m0 + args.materials))
    w.write(
        Material,
        (
            {
                "id": mid,
                "code": BENCH_MATERIAL if i == 0 else f"M-{i:05d}",
                "name": "Bench API" if i == 0 else f"Material {i}",
                "kind": kinds[i % 4],
                "unit": "kg",
                "shelf_life_days": 730,
            }
            for i, mid in enumerate(material_ids)
        ),
    )

    # Lots: the charged material gets one expired lot and enough released lots for the accepted scans.
    bench_lots = max(2, args.lots // 50)
    lot0 = _next_id(conn, "materials_lot")
    lots = []  # (id, material_id, status, expires_at, is_bench)
    for i in range(args.lots):
        if i < bench_lots:
            material = material_ids[0]
            status, expires = LotStatus.RELEASED, now + dt.timedelta(days=400)
            if i == 0:
                expires = now - dt.timedelta(minutes=90)  # the one the refused scans meet
        else:
            material = material_ids[1 + (i % (len(material_ids) - 1))]
            r = rnd.random()
            status = (
                LotStatus.RELEASED
                if r < 0.9
                else LotStatus.QUARANTINE
                if r < 0.95
                else LotStatus.REJECTED
                if r < 0.98
                else LotStatus.BLOCKED
            )
            days = rnd.randint(-200, 1000)  # about one in six is expired
            expires = now + dt.timedelta(days=days, minutes=rnd.randint(0, 1439))
        lots.append((lot0 + i, material, status.value, expires, i < bench_lots))
    received = now - dt.timedelta(days=400)
    w.write(
        Lot,
        (
            {
                "id": lid,
                "material_id": mat,
                "number": f"L-{lid:07d}",
                "supplier": "Bench supplier",
                "status": status,
                "received_at": received,
                "expires_at": expires,
                "retest_at": None,
            }
            for lid, mat, status, expires, _ in lots
        ),
    )

    # Containers: ten per lot of the charged material, one per other lot.
    c0 = _next_id(conn, "materials_container")
    containers: list[tuple[int, int]] = []  # (id, lot_id)
    expired_codes, good_codes, other_idx = [], [], []
    for lid, _mat, _status, _expires, is_bench in lots:
        for _ in range(PER_BENCH_LOT if is_bench else 1):
            cid = c0 + len(containers)
            if is_bench:
                (expired_codes if lid == lot0 else good_codes).append(f"C-{cid:06d}")
            else:
                other_idx.append(len(containers))
            containers.append((cid, lid))

    # The ledger: a receipt per container, then movements spread over the history. Three
    # containers of other materials have a known history: 10 rows, and 100,000 rows twice
    # (one spread over the whole ledger, one that ended half-way: a container emptied long ago).
    n_moves = max(0, args.ledger - len(containers))
    big = min(100_000, n_moves // 4)
    small_i, hot_i, old_i = other_idx[0], other_idx[1], other_idx[2]
    rest = n_moves - 2 * (big - 1) - 9
    pool = other_idx[3:]
    main = [hot_i] * (big - 1) + [small_i] * 9 + [rnd.choice(pool) for _ in range(rest)]
    rnd.shuffle(main)
    half = main[: len(main) // 2] + [old_i] * (big - 1)
    rnd.shuffle(half)
    sequence = half + main[len(main) // 2 :]
    moves = Counter(sequence)
    # What each container received: 5 kg for the untouched ones, enough for its history for the others.
    balance = [Decimal(5) if i not in moves else Decimal(1000 + moves[i]) for i in range(len(containers))]
    e0 = _next_id(conn, "materials_ledgerentry")
    total = len(containers) + len(sequence)
    start = now - dt.timedelta(days=400)
    step = dt.timedelta(days=399) / max(total, 1)
    one, minus_one = Decimal(1), Decimal(-1)
    current = list(balance)

    def ledger_rows() -> Any:
        eid = e0
        for i, (cid, _lid) in enumerate(containers):
            yield {
                "id": eid,
                "container_id": cid,
                "kind": Movement.RECEIPT.value,
                "quantity": balance[i],
                "unit": "kg",
                "balance": balance[i],
                "user_id": user_id,
                "at": start + step * (eid - e0),
            }
            eid += 1
        for i in sequence:
            current[i] -= one
            yield {
                "id": eid,
                "container_id": containers[i][0],
                "kind": Movement.CONSUME.value,
                "quantity": minus_one,
                "unit": "kg",
                "balance": current[i],
                "batch_number": "HIST-1",
                "step_key": "charge",
                "user_id": user_id,
                "at": start + step * (eid - e0),
            }
            eid += 1

    w.write(
        Container,
        (
            {
                "id": cid,
                "code": f"C-{cid:06d}",
                "lot_id": lid,
                "quantity": balance[i] - moves[i],
                "unit": "kg",
                "location": "WH-A",
                "created_at": received,
            }
            for i, (cid, lid) in enumerate(containers)
        ),
    )
    ledger = w.write(LedgerEntry, ledger_rows())
    assert all(current[i] == balance[i] - moves[i] for i in (small_i, hot_i, old_i))

    # Equipment: 50 classes; the step's class has most units, clean (claimable) and some dirty.
    k0 = _next_id(conn, "equipment_equipmentclass")
    class_ids = list(range(k0, k0 + 50))
    w.write(
        EquipmentClass,
        (
            {
                "id": kid,
                "code": BENCH_CLASS if i == 0 else f"CLS-{i:02d}",
                "name": "Bench granulator" if i == 0 else f"Class {i}",
                "dirty_hold_hours": 48,
                "clean_hold_hours": 72,
                "is_scale": False,
            }
            for i, kid in enumerate(class_ids)
        ),
    )
    q0 = _next_id(conn, "equipment_equipment")
    units, clean_codes, dirty_codes = [], [], []
    for i in range(args.equipment):
        code = f"U-{i:05d}"
        bench_class = i < args.equipment * 6 // 10
        dirty = bench_class and i % 10 == 9
        status = EquipmentStatus.DIRTY if dirty else EquipmentStatus.CLEAN
        if not bench_class:
            status = rnd.choice(list(EquipmentStatus))
            if status == EquipmentStatus.IN_USE:
                status = EquipmentStatus.CLEAN
        if bench_class:
            (dirty_codes if dirty else clean_codes).append(code)
        units.append(
            {
                "id": q0 + i,
                "site_id": plant["site_id"],
                "code": code,
                "name": f"Unit {i}",
                "equipment_class_id": class_ids[0] if bench_class else class_ids[1 + i % 49],
                "status": status.value,
                "cleaned_at": now - dt.timedelta(hours=1) if status == EquipmentStatus.CLEAN else None,
                "last_used_end": now - dt.timedelta(hours=2),
                "calibration_due_at": now + dt.timedelta(days=180),
                "maintenance_due_at": now + dt.timedelta(days=180),
                "last_check_passed": False,
            }
        )
    w.write(Equipment, iter(units))

    tables = (
        "materials_material",
        "materials_lot",
        "materials_container",
        "materials_ledgerentry",
        "equipment_equipmentclass",
        "equipment_equipment",
    )
    if kind == "sqlite":
        highest = c0 + len(containers) - 1
        conn.execute(
            "INSERT INTO materials_counter (name, value) VALUES ('container', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (highest,),
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    else:
        with conn.cursor() as cur:
            for table in tables:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
                )
            cur.execute(
                "INSERT INTO materials_counter (name, value) VALUES ('container', %s) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (c0 + len(containers) - 1,),
            )
        conn.commit()
        conn.autocommit = True
        for table in tables:
            conn.execute(f"VACUUM ANALYZE {table}")
    conn.close()
    return {
        "sizes": {
            "materials": args.materials,
            "lots": args.lots,
            "containers": len(containers),
            "ledger": ledger,
            "equipment": args.equipment,
        },
        "expired": expired_codes,
        "good": good_codes,
        "clean": clean_codes,
        "dirty": dirty_codes,
        "container_ids": {
            "small": containers[small_i][0],
            "big": containers[hot_i][0],
            "big_old": containers[old_i][0],
        },
        "history": {"small": moves[small_i] + 1, "big": moves[hot_i] + 1, "big_old": moves[old_i] + 1},
    }


# --- the child: scan to verdict --------------------------------------------------------------


def scan_loop(
    scenario: str, number: str, codes: list[str], seconds: float
) -> tuple[int, float, list[float], dict[str, int]]:
    from batchline.accounts.models import User
    from batchline.audit.services import Actor
    from batchline.execution import services as ex
    from batchline.execution.models import Batch

    step_key, _what, expected = SCENARIOS[scenario]
    operator = User.objects.get(username="operator")
    actor = Actor.of(operator, via="cli")
    batch = Batch.objects.get(number=number)
    consumes = expected is None  # each accepted scan empties (or claims) a container (or unit) of its own
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds and (not consumes or n < len(codes)):
        code = codes[n] if consumes else codes[n % len(codes)]
        scan = code if step_key == "charge" else f"EQ:{code}"
        t0 = time.perf_counter()
        try:
            ex.step_scan(actor=actor, user=operator, batch=batch, step_key=step_key, scan=scan)
            outcome = "accepted"
        except ex.ExecutionRefused as refused:
            outcome = ",".join(refused.verdict.codes)
        latencies.append(time.perf_counter() - t0)
        outcomes[outcome] += 1
        n += 1
    return n, time.perf_counter() - start, latencies, dict(outcomes)


def baseline_loop(
    kind: str, ids: list[int], seconds: float
) -> tuple[int, float, list[float], dict[str, int]]:
    """Lock one container row by primary key and insert one ledger-shaped row, one transaction, bare driver."""
    conn = raw_connection(kind)
    ph = "?" if kind == "sqlite" else "%s"
    lock = f"SELECT id, quantity, unit FROM materials_container WHERE id = {ph}" + (
        "" if kind == "sqlite" else " FOR UPDATE"
    )
    insert = (
        "INSERT INTO bench_raw_ledger (container_id, kind, quantity, unit, balance, batch_number, step_key, "
        f"device, user_id, at, reason) VALUES ({', '.join([ph] * 11)})"
    )
    stamp = "2026-01-01 00:00:00.000000"
    latencies: list[float] = []
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        cid = ids[n % len(ids)]
        t0 = time.perf_counter()
        if kind == "sqlite":
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(lock, (cid,)).fetchone()
            conn.execute(insert, (cid, "consume", "-1", row[2], "0", "MB", "charge", "", 1, stamp, ""))
            conn.execute("COMMIT")
        else:
            with conn.cursor() as cur:
                cur.execute(lock, (cid,))
                row = cur.fetchone()
                cur.execute(insert, (cid, "consume", -1, row[2], 0, "MB", "charge", "", 1, stamp, ""))
            conn.commit()
        latencies.append(time.perf_counter() - t0)
        n += 1
    conn.close()
    return n, time.perf_counter() - start, latencies, {}


def _job(job: tuple[Any, ...]) -> tuple[int, float, list[float], dict[str, int]]:
    if job[0] == "baseline":
        return baseline_loop(*job[1:])
    return scan_loop(*job)


def run_clients(jobs: list[tuple[Any, ...]]) -> dict[str, Any]:
    if len(jobs) == 1:
        started = time.perf_counter()
        results = [_job(jobs[0])]
        wall = time.perf_counter() - started
    else:
        results, wall = in_processes(lambda i: _job(jobs[i]), len(jobs))
    latencies = [x for _, _, lat, _ in results for x in lat]
    outcomes: Counter[str] = Counter()
    for *_, o in results:
        outcomes.update(o)
    return {
        "clients": len(jobs),
        "n": len(latencies),
        "per_s": len(latencies) / wall,
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "outcomes": dict(outcomes),
    }


def _slices(codes: list[str], parts: int) -> list[list[str]]:
    return [codes[i::parts] or codes for i in range(parts)]


# --- the child: the ledger balance -------------------------------------------------------------


def _time_us(fn: Any, calls: int) -> float:
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def balance_figures(kind: str, seeded: dict[str, Any], calls: int = 2000) -> dict[str, Any]:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from batchline.materials.models import Container, LedgerEntry
    from batchline.materials.services import ledger_balance

    labels = {
        "small": "short history",
        "big": "long history, up to now",
        "big_old": "long history, last movement half-way back",
    }
    cases = []
    containers = {k: Container.objects.get(pk=pk) for k, pk in seeded["container_ids"].items()}
    for key, c in containers.items():
        assert ledger_balance(c) == c.quantity, (key, ledger_balance(c), c.quantity)
        rows = LedgerEntry.objects.filter(container=c).count()
        cases.append({"key": key, "label": labels[key], "rows": rows})

    def plan(c: Any, present: bool) -> list[str]:
        with CaptureQueriesContext(connection) as ran:  # the very statement ledger_balance sends
            ledger_balance(c)
        (statement,) = [q["sql"] for q in ran.captured_queries if "ledgerentry" in q["sql"]]
        prefix = "EXPLAIN QUERY PLAN " if kind == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
        # A different text for each phase: sqlite3's statement cache would explain the plan it prepared first.
        phase = "/* index present */ " if present else "/* index dropped */ "
        with connection.cursor() as cur:
            cur.execute(prefix + phase + statement)
            return [" ".join(str(x) for x in row) for row in cur.fetchall()]

    with connection.cursor() as cur:
        indexed = INDEX in connection.introspection.get_constraints(cur, LedgerEntry._meta.db_table)
    plans: dict[str, list[str]] = {}
    for present in (True, False) if indexed else (False,):
        with transaction.atomic():
            if not present and indexed:
                with connection.cursor() as cur:
                    cur.execute(f"DROP INDEX {INDEX}")
            for case in cases:
                c = containers[case["key"]]
                # rounds interleaved with the other cases would be fairer still; medians of 2,000 calls are stable here
                us = _time_us(lambda c=c: ledger_balance(c), calls)
                case["with_index_us" if present else "without_index_us"] = us
                if present or not indexed:
                    case["stored_us"] = _time_us(
                        lambda c=c: (
                            Container.objects.filter(pk=c.pk).values_list("quantity", flat=True).get()
                        ),
                        calls,
                    )
                plans[
                    f"{case['rows']:,} rows, {case['label']}, {'with' if present else 'without'} the index"
                ] = plan(c, present)
            if not present:
                transaction.set_rollback(True)
    return {"calls": calls, "indexed": indexed, "cases": cases, "plans": plans}


def run_child(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchline.settings")
    import django

    django.setup()
    kind, clients = args.child, args.clients
    t0 = time.perf_counter()
    plant = setup_plant(clients + 1)
    seeded = seed(kind, args, plant)
    result: dict[str, Any] = {"seed_s": time.perf_counter() - t0, "sizes": seeded["sizes"]}
    numbers = plant["numbers"]
    conn = raw_connection(kind)
    raw_tables(kind, conn, {"materials_ledgerentry": "bench_raw_ledger"})
    conn.close()
    container_ids = [int(c[2:]) for c in seeded["good"]]
    pools = {
        "material_refused": _slices(seeded["expired"], clients + 1),
        "material_accepted": _slices(seeded["good"], clients + 1),
        "equipment_claimed": _slices(seeded["clean"], clients + 1),
        "equipment_refused": _slices(seeded["dirty"], clients + 1),
    }
    for n in (1, clients):
        ids = [container_ids[i::n] for i in range(n)]
        result[f"baseline_{n}"] = run_clients([("baseline", kind, ids[i], args.seconds) for i in range(n)])
        for scenario in SCENARIOS:
            slots = range(1) if n == 1 else range(1, clients + 1)
            jobs = [(scenario, numbers[i], pools[scenario][i], args.seconds) for i in slots]
            r = run_clients(jobs)
            expected = SCENARIOS[scenario][2] or "accepted"
            if set(r["outcomes"]) != {expected}:
                raise SystemExit(f"{scenario}: expected only {expected}, got {r['outcomes']}")
            result[f"{scenario}_{n}"] = r
    result["balance"] = balance_figures(kind, seeded, calls=args.balance_calls)
    result["history"] = seeded["history"]
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--lots", type=int, default=100_000)
    parser.add_argument("--materials", type=int, default=2_000)
    parser.add_argument("--ledger", type=int, default=1_000_000)
    parser.add_argument("--equipment", type=int, default=5_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--balance-calls",
        type=int,
        default=2000,
        help="calls per ledger-balance figure (without the index each takes ~50 ms at 1,000,000 rows)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    run_child(args) if args.child else run_parent(args)


if __name__ == "__main__":
    main()
