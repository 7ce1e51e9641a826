"""ERP inbound: orders per second end to end, beside lxml's parse-and-validate of the same documents.

    ./dev bench integration                              # SQLite and PostgreSQL, 300 orders per recipe
    ./dev bench integration --databases sqlite --orders 100

For each database, in a fresh bench database (``bench/results/integration.sqlite3``,
PostgreSQL ``$BATCHLINE_BENCH_PG_DB``, default ``batchline_bench``):

1. people, the ERP interface's account and two effective recipes made through the
   real services, signed: a short one (4 material steps) and the demo's paracetamol
   tablets (the recipe the demo runs), with every material they charge;
2. ``--orders`` ProcessOperationsSchedule documents per recipe, one order each, with
   its bill of materials, each under its own BODID;
3. the baseline, same run, same documents: lxml parses each with the inbound's own
   parser and validates it against the compiled B2MML schema, nothing else;
4. end to end: ``erp.inbound.receive`` of each document (size check, parse, schema,
   BODID, the order judged against the effective recipe and its bill of materials,
   the batch created with its control recipe, steps and output lot, the message and
   its ConfirmBOD kept, every record audited), one transaction per message, one client.

Prints both rates and their ratio (the target is 30 %). Machines here are shared and
noisy: compare the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.audit_bench import RESULTS, ROOT, database_url

PASSWORD = "bench-password-1"
SHORT = """\
format: batchline.recipe/1
recipe:
  code: BENCH-ERP
  name: ERP bench tablets
  product_code: BENCHERP
  product_name: ERP bench tablets
  batch_size: {quantity: 1000, unit: tablet}
operations:
  - key: disp
    name: Dispensing
    steps:
      - {key: disp_a, kind: weigh_dispense, title: Dispense A, material: {code: BENCH-A, quantity: 2, unit: kg, tolerance_percent: 1}}
      - {key: disp_b, kind: weigh_dispense, title: Dispense B, material: {code: BENCH-B, quantity: 1, unit: kg, tolerance_percent: 1}}
  - key: blend
    name: Blending
    steps:
      - {key: charge_a, kind: material_charge, title: Charge A, material: {code: BENCH-A, quantity: 2, unit: kg, tolerance_percent: 1, dispensed: disp_a}}
      - {key: charge_b, kind: material_charge, title: Charge B, material: {code: BENCH-B, quantity: 1, unit: kg, tolerance_percent: 1, dispensed: disp_b}}
