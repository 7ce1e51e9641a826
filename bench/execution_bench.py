"""Step completions per second through the service layer, beside the raw two-INSERT baseline.

    ./dev bench execution                  # SQLite and PostgreSQL
    ./dev bench execution --databases sqlite --seconds 2

A completion is ``step_complete`` on a running data-entry step: the batch row
lock, the gates, the value judged against its limits and written, the step's
state, their audit entries, and (in the signed variant) re-authentication and
the e-signature. Each client works on its own batch (a batch's actions are
serialised by design); 8 clients run as 8 processes. The password hash is
timed on its own, so its share of a signed completion is visible; and in each
signed completion the time spent inside the hasher is taken off, so what a
signature adds besides Argon2 is measured directly, not as the difference of
two noisy figures.

Beside them, in the same run: the raw two-INSERT rate with one client and with
as many clients as the completions, and the floor, a completion's own
statements replayed through the bare driver with no application code (and on
PostgreSQL pipelined as well): what the database alone allows a completion.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.audit_bench import RESULTS, ROOT, database_url, in_processes, percentile, raw_writes

STEPS = 1500


def recipe_text(signs: bool) -> str:
    lines = [
        "format: batchline.recipe/1",
        "recipe: {code: BENCH-%s, name: Bench, product_code: BENCH, product_name: Bench, batch_size: {quantity: 1, unit: kg}}"
        % ("S" if signs else "U"),
        "operations:",
        "  - key: op",
        "    name: Operation",
        "    steps:",
    ]
    for i in range(STEPS):
        lines.append(
            f"      - {{key: s{i}, kind: data_entry, title: Step {i}, after: [], signs: {str(signs).lower()}, "
            f"inputs: [{{name: v{i}, label: Value {i}, unit: kg, plausible: {{low: 0, high: 100}}, "
            f"specification: {{low: 1, high: 2}}}}]}}"
        )
    return "\n".join(lines) + "\n"


def setup(signs: bool, batches: int) -> tuple[Any, list[str]]:
    """Users, an effective recipe of independent steps, and ``batches`` running batches with every step started."""
    from django.db import transaction
    from django.utils import timezone

    from batchline.accounts.seeding import account_seed
    from batchline.audit.services import SYSTEM, Actor, record_update
    from batchline.execution import services as ex
    from batchline.execution.models import BatchState, BatchStep, StepState
    from batchline.recipes import services as recipes
    from batchline.recipes.management.commands.recipe import cli_request
    from batchline.signatures.services import signer_authenticate

    def person(name: str, roles: list[str]) -> Any:
        from batchline.accounts.models import User

        existing = User.objects.filter(username=name).first()
        if existing:
            return existing
        return account_seed(
            actor=SYSTEM, username=name, full_name=name.title(), roles=roles, password="bench-password-1"
        )

    author, approver = person("author", ["recipe_author"]), person("approver", ["qa_approver"])
    supervisor, operator = person("supervisor", ["supervisor"]), person("operator", ["operator"])

    def sign(user: Any, meaning: str) -> Any:
        return signer_authenticate(
            request=cli_request(), username=user.username, password="bench-password-1", meaning=meaning
        )

    recipe = recipes.recipe_import(actor=Actor.of(author, via="cli"), text=recipe_text(signs))
    for who, command, meaning in (
        (author, "submit", "performed"),
        (approver, "approve", "approved"),
        (approver, "make_effective", "approved"),
    ):
        recipe = recipes.recipe_transition(
            actor=Actor.of(who, via="cli"), recipe=recipe, command=command, signer=sign(who, meaning)
        )
    numbers = []
    sup = Actor.of(supervisor, via="cli")
    for b in range(batches):
        number = f"{'S' if signs else 'U'}-{b}"
        batch = ex.batch_create(actor=sup, recipe=recipe, number=number, planned_quantity=Decimal(1))
        batch = ex.batch_command(
            actor=sup, batch=batch, command="release", signer=sign(supervisor, "performed")
        )
        # Start every step in bulk for the set-up only (not measured): the bench measures completion.
        # The batch runs, as ``step_start`` leaves it, so each completion also checks whether
        # it was the batch's last open step, as it does on the floor.
        with transaction.atomic():
            record_update(
                batch,
                actor=Actor.of(operator, via="cli"),
                values={"state": BatchState.RUNNING},
                action="start",
            )
            for step in BatchStep.objects.filter(batch=batch):
                record_update(
                    step,
                    actor=Actor.of(operator, via="cli"),
                    values={
                        "state": StepState.RUNNING,
                        "started_at": timezone.now(),
                        "started_by_id": operator.pk,
                    },
                )
        numbers.append(number)
    return operator, numbers


def complete_loop(number: str, seconds: float, signs: bool) -> tuple[int, float, list[float], list[float]]:
    """Completions for ``seconds``: their count, the time taken, each one's latency and its latency
    less the time spent inside the password hasher (the part a signature adds besides Argon2)."""
    from django.contrib.auth.hashers import Argon2PasswordHasher

    from batchline.accounts.models import User
    from batchline.audit.services import Actor
    from batchline.execution import services as ex
    from batchline.execution.models import Batch
    from batchline.recipes.management.commands.recipe import cli_request
    from batchline.signatures.services import signer_authenticate

    operator = User.objects.get(username="operator")
    actor = Actor.of(operator, via="cli")
    batch = Batch.objects.get(number=number)
    latencies: list[float] = []
    besides_hash: list[float] = []
    hashing = [0.0]
    verify = Argon2PasswordHasher.verify

    def timed_verify(self: Any, password: str, encoded: str) -> bool:
        t = time.perf_counter()
        try:
            return verify(self, password, encoded)
        finally:
            hashing[0] += time.perf_counter() - t

    Argon2PasswordHasher.verify = timed_verify  # type: ignore[method-assign]
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds and n < STEPS:
        hashing[0] = 0.0
        t0 = time.perf_counter()
        signer = (
            signer_authenticate(
                request=cli_request(), username="operator", password="bench-password-1", meaning="performed"
            )
            if signs
            else None
        )
        ex.step_complete(
            actor=actor, user=operator, batch=batch, step_key=f"s{n}", entries={f"v{n}": "1.5"}, signer=signer
        )
        latencies.append(time.perf_counter() - t0)
        besides_hash.append(latencies[-1] - hashing[0])
        n += 1
    Argon2PasswordHasher.verify = verify  # type: ignore[method-assign]
    return n, time.perf_counter() - start, latencies, besides_hash


def run(numbers: list[str], seconds: float, signs: bool) -> dict[str, Any]:
    if len(numbers) == 1:
        n, elapsed, lat, besides = complete_loop(numbers[0], seconds, signs)
        return {
            "clients": 1,
            "per_s": n / elapsed,
            "p50_ms": percentile(lat, 0.5),
            "p95_ms": percentile(lat, 0.95),
            "besides_hash_p50_ms": percentile(besides, 0.5),
        }
    results, wall = in_processes(lambda i: complete_loop(numbers[i], seconds, signs), len(numbers))
    latencies = [x for _, _, lat, _ in results for x in lat]
    besides = [x for _, _, _, b in results for x in b]
    return {
        "clients": len(numbers),
        "per_s": sum(n for n, _, _, _ in results) / wall,
        "p50_ms": percentile(latencies, 0.5),
        "p95_ms": percentile(latencies, 0.95),
        "besides_hash_p50_ms": percentile(besides, 0.5),
    }


def raw_concurrent(kind: str, seconds: float, clients: int) -> float:
    """The raw two-INSERT rate with ``clients`` processes at once, like for like with the completions at N."""
    from bench.audit_bench import raw_connection, raw_tables

    conn = raw_connection(kind)
    raw_tables(kind, conn)
    conn.close()
    counts, wall = in_processes(
        lambda i: raw_writes(kind, seconds, tag=f"raw{i}-", fresh=False) * seconds, clients
    )
    return sum(counts) / wall


def statement_floor(kind: str, number: str, seconds: float) -> dict[str, float]:
    """A completion's own statements, replayed through the bare driver: what the database alone costs.

    One completion runs through the service while its statements are captured;
    then the same statements, with the same parameters but each for the next
    step (its id and key, the new value's id), run through sqlite3 or psycopg
    with no application code around them: the rate a completion could reach if
    the gates, the canonical serialisation, the hashing and Django cost
    nothing. On PostgreSQL they are also sent pipelined, in the fewest round
    trips their dependencies allow (BEGIN; the lock and the step read; the value
    insert, whose id the entries name; the step update, the entries and COMMIT).
    The replayed entries repeat the captured entry's content: the bench
    database's trail is scratch, not a record.
    """
    import re

    from django.db import connection

    from batchline.accounts.models import User
    from batchline.audit.chain import _COLUMNS
    from batchline.audit.services import Actor
    from batchline.execution import services as ex
    from batchline.execution.models import Batch, BatchStep, StepValue
    from bench.audit_bench import PG_BENCH_DB, raw_connection

    # Rows and entries written behind the services' back belong in a scratch database only.
    name = str(connection.settings_dict["NAME"])
    if name != PG_BENCH_DB and not Path(name).resolve().is_relative_to(RESULTS.resolve()):
        raise SystemExit(f"the statement floor writes unaudited rows; {name} is not a bench database")
    batch = Batch.objects.get(number=number)
    operator = User.objects.get(username="operator")
    captured: list[tuple[str, Any, bool]] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        captured.append((sql, params, many))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        ex.step_complete(
            actor=Actor.of(operator, via="cli"),
            user=operator,
            batch=batch,
            step_key="s0",
            entries={"v0": "1.5"},
        )
    step_ids = dict(BatchStep.objects.filter(batch=batch).values_list("key", "id"))
    template_step = step_ids["s0"]
    template_value = StepValue.objects.get(step_id=template_step).pk
    connection.close()

    def columns(sql: str) -> list[str]:
        found = re.search(r"\(([^)]*)\) VALUES", sql)
        return [c.strip().strip('"') for c in found.group(1).split(",")] if found else []

    def ids(value: Any, step: int, value_id: int | None) -> Any:
        """A captured id of the template step or value, as the same id of the step replayed."""
        mapping = {template_step: step, template_value: value_id}
        if isinstance(value, list):
            return [ids(v, step, value_id) for v in value]
        if isinstance(value, str) and value.isdigit() and int(value) in mapping:
            return str(mapping[int(value)])
        return mapping.get(value, value) if isinstance(value, int) else value

    positions = itertools.count(10**12)  # chain positions of the replayed entries, clear of the real ones

    def bind(sql: str, params: Any, key: str, step: int, value_id: int | None) -> list[Any]:
        """The captured parameters for step ``key``: its key, its id, and the ids the entries name."""
        params = list(params or ())
        if sql.lstrip().startswith("INSERT"):
            cols = columns(sql)
            for name in ("step_id", "record_id"):
                if name in cols:
                    params[cols.index(name)] = ids(params[cols.index(name)], step, value_id)
            if "seq" in cols:  # SQLite: an entry's chain position is unique
                params[cols.index("seq")] = next(positions)
        elif sql.lstrip().startswith("UPDATE"):
            params[-1] = ids(params[-1], step, value_id)
        elif "audit_append" in sql:
            record = _COLUMNS.index("record_id")
            params[record] = ids(params[record], step, value_id)
        else:  # the reads name the step by key
            params = [key if p == "s0" else p for p in params]
        return params

    inserts_value = [
        i for i, (sql, _, _) in enumerate(captured) if "execution_stepvalue" in sql.split("(")[0]
    ]
    assert len(inserts_value) == 1, "the floor replays a completion that writes one value"
    cut = inserts_value[0]
    conn = raw_connection(kind)
    results: dict[str, float] = {}
    n = 1

    def loop(run: Any, last: int = STEPS) -> float:
        """``run`` on the next steps up to ``last``, for ``seconds`` at most; per second."""
        nonlocal n
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds and n < last:
            run(f"s{n}", step_ids[f"s{n}"])
            n, done = n + 1, done + 1
        return done / (time.perf_counter() - start)

    if kind == "sqlite":
        qmark = [
            (re.sub(r"(?<!%)%s", "?", sql).replace("%%", "%"), params, many) for sql, params, many in captured
        ]

        def sqlite_one(key: str, step: int) -> None:
            value_id = None  # (the captured statements begin with Django's BEGIN IMMEDIATE)
            for i, (sql, params, many) in enumerate(qmark):
                if many:
                    conn.executemany(sql, [bind(sql, p, key, step, value_id) for p in params])
                    continue
                cur = conn.execute(sql, bind(sql, params, key, step, value_id))
                cur.fetchall()
                if i == cut:
                    value_id = cur.lastrowid
            conn.execute("COMMIT")

        results["statements_per_s"] = loop(sqlite_one)
    else:

        def pg_one(key: str, step: int) -> None:
            value_id = None
            with conn.cursor() as cur:
                for i, (sql, params, _) in enumerate(captured):
                    cur.execute(sql, bind(sql, params, key, step, value_id))
                    rows = cur.fetchall() if cur.description else None
                    if i == cut:
                        value_id = rows[0][0]
            conn.commit()

        def pg_pipelined(key: str, step: int) -> None:
            with conn.pipeline():
                cursors = [conn.cursor() for _ in captured[:cut]]
                for cur, (sql, params, _) in zip(cursors, captured[:cut], strict=True):
                    cur.execute(sql, bind(sql, params, key, step, None))
                for cur in cursors:
                    cur.fetchall()
                with conn.cursor() as cur:
                    sql, params, _ = captured[cut]
                    cur.execute(sql, bind(sql, params, key, step, None))
                    value_id = cur.fetchone()[0]
                for sql, params, _ in captured[cut + 1 :]:
                    conn.cursor().execute(sql, bind(sql, params, key, step, value_id))
                conn.commit()

        # Each way gets half of the batch's steps: a step is completed once.
        results["statements_per_s"] = loop(pg_one, STEPS // 2)
        results["pipelined_per_s"] = loop(pg_pipelined)
    conn.close()
    return results


def password_hash_ms() -> float:
    from django.contrib.auth.hashers import check_password, make_password

    encoded = make_password("bench-password-1")
    t0 = time.perf_counter()
    for _ in range(20):
        check_password("bench-password-1", encoded)
    return (time.perf_counter() - t0) / 20 * 1000


def run_child(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchline.settings")
    import django

    django.setup()
    kind = args.child
    result: dict[str, Any] = {
        "raw_per_s": raw_writes(kind, args.seconds),
        f"raw_{args.clients}_per_s": raw_concurrent(kind, args.seconds, args.clients),
        "password_hash_ms": password_hash_ms(),
    }
    for signs in (False, True):
        # One batch for the single client, one for each of the others, and (unsigned) one for the floor.
        _, numbers = setup(signs, args.clients + 1 + (0 if signs else 1))
        if not signs:
            result["floor"] = statement_floor(kind, numbers.pop(), args.seconds)
        label = "signed" if signs else "unsigned"
        result[f"{label}_1"] = run(numbers[:1], args.seconds, signs)
        result[f"{label}_{args.clients}"] = (
            run(numbers[1:], args.seconds, signs) if args.clients > 1 else None
        )
    print(json.dumps(result))


def run_parent(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = {}
    for kind in args.databases.split(","):
        url = database_url(kind)
        env = {**os.environ, "DATABASE_URL": url, "BATCHLINE_HOME": str(RESULTS / "home")}
        subprocess.run(
            [sys.executable, "-m", "batchline.cli", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT
        )
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.execution_bench",
                "--child",
                kind,
                "--seconds",
                str(args.seconds),
                "--clients",
                str(args.clients),
            ],
            env=env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    (RESULTS / "execution.json").write_text(json.dumps(results, indent=2))
    print(
        f"\nStep completions ({os.cpu_count()} cores); each rate beside the raw two-INSERT rate of the same run"
        " with as many clients\n"
    )
    for kind, r in results.items():
        raw = {1: r["raw_per_s"], args.clients: r[f"raw_{args.clients}_per_s"]}
        floor = r["floor"]
        print(
            f"[{kind}]  raw two-INSERT transactions {raw[1]:,.0f}/s (1 client), {raw[args.clients]:,.0f}/s"
            f" ({args.clients} clients); one Argon2 password check {r['password_hash_ms']:.1f} ms"
        )
        line = (
            f"  a completion's own statements through the bare driver {floor['statements_per_s']:,.0f}/s"
            f" ({floor['statements_per_s'] / raw[1]:.0%} of raw)"
        )
        if "pipelined_per_s" in floor:
            line += f", pipelined {floor['pipelined_per_s']:,.0f}/s ({floor['pipelined_per_s'] / raw[1]:.0%})"
        print(line)
        for key in ("unsigned_1", f"unsigned_{args.clients}", "signed_1", f"signed_{args.clients}"):
            x = r.get(key)
            if x:
                line = (
                    f"  {key:<12} {x['per_s']:>8,.0f}/s  {x['per_s'] / raw[x['clients']]:6.0%} of raw"
                    f"   p50 {x['p50_ms']:6.2f} ms   p95 {x['p95_ms']:6.2f} ms"
                )
                if x["clients"] > 1:
                    line += f"   ({x['per_s'] / raw[1]:.0%} of raw at 1 client)"
                if key == "unsigned_1":
                    line += f"   {x['per_s'] / floor['statements_per_s']:.0%} of its statements' rate"
                if key.startswith("signed"):
                    besides = x["besides_hash_p50_ms"]
                    line += f"   besides the hash p50 {besides:5.2f} ms ({besides / r['password_hash_ms']:.1%} of a hash)"
                print(line)
        print()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    run_child(args) if args.child else run_parent(args)


if __name__ == "__main__":
    main()
