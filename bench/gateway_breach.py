"""A limit breach from the machine to the exception on the batch, end to end (issue 15; see bench/gateway.py).

    python -m bench.gateway_breach run --breaches 20 --outside 5     # DATABASE_URL: a migrated, empty database
    python -m bench.gateway_breach plant --port P                    # the OPC UA server, started by ``run``

The issue asks: a limit breach during a running step is an exception in under 2 s; the same breach
outside any running step is a stored value and no exception. ``run`` sets up what an installation
has, through the services: a site, a fluid-bed dryer, the demo's endpoint and tags for the plant
simulator (``gateway.demo.seed``: the engineer's signed request, the QA approver's signed approval),
an effective recipe whose two instruction steps each watch the dryer's inlet air temperature
(critical, specification 50–70 °C, no minimum duration), and a released batch with the dryer
identified. The plant simulator (``gateway.opcua_sim.PlantSimulator``) runs in a process of its own
(this module's ``plant``), and the gateway runs here as ``batchline gateway`` runs it: the
configuration from ``gateway.selectors.connections``, ``runner.Gateway`` with the OPC UA adapter,
``live.LiveJudging`` as its stored and round hooks. A driver thread, with a database connection of
its own, plays the operator and watches the database:

1. **outside**: the first monitored step started, read and completed; once the judge has let it go
   (its next status round), ``--outside`` breaches: each held until its value is stored, then
   cleared. Counted: breach values stored, exceptions and alarms raised (expected: none).
2. **running**: the second monitored step started; once the judge watches it (its first value is
   on the record), ``--breaches`` breaches, each a distinct value above 70 °C held until the
   ``CRITICAL_OUT_OF_SPECIFICATION`` exception is visible to the driver, then cleared and the
   clearing awaited, so that each breach raises anew. Per breach, from the breaching value's
   SourceTimestamp at the server (the alarm's ``at``: the judge dates an alarm by the value that
   began it): to the exception's ``at`` (stamped in the transaction that commits it) and to the
   moment the driver, polling every ``POLL_S``, first sees it committed.

Also measured: how long after its start a step is first judged (the judge learns which steps run
at the gateway's status round, ``BATCHLINE_GATEWAY_STATUS_SECONDS``), and how long after its
completion a step stops being judged. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from bench.audit_bench import ROOT
from bench.gateway_peers import free_port

POLL_S = 0.01
PASSWORD = "bench-password-1"
TAG = "InletTemperature"  # the simulator's node name; the recipe's monitor reads it as dryer_inlet_temp
SPEC_HIGH = Decimal(70)
T = TypeVar("T")

MONITOR = (
    '{name: dryer_inlet_temp, label: Inlet air temperature, unit: "°C", equipment: dryer, '
    "specification: {low: 50, high: 70}, action: {low: 55, high: 65}, deadband: 0.5, critical: true}"
)
RECIPE = f"""\
format: batchline.recipe/1
recipe: {{code: BREACH-1, name: Breach bench, product_code: BRT, product_name: Breach bench granules, batch_size: {{quantity: 10, unit: kg}}}}
operations:
  - key: dry
    name: Drying
    steps:
      - {{key: dryer, kind: equipment_id, title: Identify the dryer, equipment_class: FBD}}
      - {{key: drying, kind: instruction, title: Dry the granules, monitors: [{MONITOR}]}}
"""


def quantiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p95 and max of ``values`` (nearest rank), None for each when there are none."""
    if not values:
        return {"p50": None, "p95": None, "max": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(len(ordered) * q) - 1)]

    return {"p50": rank(0.50), "p95": rank(0.95), "max": ordered[-1]}


def wait_for(found: Callable[[], T | None], seconds: float, what: str) -> T:
    """Poll ``found`` every ``POLL_S`` until it gives something; a bench that waits longer failed."""
    deadline = time.monotonic() + seconds
    while True:
        value = found()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"waited {seconds:g} s for {what}")
        time.sleep(POLL_S)