"""
DEMO = Path(ROOT, "src", "batchline", "recipes", "demo", "paracetamol-500.yaml")


def run_parent(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for kind in args.databases.split(","):
        url = database_url(kind, sqlite_name="integration.sqlite3")
        anchor = RESULTS / f"anchor-integration-{kind}.jsonl"
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
        child = [sys.executable, "-m", "bench.integration", "--child", kind, "--orders", str(args.orders)]
        out = subprocess.run(child, env=env, check=True, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    (RESULTS / "integration.json").write_text(json.dumps(results, indent=2))
    report(results)


def report(results: dict[str, Any]) -> None:
    print(
        f"\nERP inbound, ProcessOperationsSchedule ({os.cpu_count()} cores); baseline of the same run beside\n"
    )
    for kind, by_recipe in results.items():
        print(f"[{kind}]")
        for label, r in by_recipe.items():
            ratio = r["end_to_end_per_s"] / r["parse_validate_per_s"]
            print(
                f"  {label}: {r['orders']} orders of {r['bytes']:,} bytes, {r['steps']} steps per batch\n"
                f"    lxml parse + validate alone     {r['parse_validate_per_s']:>9,.0f}/s\n"
                f"    receive() end to end            {r['end_to_end_per_s']:>9,.1f}/s   "
                f"(p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms)\n"
                f"    ratio                           {ratio:>9.1%}   (target 30 %)"
            )
        print()
    print(f"(figures also in {RESULTS / 'integration.json'})")


# --- the child ------------------------------------------------------------------------------


def _person(username: str, roles: list[str], full_name: str = "") -> Any:
    from batchline.accounts.models import User
    from batchline.accounts.seeding import account_seed
    from batchline.audit.services import SYSTEM

    found = User.objects.filter(username=username).first()
    return found or account_seed(
        actor=SYSTEM,
        username=username,
        full_name=full_name or username.title(),
        roles=roles,
        password=PASSWORD,
    )


def _effective(text: str, author: Any, approver: Any) -> Any:
    from batchline.accounts.management.cli import cli_request
    from batchline.audit.services import Actor
    from batchline.recipes import services as recipes
    from batchline.signatures.services import signer_authenticate

    recipe = recipes.recipe_import(actor=Actor.of(author, via="cli"), text=text)
    for who, command, meaning in (
        (author, "submit", "performed"),
        (approver, "approve", "approved"),
        (approver, "make_effective", "approved"),
    ):
        signer = signer_authenticate(
            request=cli_request(), username=who.username, password=PASSWORD, meaning=meaning
        )
        recipe = recipes.recipe_transition(
            actor=Actor.of(who, via="cli"), recipe=recipe, command=command, signer=signer
        )
    return recipe


def _materials(recipe: Any, admin: Any) -> None:
    from batchline.audit.services import Actor
    from batchline.erp.orders import recipe_charges
    from batchline.materials import services as stock
    from batchline.materials.models import Material

    for code, charges in recipe_charges(recipe.document).items():
        if not Material.objects.filter(code=code).exists():
            unit = charges[0].unit if charges else "kg"
            stock.material_create(
                actor=Actor.of(admin, via="cli"), code=code, name=f"Bench {code}", kind="excipient", unit=unit
            )


def document(recipe: Any, n: int, prefix: str) -> bytes:
    """One ProcessOperationsSchedule for the recipe's batch size, its bill of materials as the recipe charges."""
    from batchline.erp.orders import recipe_charges

    ns = "http://www.mesa.org/xml/B2MML"
    size = format(recipe.nominal_quantity.normalize(), "f")
    needs = [
        f"<MaterialRequirement><ID>OUT</ID><MaterialDefinitionID>{recipe.product.code}</MaterialDefinitionID>"
        f"<MaterialLotID>{prefix}-{n:06d}</MaterialLotID><MaterialUse>Produced</MaterialUse><Quantity>"
        f"<QuantityString>{size}</QuantityString><UnitOfMeasure>{recipe.nominal_unit}</UnitOfMeasure>"
        "</Quantity></MaterialRequirement>"
    ]
    for i, (code, charges) in enumerate(sorted(recipe_charges(recipe.document).items()), 1):
        total = sum((c.quantity for c in charges), Decimal(0))
        unit = charges[0].unit if charges else "kg"
        needs.append(
            f"<MaterialRequirement><ID>{i:04d}</ID><MaterialDefinitionID>{code}</MaterialDefinitionID>"
            f"<MaterialUse>Consumed</MaterialUse><Quantity><QuantityString>{format(total.normalize(), 'f')}"
            f"</QuantityString><UnitOfMeasure>{unit}</UnitOfMeasure></Quantity></MaterialRequirement>"
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ProcessOperationsSchedule xmlns="{ns}" releaseID="7.0">'
        "<ApplicationArea><Sender><LogicalID>SAP-PRD-100</LogicalID></Sender>"
        f"<CreationDateTime>2026-12-07T08:00:00Z</CreationDateTime><BODID>{prefix}-BOD-{n:06d}</BODID>"
        "</ApplicationArea><DataArea><Process/><OperationsSchedule><ID>SCHED</ID><OperationsRequest>"
        f"<ID>{prefix}-{n:06d}</ID><StartTime>2026-12-08T06:00:00Z</StartTime><EndTime>2026-12-08T18:00:00Z"
        f"</EndTime><OperationsDefinitionID>{recipe.code}</OperationsDefinitionID><SegmentRequirement><ID>0010</ID>"
        f"<ProcessSegmentID>MAKE</ProcessSegmentID><OperationsDefinitionID>{recipe.code}</OperationsDefinitionID>"
        f"<OperationsSegmentID>0010</OperationsSegmentID>{''.join(needs)}</SegmentRequirement></OperationsRequest>"
        "</OperationsSchedule></DataArea></ProcessOperationsSchedule>"
    ).encode()


def measure(recipe: Any, erp: Any, orders: int, prefix: str) -> dict[str, Any]:
    from lxml import etree

    from batchline.audit.services import Actor
    from batchline.erp import inbound
    from batchline.masterdata.imports import b2mml_schema, xml_parser

    docs = [document(recipe, n, prefix) for n in range(orders)]
    schema = b2mml_schema()
    rounds = 5  # the baseline is fast: several passes, so its time is not all start-up
    t0 = time.perf_counter()
    for _ in range(rounds):
        for doc in docs:
            assert schema.validate(etree.fromstring(doc, xml_parser()))
    baseline = rounds * len(docs) / (time.perf_counter() - t0)
    actor = Actor.of(erp, via="cli")
    inbound.receive(document(recipe, orders, f"{prefix}W"), transport="bench", actor=actor)  # warm caches
    took = []
    t0 = time.perf_counter()
    for doc in docs:
        t = time.perf_counter()
        reply = inbound.receive(doc, transport="bench", actor=actor)
        took.append(time.perf_counter() - t)
        assert reply.state == "applied", reply.words
    end_to_end = len(docs) / (time.perf_counter() - t0)
    took.sort()
    return {
        "orders": orders,
        "bytes": len(docs[0]),
        "steps": sum(len(op["steps"]) for op in recipe.document["operations"]),
        "parse_validate_per_s": baseline,
        "end_to_end_per_s": end_to_end,
        "p50_ms": took[len(took) // 2] * 1000,
        "p95_ms": took[int(len(took) * 0.95)] * 1000,
    }


def run_child(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchline.settings")
    import django

    django.setup()
    author, approver = _person("author", ["recipe_author"]), _person("approver", ["qa_approver"])
    admin = _person("admin", ["administrator"])
    erp = _person("erp-bench", ["erp_interface"], "ERP bench (interface)")
    out = {}
    for label, text, prefix in (("short recipe", SHORT, "S"), ("demo recipe", DEMO.read_text(), "D")):
        recipe = _effective(text, author, approver)
        _materials(recipe, admin)
        out[f"{label} {recipe.code}"] = measure(recipe, erp, args.orders, prefix)
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--orders", type=int, default=300, help="orders per recipe")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    run_child(args) if args.child else run_parent(args)


if __name__ == "__main__":
    main()
