"""Review by exception of a long batch: the completeness check and the review screen's reads.

    ./dev bench review                      # SQLite and PostgreSQL
    ./dev bench review --databases postgresql --steps 1000 --values 20

A batch of ``--steps`` data-entry steps with ``--values`` recorded values each
(1,000 × 20 = 20,000 values by default) is executed through the services
(every value judged and audited; every 50th step has a value out of
specification, every 10th a critical process parameter, a few corrections),
then timed: ``quality.selectors.completeness`` and ``review_screen`` (which
includes the completeness check) and the review page over HTTP (Django's test
client, so template rendering and the session are in it, the network is not).
Baseline of the same run: one raw statement that reads every recorded value of
the batch (what reading the whole record costs at the least), on the bare
driver. The query counts are printed beside: they must not depend on the
number of values.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

from bench.audit_bench import RESULTS, ROOT, database_url, percentile, raw_connection

PASSWORD = "bench-password-1"


def recipe_text(steps: int, values: int) -> str:
    lines = [
        "format: batchline.recipe/1",
        "recipe: {code: REVIEW, name: Review bench, product_code: RB, product_name: Review bench, "
        "batch_size: {quantity: 1, unit: kg}}",
        "operations:",
        "  - key: op",
        "    name: Operation",
        "    steps:",
    ]
    for i in range(steps):
        inputs = ", ".join(
            f"{{name: v{i}_{j}, label: Value {i}.{j}, unit: kg, plausible: {{low: 0, high: 100}}, "
            f"specification: {{low: 1, high: 2}}{', critical: true' if j == 0 and i % 10 == 0 else ''}}}"
            for j in range(values)
        )
        lines.append(
            f"      - {{key: s{i}, kind: data_entry, title: Step {i}, after: [], inputs: [{inputs}]}}"
        )
    return "\n".join(lines) + "\n"


def person(name: str, roles: list[str]) -> Any:

    from batchline.accounts.seeding import account_seed
    from batchline.audit.services import SYSTEM

    return account_seed(actor=SYSTEM, username=name, full_name=name.title(), roles=roles, password=PASSWORD)


def sign(user: Any, meaning: str) -> Any:
    from batchline.recipes.management.commands.recipe import cli_request
    from batchline.signatures.services import signer_authenticate

    return signer_authenticate(
        request=cli_request(), username=user.username, password=PASSWORD, meaning=meaning
    )


def setup(steps: int, values: int) -> tuple[Any, Any, float]:
    """People, an effective recipe and one executed batch; returns the batch, the reviewer, set-up seconds."""
    from batchline.audit.services import Actor
    from batchline.execution import services as ex
    from batchline.recipes import services as recipes

    t0 = time.perf_counter()
    author, approver = person("author", ["recipe_author"]), person("approver", ["qa_approver"])
    supervisor, operator = person("supervisor", ["supervisor"]), person("operator", ["operator"])
    reviewer = person("reviewer", ["qa_reviewer"])
    recipe = recipes.recipe_import(actor=Actor.of(author, via="cli"), text=recipe_text(steps, values))
    for who, command, meaning in (
        (author, "submit", "performed"),
        (approver, "approve", "approved"),
        (approver, "make_effective", "approved"),
    ):
        recipe = recipes.recipe_transition(
            actor=Actor.of(who, via="cli"), recipe=recipe, command=command, signer=sign(who, meaning)
        )
    sup, op = Actor.of(supervisor, via="cli"), Actor.of(operator, via="cli")
    batch = ex.batch_create(actor=sup, recipe=recipe, number="R-1", planned_quantity=Decimal(1))
    batch = ex.batch_command(actor=sup, batch=batch, command="release", signer=sign(supervisor, "performed"))
    # The first steps run through the services (exceptions, critical values, corrections, all
    # audited); the bulk of the record is then written straight into the tables: this bench
    # times reading a long record, and executing 20,000 values takes minutes of set-up.
    served = min(steps, 60)
    corrected = set(range(0, served - 1, 6))
    for i in range(served):
        ex.step_start(actor=op, user=operator, batch=batch, step_key=f"s{i}")
        entries = {f"v{i}_{j}": ("3" if i % 50 == 7 and j == 1 else "1.5") for j in range(values)}
        ex.step_complete(actor=op, user=operator, batch=batch, step_key=f"s{i}", entries=entries)
        if i in corrected and i < steps - 1:  # corrected before the last step ends the batch
            ex.value_correct(
                actor=op,
                user=operator,
                batch=batch,
                step_key=f"s{i}",
                name=f"v{i}_{values - 1}",
                text="1.6",
                reason="transcription error",
                signer=sign(operator, "performed"),
            )
    if served < steps:
        bulk_complete(batch, operator, range(served, steps), values)
    batch.refresh_from_db()
    assert batch.state == "complete", batch.state
    return batch, reviewer, time.perf_counter() - t0


def bulk_complete(batch: Any, operator: Any, indexes: range, values: int) -> None:
    """Steps done and their values recorded by plain SQL (set-up only: no audit entries for these rows)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from batchline.execution.models import BatchState, BatchStep, StepValue

    now = timezone.now()
    fields = [f for f in StepValue._meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    insert = (
        f"INSERT INTO {StepValue._meta.db_table} ({', '.join(qn(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    with transaction.atomic(), connection.cursor() as cur:
        keys = [f"s{i}" for i in indexes]
        ids = dict(BatchStep.objects.filter(batch=batch, key__in=keys).values_list("key", "id"))
        cur.execute(
            f"UPDATE {BatchStep._meta.db_table} SET state = %s, started_at = %s, started_by_id = %s, "
            "completed_at = %s, completed_by_id = %s WHERE batch_id = %s AND state <> %s",
            ["done", now, operator.pk, now, operator.pk, batch.pk, "done"],
        )
        rows = []
        for i in indexes:
            for j in range(values):
                row = {
                    "step_id": ids[f"s{i}"],
                    "name": f"v{i}_{j}",
                    "label": f"Value {i}.{j}",
                    "source": "entered",
                    "text": "1.5",
                    "number": Decimal("1.5"),
                    "unit": "kg",
                    "in_specification": True,
                    "within_action": None,
                    "critical": False,
                    "entered_by_id": operator.pk,
                    "entered_at": now,
                    "corrects_id": None,
                    "reason": "",
                }
                rows.append([f.get_db_prep_save(row[f.attname], connection) for f in fields])
        cur.executemany(insert, rows)
        cur.execute(
            f"UPDATE {batch._meta.db_table} SET state = %s WHERE id = %s",
            [BatchState.COMPLETE, batch.pk],
        )


def timed(fn: Any, rounds: int) -> tuple[list[float], int]:
    from django.db import connection, reset_queries

    latencies = []
    queries = 0
    for _ in range(rounds):
        reset_queries()
        t = time.perf_counter()
        fn()
        latencies.append(time.perf_counter() - t)
        queries = len(connection.queries)
    return latencies, queries


def run_child(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchline.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from batchline.execution.models import StepValue
    from batchline.quality import selectors

    batch, reviewer, setup_s = setup(args.steps, args.values)
    recorded = StepValue.objects.filter(step__batch=batch).count()
    settings.DEBUG = True  # so the connection keeps its queries for counting
    connection.force_debug_cursor = True

    raw = raw_connection(args.child)
    sql = (
        "SELECT v.id, v.name, v.text, v.unit, v.in_specification FROM execution_stepvalue v "
        "JOIN execution_batchstep s ON s.id = v.step_id WHERE s.batch_id = %s"
    )
    if args.child == "sqlite":
        sql = sql.replace("%s", "?")

    def raw_read() -> None:
        cur = raw.cursor()
        cur.execute(sql, (batch.pk,))
        assert len(cur.fetchall()) == recorded

    raw_lat = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        raw_read()
        raw_lat.append(time.perf_counter() - t)

    result: dict[str, Any] = {"steps": args.steps, "values": recorded, "setup_s": setup_s}
    result["raw_all_values"] = {
        "p50_ms": percentile(raw_lat, 0.5),
        "p95_ms": percentile(raw_lat, 0.95),
    }
    for name, fn in (
        ("completeness", lambda: selectors.completeness(batch)),
        ("review_screen", lambda: selectors.review_screen(batch, qp_required=False)),
    ):
        lat, queries = timed(fn, args.rounds)
        result[name] = {
            "p50_ms": percentile(lat, 0.5),
            "p95_ms": percentile(lat, 0.95),
            "queries": queries,
        }
    client = Client()
    client.force_login(reviewer)
    url = f"/batches/{batch.number}/review/"
    if client.get(url).status_code == 200:

        def page() -> None:
            assert client.get(url).status_code == 200

        lat, queries = timed(page, args.rounds)
        result["review_page"] = {
            "p50_ms": percentile(lat, 0.5),
            "p95_ms": percentile(lat, 0.95),
            "queries": queries,
        }
    print(json.dumps(result))


def run_parent(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = {}
    for kind in args.databases.split(","):
        url = database_url(kind, "review.sqlite3")
        env = {**os.environ, "DATABASE_URL": url, "BATCHLINE_HOME": str(RESULTS / "home")}
        subprocess.run(
            [sys.executable, "-m", "batchline.cli", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT
        )
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.review_bench",
                "--child",
                kind,
                "--steps",
                str(args.steps),
                "--values",
                str(args.values),
                "--rounds",
                str(args.rounds),
            ],
            env=env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    (RESULTS / "review.json").write_text(json.dumps(results, indent=2))
    print(f"\nReview by exception ({os.cpu_count()} cores), target under 200 ms\n")
    for kind, r in results.items():
        print(f"[{kind}]  {r['steps']} steps, {r['values']:,} recorded values (set-up {r['setup_s']:.0f} s)")
        base = r["raw_all_values"]
        print(
            f"  {'raw read of every value':<26} p50 {base['p50_ms']:7.1f} ms   p95 {base['p95_ms']:7.1f} ms"
        )
        for key in ("completeness", "review_screen", "review_page"):
            if x := r.get(key):
                print(
                    f"  {key:<26} p50 {x['p50_ms']:7.1f} ms   p95 {x['p95_ms']:7.1f} ms   {x['queries']} queries"
                )
        print()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--values", type=int, default=20, help="recorded values per step")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    run_child(args) if args.child else run_parent(args)


if __name__ == "__main__":
    main()