# --- the OPC UA server, a process of its own ------------------------------------------------------


async def plant_serve(port: int) -> None:
    """The plant simulator; stdin lines ``hold <value>`` and ``clear`` move its inlet temperature."""
    from batchline.gateway.opcua_sim import PlantSimulator

    simulator = PlantSimulator(port=port)
    await simulator.start()
    running = asyncio.create_task(simulator.run(period_s=0.2))
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    try:
        while line := (await loop.run_in_executor(None, sys.stdin.readline)).split():
            simulator.excursion(TAG, float(line[1]) if line[0] == "hold" else None)
            print("ok", flush=True)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await simulator.stop()


class Plant:
    def __init__(self, port: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.gateway_breach", "plant", "--port", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        if self.stdout.readline().strip() != "ready":
            raise RuntimeError("the plant simulator did not start")

    def say(self, line: str) -> None:
        self.stdin.write(line + "\n")
        self.stdin.flush()
        if self.stdout.readline().strip() != "ok":
            raise RuntimeError(f"the plant simulator did not take {line!r}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the installation ----------------------------------------------------------------------------


def setup(port: int) -> dict[str, Any]:
    """People, the dryer, the endpoint and tags (two-person), the recipe, a released batch."""
    from django.db import transaction

    from batchline.accounts.management.cli import cli_request
    from batchline.accounts.seeding import account_seed
    from batchline.audit.services import SYSTEM, Actor, record_create
    from batchline.equipment import services as eq
    from batchline.equipment.models import Site
    from batchline.execution import services as ex
    from batchline.gateway import demo
    from batchline.materials import services as stock
    from batchline.recipes import services as recipes
    from batchline.signatures.services import signer_authenticate

    people = {
        name: account_seed(
            actor=SYSTEM, username=name, full_name=name.title(), roles=[role], password=PASSWORD
        )
        for name, role in (
            ("author", "recipe_author"),
            ("approver", "qa_approver"),
            ("supervisor", "supervisor"),
            ("operator", "operator"),
            ("engineer", "administrator"),
        )
    }
    actor = {name: Actor.of(user, via="cli") for name, user in people.items()}

    def sign(who: Actor, meaning: str) -> Any:
        return signer_authenticate(
            request=cli_request(), username=who.username, password=PASSWORD, meaning=meaning
        )

    with transaction.atomic():
        site = record_create(Site(code="bench", name="Bench plant"), actor=actor["engineer"])
    fbd = eq.equipment_class_create(actor=actor["engineer"], code="FBD", name="Fluid-bed dryer")
    eq.equipment_create(
        actor=actor["engineer"], site=site, code="FBD-01", name="Dryer 1", equipment_class=fbd
    )
    demo.seed(actor["engineer"], approver=actor["approver"], sign=sign, port=port)

    recipe = recipes.recipe_import(actor=actor["author"], text=RECIPE)
    for who, command, meaning in (
        ("author", "submit", "performed"),
        ("approver", "approve", "approved"),
        ("approver", "make_effective", "approved"),
    ):
        recipe = recipes.recipe_transition(
            actor=actor[who], recipe=recipe, command=command, signer=sign(actor[who], meaning)
        )
    stock.material_create(
        actor=actor["author"],
        code="BRT",
        name="Breach bench granules",
        kind="finished",
        unit="kg",
        shelf_life_days=730,
    )
    operator = people["operator"]

    def batch(number: str) -> Any:
        """A released batch with the dryer cleaned and identified, its drying step not yet started."""
        eq.cleaning_start(actor=actor["operator"], code="FBD-01")
        eq.cleaning_end(actor=actor["operator"], code="FBD-01")
        made = ex.batch_create(
            actor=actor["supervisor"], recipe=recipe, number=number, planned_quantity=Decimal(10)
        )
        made = ex.batch_command(
            actor=actor["supervisor"],
            batch=made,
            command="release",
            signer=sign(actor["supervisor"], "performed"),
        )
        ex.step_start(actor=actor["operator"], user=operator, batch=made, step_key="dryer")
        ex.step_scan(actor=actor["operator"], user=operator, batch=made, step_key="dryer", scan="EQ:FBD-01")
        ex.step_complete(actor=actor["operator"], user=operator, batch=made, step_key="dryer")
        return made

    return {"batch": batch, "operator": operator, "actor": actor["operator"]}


# --- the driver: the operator's actions and what the database shows ------------------------------


def driver(plant: Plant, judge: Any, s: dict[str, Any], breaches: int, outside: int) -> dict[str, Any]:
    from django.db import connections

    try:
        return _drive(plant, judge, s, breaches, outside)
    finally:
        connections.close_all()


def _step_watched(step_id: int) -> dt.datetime | None:
    """When the judge took the step's first value (it judges the step from then on)."""
    from batchline.execution.models import ProcessAlarm

    first = ProcessAlarm.objects.filter(step_id=step_id, event="first value").first()
    return None if first is None else first.at


def _drive(plant: Plant, judge: Any, s: dict[str, Any], breaches: int, outside: int) -> dict[str, Any]:
    from batchline.execution import services as ex
    from batchline.execution.models import BatchException, BatchStep, ProcessAlarm
    from batchline.gateway.models import StoredReading

    new_batch, operator, actor = s["batch"], s["operator"], s["actor"]
    rng = random.Random(15)

    def start(batch: Any) -> BatchStep:
        ex.step_start(actor=actor, user=operator, batch=batch, step_key="drying")
        return BatchStep.objects.get(batch=batch, key="drying")

    def watching(step_id: int) -> bool:
        return any(k[0] == step_id for k in list(judge.judging._judges))

    def stored(value: float, after: dt.datetime) -> StoredReading | None:
        return StoredReading.objects.filter(unit="FBD-01", value_num=value, source_time__gte=after).first()

    def stored_in_range(after: dt.datetime) -> StoredReading | None:
        return StoredReading.objects.filter(
            unit="FBD-01", tag__endswith=TAG, value_num__lt=float(SPEC_HIGH) - 1, source_time__gt=after
        ).first()

    out: dict[str, Any] = {}
    # 1. outside: a batch's monitored step started, read, completed; then breaches with no step running.
    first_batch = new_batch("BREACH-1")
    drying = start(first_batch)
    first = wait_for(lambda: _step_watched(drying.pk), 30, "the first batch's first value")
    out["watched_after_start_s"] = [(first - drying.started_at).total_seconds()]

    def breach_stored(value: float) -> None:
        began = dt.datetime.now(dt.UTC)
        plant.say(f"hold {value}")
        reading = wait_for(lambda: stored(value, began), 15, f"the breach value {value} stored")
        plant.say("clear")
        wait_for(lambda: stored_in_range(reading.source_time), 15, "an in-range value stored")

    exceptions_before = BatchException.objects.count()
    ex.step_complete(actor=actor, user=operator, batch=first_batch, step_key="drying")
    done = BatchStep.objects.get(pk=drying.pk).completed_at
    # A breach at once after the completion, before the judge's next status round.
    breach_stored(74.0)
    out["just_after_completion"] = {
        "judged_still": watching(drying.pk),
        "exceptions": BatchException.objects.count() - exceptions_before,
    }
    wait_for(lambda: True if not watching(drying.pk) else None, 30, "the judge to let the step go")
    out["released_after_completion_s"] = (dt.datetime.now(dt.UTC) - done).total_seconds()
    exceptions_before = BatchException.objects.count()
    alarms_before = ProcessAlarm.objects.count()
    kept = 0
    for i in range(outside):
        breach_stored(73.0 + i / 100)
        kept += 1
    out["outside"] = {
        "breaches": outside,
        "stored": kept,
        "exceptions": BatchException.objects.count() - exceptions_before,
        "alarms": ProcessAlarm.objects.count() - alarms_before,
    }

    # 2. running: each breach raises the critical exception; from the value's source time to it.
    batch = new_batch("BREACH-2")
    drying = start(batch)
    first = wait_for(lambda: _step_watched(drying.pk), 30, "the second batch's first value")
    out["watched_after_start_s"].append((first - drying.started_at).total_seconds())
    to_at: list[float] = []
    to_seen: list[float] = []
    last = (
        BatchException.objects.filter(batch=batch).order_by("-pk").values_list("pk", flat=True).first() or 0
    )
    for i in range(breaches):
        value = 72.0 + i / 100
        plant.say(f"hold {value}")
        exception = wait_for(
            lambda n=last: BatchException.objects.filter(
                batch=batch, pk__gt=n, code="CRITICAL_OUT_OF_SPECIFICATION"
            ).first(),
            15,
            f"the exception of breach {i + 1}",
        )
        seen = dt.datetime.now(dt.UTC)
        last = exception.pk
        alarm = ProcessAlarm.objects.get(exception=exception)
        if float(alarm.value) != value:
            raise RuntimeError(f"breach {i + 1}: the exception is of {alarm.value}, not {value}")
        to_at.append((exception.at - alarm.at).total_seconds())
        to_seen.append((seen - alarm.at).total_seconds())
        plant.say("clear")
        wait_for(
            lambda a=alarm: ProcessAlarm.objects.filter(step=drying, event="cleared", at__gt=a.at).first(),
            15,
            f"breach {i + 1} cleared",
        )
        time.sleep(rng.uniform(0.1, 0.6))  # not in step with the simulator's writes or the subscription
    out["running"] = {
        "breaches": breaches,
        "exceptions": len(to_at),
        "to_exception_at": quantiles(to_at),
        "to_visible": quantiles(to_seen),
        "under_2_s": sum(1 for x in to_seen if x < 2.0),
        "latencies_visible_s": to_seen,
    }
    return out


async def run(breaches: int, outside: int) -> dict[str, Any]:
    from batchline.gateway.live import LiveJudging
    from batchline.gateway.runner import Gateway
    from batchline.gateway.selectors import connections
    from batchline.gateway.spool import Spool

    port = free_port()
    loop = asyncio.get_running_loop()
    plant = Plant(port)
    try:
        installed = await loop.run_in_executor(None, setup, port)
        configuration = await loop.run_in_executor(None, connections)
        with tempfile.TemporaryDirectory() as spool_dir:
            # As ``batchline gateway`` wires it (gateway/management/commands/gateway.py).
            judge = LiveJudging(configuration)
            gateway = Gateway(
                configuration,
                name="bench-breach",
                spool=Spool(Path(spool_dir) / "bench.spool.sqlite3", max_rows=100_000),
                stored_hook=judge.stored,
                round_hook=judge.round,
            )
            stop = asyncio.Event()
            running = asyncio.create_task(gateway.run(stop))
            try:
                result = await loop.run_in_executor(None, driver, plant, judge, installed, breaches, outside)
            finally:
                stop.set()
                await running
    finally:
        plant.close()
    tags = configuration[0].tags
    return {
        "sampling_ms": sorted({t.sampling_ms for t in tags}),
        "status_seconds": gateway.status_seconds,
        "flush_seconds": gateway.flush_seconds,
        "poll_s": POLL_S,
        **result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("role", choices=("run", "plant"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--breaches", type=int, default=20)
    parser.add_argument("--outside", type=int, default=5)
    args = parser.parse_args()
    if args.role == "plant":
        asyncio.run(plant_serve(args.port))
        return
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchline.settings")
    django.setup()
    print(json.dumps(asyncio.run(run(args.breaches, args.outside))))


if __name__ == "__main__":
    main()
