"""``batchline demo``: migrate, seed demo data, print the logins and serve.

Idempotent: running it again keeps what is there and adds what is missing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from batchline.accounts.enrolment import credential_issue
from batchline.accounts.grants import first_approver_grant
from batchline.accounts.management.cli import cli_request
from batchline.accounts.models import User
from batchline.accounts.seeding import password_seed
from batchline.accounts.services import user_create, user_set_roles
from batchline.approvals.models import ChangeRequest
from batchline.approvals.services import change_approve
from batchline.audit.services import Actor, record_create
from batchline.configuration import selectors as configuration
from batchline.configuration.definitions import GMP_SIGNING_ROLES
from batchline.configuration.services import configuration_change_request
from batchline.equipment import demo as equipment_demo
from batchline.equipment.models import Site
from batchline.execution.models import Batch
from batchline.execution.services import (
    ExecutionRefused,
    batch_command,
    batch_create,
    batch_produce,
    step_complete,
    step_start,
    step_verify,
    value_correct,
)
from batchline.gateway import demo as gateway_demo
from batchline.masterdata.seeding import master_seed
from batchline.materials import demo as materials_demo
from batchline.materials import services as stock
from batchline.materials.models import Lot, Material
from batchline.recipes import document as recipe_document
from batchline.recipes.models import MasterRecipe
from batchline.recipes.services import recipe_import, recipe_transition
from batchline.signatures.models import Meaning
from batchline.signatures.services import signer_authenticate
from batchline.training import demo as training_demo

DEMO_PASSWORD = "batchline-demo"
DEMO_USERS = [
    # username, printed name, roles
    ("operator", "Olga Operator", ["operator"]),
    ("operator2", "Omar Operator", ["operator"]),
    ("supervisor", "Sam Supervisor", ["supervisor"]),
    ("author", "Rita Recipe-Author", ["recipe_author"]),
    ("warehouse", "Walt Warehouse", ["warehouse"]),
    ("reviewer", "Quinn QA-Reviewer", ["qa_reviewer"]),
    ("approver", "Alex QA-Approver", ["qa_approver"]),
    ("admin", "Ada Administrator", ["administrator"]),
    ("auditor", "Ines Inspector", ["auditor"]),
]
DEMO = Actor(id=None, username="demo", name="Demo data loader", via="cli")
# The plant simulator's OPC UA server, read by the demo's gateway (batchline.gateway.opcua_sim).
DEMO_OPCUA_PORT = int(os.environ.get("BATCHLINE_DEMO_OPCUA_PORT", "4840"))
# Machine accounts: no password, no login; their role granted by two people like a person's.
DEMO_INTERFACES = [
    ("erp-sap", "SAP PRD (ERP interface)", ["erp_interface"]),
    ("lims-labware", "LabWare LIMS (LIMS interface)", ["lims_interface"]),
]


def seed() -> list[tuple[str, str, list[str]]]:
    """Create the demo site and one user per role, ready to sign. Returns the logins."""
    with transaction.atomic():
        if not Site.objects.filter(code="demo").exists():
            record_create(
                Site(code="demo", name="Demo Pharma, Plant 1", time_zone="Europe/Zurich"),
                actor=DEMO,
                reason="demo data",
            )
    seed_people()
    seed_materials()
    site = Site.objects.get(code="demo")
    people = {u.username: u for u in User.objects.filter(username__in=[name for name, _, _ in DEMO_USERS])}
    equipment_demo.seed(site, people, master)
    gateway_demo.seed(
        Actor.of(User.objects.get(username="admin"), via="cli"),
        approver=Actor.of(User.objects.get(username="approver"), via="cli"),
        sign=lambda actor, meaning: _sign(actor.username, meaning),
        port=DEMO_OPCUA_PORT,
    )
    seed_stations(site)
    training_demo.seed(site, people, master)
    recipe = seed_recipe()
    seed_batch(recipe)
    seed_genealogy(recipe)
    seed_review(seed_recipe(DEMO_RECIPE.with_name("tablet-ipc.yaml"), "PCM-500-IPC"))
    seed_batch(
        seed_recipe(DEMO_RECIPE.with_name("drying-check.yaml"), "PCM-500-DRY"), "DRY-0001", Decimal("60")
    )
    return DEMO_USERS


# The newcomer whose enrolment the demo leaves open, to be redeemed at /enrol/.
NEWCOMER = ("nora", "Nora Newcomer", ["operator"])


def seed_people() -> None:
    """The demo's people, their GMP roles granted the way a plant grants them (docs/security.md).

    Accounts are created without a usable password (the demo then gives each
    the known demo password: demo data only, refused in production); the
    first QA approver is made from the command line, as on a new installation;
    every other GMP signing role is requested by ``admin`` and approved by
    ``approver``, both signatures on each person's history.
    """
    for username, name, roles in DEMO_USERS + DEMO_INTERFACES:
        if User.objects.filter(username=username).exists():
            continue
        direct = [r for r in roles if r not in GMP_SIGNING_ROLES]
        user, _ = user_create(actor=DEMO, username=username, full_name=name, roles=direct, reason="demo data")
        if (username, name, roles) in DEMO_INTERFACES:
            continue
        password_seed(
            actor=DEMO,
            user=user,
            password=DEMO_PASSWORD,
            reason="demo data: the known demo password, e-signature acknowledged (demo databases only)",
        )
    approver = User.objects.get(username="approver")
    if not User.objects.filter(groups__name="qa_approver").exists():
        first_approver_grant(
            actor=DEMO, user=approver, reason="demo data: the installation's first QA approver"
        )
    admin = User.objects.get(username="admin")
    for username, _name, roles in DEMO_USERS + DEMO_INTERFACES:
        user = User.objects.get(username=username)
        if user.role_names == sorted(roles) or username == "approver":
            continue
        change = user_set_roles(
            actor=Actor.of(admin, via="cli"),
            user=user,
            roles=roles,
            reason="demo data: duties of the demo person",
            signer=_sign("admin", Meaning.REQUESTED),
        )
        if isinstance(change, ChangeRequest):
            change_approve(
                actor=Actor.of(approver, via="cli"),
                signer=_sign("approver", Meaning.APPROVED),
                request=change,
                comment="demo data",
            )


def seed_newcomer(admin: User) -> str:
    """Nora, created by ``admin`` with the operator role requested and an enrolment code to redeem.

    Returns the code, issued afresh on every run while she has not redeemed one
    (only its hash is kept), or "" once she has.
    """
    username, name, roles = NEWCOMER
    nora = User.objects.filter(username=username).first()
    if nora is None:
        nora, issued = user_create(
            actor=Actor.of(admin, via="cli"),
            username=username,
            full_name=name,
            roles=roles,
            reason="demo data: a new operator, to show enrolment",
            signer=_sign("admin", Meaning.REQUESTED),
        )
        return issued.enrolment_code
    if nora.has_usable_password():
        return ""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=nora.pk)
        issued = credential_issue(
            actor=Actor.of(admin, via="cli"),
            user=locked,
            purpose="new account",
            reason="demo run: a fresh code",
        )
    return issued.enrolment_code


# The demo's registered terminals (21 CFR 11.10(h)): code, name, location, address, scales it may use.
# The browser of the quickstart is the booth's tablet, on either loopback address; a tablet served
# with ``--addrport 0.0.0.0:8000`` is refused until an engineer registers its address.
DEMO_STATIONS = [
    ("BOOTH-01-T1", "Weigh booth 1 tablet", "Dispensing, weigh booth 1", "127.0.0.1", "SCALE-01,SCALE-02"),
    ("BOOTH-01-T2", "Weigh booth 1 tablet (IPv6)", "Dispensing, weigh booth 1", "::1", "SCALE-01,SCALE-02"),
    ("FLOOR-01", "Granulation and compression floor PCs", "Suites 1 to 3", "10.20.2.0/28", ""),
    ("GOODS-IN-01", "Goods receipt terminal", "Warehouse, goods in", "10.20.3.10", ""),
]


def seed_stations(site: Site) -> None:
    """The demo's stations, registered through master data (``admin`` requests, ``approver`` approves,
    both signed), then the control switched on the same way: entries only from them (11.10(h))."""
    admin, approver = User.objects.get(username="admin"), User.objects.get(username="approver")
    master(
        "station",
        [
            {
                "code": code,
                "name": name,
                "site": site.code,
                "location": location,
                "address": address,
                "devices": devices,
            }
            for code, name, location, address, devices in DEMO_STATIONS
        ],
    )
    if configuration.current().registered_stations_only:
        return
    request = configuration_change_request(
        actor=Actor.of(admin, via="cli"),
        signer=_sign("admin", Meaning.REQUESTED),
        values={"registered_stations_only": True},
        reason="demo data: the terminals are registered; entries only from them",
    )
    change_approve(
        actor=Actor.of(approver, via="cli"),
        signer=_sign("approver", Meaning.APPROVED),
        request=request,
        comment="demo data",
    )


def _sign(username: str, meaning: str) -> Any:
    return signer_authenticate(
        request=cli_request(), username=username, password=DEMO_PASSWORD, meaning=meaning
    )


def master(kind: str, rows: list[dict[str, Any]]) -> list[Any]:
    """Master data of the demo, entered as a plant enters its own (masterdata/seeding.py).

    ``admin`` requests the missing items of ``rows`` under one signature and
    ``approver`` approves them under theirs, so each item's history shows
    both; an item that exists is kept as it is.
    """
    return master_seed(
        kind=kind,
        rows=rows,
        requester=User.objects.get(username="admin"),
        approver=User.objects.get(username="approver"),
        sign=_sign,
        reason="demo data: the demo plant's master data",
        comment="demo data",
    )


def seed_materials() -> None:
    """Every material of the demo formula in a released lot, and paracetamol lots the gate refuses."""
    materials_demo.seed(
        User.objects.get(username="warehouse"), User.objects.get(username="approver"), _sign, master
    )


DEMO_RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "demo" / "paracetamol-500.yaml"


def seed_recipe(path: Path | None = None, code: str = "PCM-500-TAB") -> MasterRecipe:
    """A demo recipe, written by the author and made effective by QA, each step signed.

    Its product is master data, requested and approved before the recipe is
    imported, which then finds it rather than creating it.
    """
    current = MasterRecipe.objects.filter(code=code).order_by("-version").first()
    if current is not None:
        return current
    author = User.objects.get(username="author")
    approver = User.objects.get(username="approver")
    text = (path or DEMO_RECIPE).read_text()
    header = recipe_document.parse(text).recipe
    master("product", [{"code": header.product_code, "name": header.product_name}])
    recipe = recipe_import(actor=Actor.of(author, via="cli"), text=text, reason="demo data")
    for person, command, meaning in (
        (author, "submit", "performed"),
        (approver, "approve", "approved"),
        (approver, "make_effective", "approved"),
    ):
        signer = signer_authenticate(
            request=cli_request(), username=person.username, password=DEMO_PASSWORD, meaning=meaning
        )
        recipe = recipe_transition(
            actor=Actor.of(person, via="cli"), recipe=recipe, command=command, signer=signer
        )
    return recipe


def seed_batch(
    recipe: MasterRecipe, number: str = "PCM-0001", quantity: Decimal = Decimal("100000")
) -> Batch:
    """A batch of a demo recipe, released to the floor by the supervisor, ready to execute."""
    existing = Batch.objects.filter(recipe__code=recipe.code).order_by("created_at").first()
    if existing is not None:
        return existing
    supervisor = User.objects.get(username="supervisor")
    actor = Actor.of(supervisor, via="cli")
    batch = batch_create(actor=actor, recipe=recipe, number=number, planned_quantity=quantity)
    signer = signer_authenticate(
        request=cli_request(), username="supervisor", password=DEMO_PASSWORD, meaning="performed"
    )
    return batch_command(actor=actor, batch=batch, command="release", signer=signer)


def seed_genealogy(recipe: MasterRecipe) -> None:
    """A small earlier batch that made 1,000 tablets from a paracetamol lot and magnesium stearate.

    So the genealogy page has something to draw at once: lot PCM-0000 traces back to
    PCM-L0100 and MGST-L0007, and MGST-L0007 forward to it. Its own paracetamol lot
    leaves the containers the demo's batch charges untouched.
    """
    if Batch.objects.filter(number="PCM-0000").exists():
        return
    clerk, qa = User.objects.get(username="warehouse"), User.objects.get(username="approver")
    operator, supervisor = User.objects.get(username="operator"), User.objects.get(username="supervisor")
    paracetamol = stock.lot_receive(
        actor=Actor.of(clerk, via="cli"),
        material=Material.objects.get(code="PCM-API"),
        number="PCM-L0100",
        expires_at=timezone.now() + dt.timedelta(days=600),
        containers=["2"],
        supplier="Granules India Ltd.",
        supplier_lot="GIL-24-0815",
        potency=Decimal("99.4"),
        location="WH-A-01",
    )
    stock.lot_disposition(
        actor=Actor.of(qa, via="cli"),
        lot=paracetamol,
        status="released",
        signer=_sign("approver", "released"),
        reason="demo data: certificate of analysis reviewed",
    )
    boss, hand = Actor.of(supervisor, via="cli"), Actor.of(operator, via="cli")
    batch = batch_create(actor=boss, recipe=recipe, number="PCM-0000", planned_quantity=Decimal("1000"))
    batch = batch_command(actor=boss, batch=batch, command="release", signer=_sign("supervisor", "performed"))
    step_start(actor=hand, user=operator, batch=batch, step_key="line_clearance")
    mgst = Lot.objects.get(number="MGST-L0007").containers.order_by("code").last()
    assert mgst is not None
    for code, quantity in ((paracetamol.containers.get().code, "0.5"), (mgst.code, "0.006")):
        with transaction.atomic():
            stock.container_consume(
                actor=hand,
                container=stock.container_locked(code),
                quantity=Decimal(quantity),
                batch_number=batch.number,
                step_key="line_clearance",
                at=timezone.now(),
            )
    batch_produce(actor=hand, batch=batch, quantities=["1000"], unit="tablet")


def seed_review(recipe: MasterRecipe) -> None:
    """A short batch run to its end with three exceptions, waiting for QA's review by exception:
    a step started out of order (refused), a hardness out of specification, a corrected weight."""
    if Batch.objects.filter(number="IPC-0001").exists():
        return
    operator, supervisor = User.objects.get(username="operator"), User.objects.get(username="supervisor")
    boss, hand = Actor.of(supervisor, via="cli"), Actor.of(operator, via="cli")
    batch = batch_create(actor=boss, recipe=recipe, number="IPC-0001", planned_quantity=Decimal("100000"))
    batch = batch_command(actor=boss, batch=batch, command="release", signer=_sign("supervisor", "performed"))
    with contextlib.suppress(ExecutionRefused):  # refused: line clearance comes first; kept for QA
        step_start(actor=hand, user=operator, batch=batch, step_key="weights")
    step_start(actor=hand, user=operator, batch=batch, step_key="clearance")
    step_complete(
        actor=hand,
        user=operator,
        batch=batch,
        step_key="clearance",
        checklist=[True, True, True],
        signer=_sign("operator", "performed"),
    )
    step_start(actor=hand, user=operator, batch=batch, step_key="weights")
    step_complete(
        actor=hand,
        user=operator,
        batch=batch,
        step_key="weights",
        entries={"w1": "598.2", "w2": "604.9", "w3": "611.4", "hardness": "54"},
        confirm_out_of_specification=True,  # the hardness: the operator read the question and confirmed
    )
    value_correct(
        actor=hand,
        user=operator,
        batch=batch,
        step_key="weights",
        name="w3",
        text="601.4",
        reason="transcription error: the balance showed 601.4 mg",
        signer=_sign("operator", "performed"),
    )
    step_start(actor=hand, user=operator, batch=batch, step_key="mean")
    step_complete(actor=hand, user=operator, batch=batch, step_key="mean")
    step_verify(
        actor=boss, user=supervisor, batch=batch, step_key="mean", signer=_sign("supervisor", "verified")
    )


class Command(BaseCommand):
    help = "Start Batchline with demo data (SQLite by default). --no-serve seeds and exits."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-serve", action="store_true", help="seed the demo data and exit")
        parser.add_argument(
            "--addrport", default="127.0.0.1:8000", help="where to serve (default 127.0.0.1:8000)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        logins = seed()
        url = f"http://{options['addrport']}/"
        self.stdout.write(self.style.SUCCESS("Batchline demo data is ready."))
        self.stdout.write(f"\n  Open {url} and log in as one of (password for all: {DEMO_PASSWORD}):\n")
        for username, name, roles in logins:
            self.stdout.write(f"    {username:<11} {name:<22} {', '.join(roles)}")
        self.stdout.write(f"\n  Batch PCM-0001 is on the floor: {url}batches/PCM-0001/")
        good, quarantined, expired, retest = (
            materials_demo.containers_of(lot) for lot in ("PCM-L0101", "PCM-L0102", "PCM-L0099", "PCM-L0098")
        )
        self.stdout.write(
            "  Log in as operator. Every dispensing weighs on a simulated scale: at the booth, put the target\n"
            "  on the pan with the 'Simulator' control (50.2 kg of paracetamol on SCALE-02, 500 g of magnesium\n"
            "  stearate on SCALE-01, ...), take the stable weight and print the container's label. At 'Dispense\n"
            f"  paracetamol' scan {', '.join(quarantined)} (quarantine), {', '.join(expired)} (expired 90 minutes\n"
            f"  before the demo started) or {', '.join(retest)} (past its retest date) to see them refused, then\n"
            f"  {good[0]} (lot PCM-L0101, released; the screen proposes it). Each charge scans the containers\n"
            "  weighed out for the batch (the screen names them); each unit is scanned by its tag (BOOTH-01,\n"
            "  GRAN-01, FBD-01, MILL-01, BLEND-01, PRESS-01; GRAN-02, FBD-02 and PRESS-03 are refused).\n"
            "  A supervisor verifies at the operator's station with their own user ID and password, and signs\n"
            "  the batch off; supervisor, reviewer and approver then sign its review stages and release it.\n"
            "  The scales are simulators (SCALE-01 bench 6.2 kg on 127.0.0.1:4305, SCALE-02 floor 150 kg on\n"
            "  4306) served beside the web server by 'batchline demo' and by 'batchline runserver'."
        )
        self.stdout.write(
            f"\n  Genealogy: {url}genealogy/?lot=PCM-0000 (a small batch made from PCM-L0100 and MGST-L0007)."
        )
        self.stdout.write(
            f"\n  The equipment gateway: {url}batches/DRY-0001/ (three steps: scan FBD-01, watch the dryer's\n"
            "  inlet air and product temperature judged while 'Dry the granules' runs, then 'Take reading' of\n"
            "  its moisture analyser; the values come from the plant simulator through 'batchline gateway').\n"
            f"  FBD-01 is then to be cleaned before PCM-0001 may claim it. Engineers: {url}gateway/"
        )
        self.stdout.write(
            f"\n  Review by exception: {url}quality/ (log in as reviewer: batch IPC-0001 is complete,\n"
            "  with a refused attempt, a hardness out of specification and a corrected weight)."
        )
        self.stdout.write(
            f"\n  Master data: {url}master-data/ (log in as admin to request a new material, scale or station,\n"
            "  or a change; as approver to approve it with a signature; each item's history shows both).\n"
            "  Stations: entries are taken only from registered terminals; this machine (127.0.0.1, ::1) is\n"
            "  station BOOTH-01-T1/T2 with SCALE-01 and SCALE-02. From another address, register it first."
        )
        code = seed_newcomer(User.objects.get(username="admin"))
        if code:
            relay = "" if settings.BATCHLINE_MAIL_RELAY else " No mail relay is configured, so"
            self.stdout.write(
                f"\n  Enrolment:{relay} new operator 'nora' (Nora Newcomer) has enrolment code {code}.\n"
                f"  Open {url}enrol/, type nora, the code and a password she chooses; as the identity\n"
                f"  checker type supervisor / {DEMO_PASSWORD}. Her operator role waits for a QA approver:\n"
                f"  log in as approver and open {url}users/role-requests/ to approve it."
            )
        from batchline.integrity.verification import checkpoint_now

        made = checkpoint_now()  # the seeded trail, signed and anchored outside the database
        self.stdout.write(
            f"\n  Audit trail: checkpoint {made.checkpoint.number} signed ({made.checkpoint.key_fingerprint}) "
            f"and anchored in {settings.BATCHLINE_ANCHOR_PATH}.\n  Check it: batchline audit verify\n"
        )
        if options["no_serve"]:
            return
        # The worker: checkpoints and verification on schedule (batchline worker), beside the server.
        from batchline.sandbox.launch import start_erp, start_gateway, start_lims

        # First: they make the sandbox ERP and LIMS the outbox's destinations, which the worker reads
        # at start.
        erp, words = start_erp()
        self.stdout.write(words + "\n")
        lims, words = start_lims(url)
        self.stdout.write(words + "\n")
        plant, words = start_gateway(DEMO_OPCUA_PORT)
        self.stdout.write(words + "\n")
        erp += lims + plant
        worker = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [sys.executable, "-m", "batchline.cli", "worker", "--every", "10", "--parent", str(os.getpid())]
        )
        self.stdout.write(f"  Worker started (pid {worker.pid}): checkpoints and scheduled verification.\n")
        try:
            self._serve(options)
        finally:
            for process in (worker, *erp):
                process.terminate()
            for process in (worker, *erp):
                process.wait(timeout=30)

    def _serve(self, options: dict[str, Any]) -> None:
        # Batchline's runserver serves the simulators of the demo's simulated scales beside the web
        # server (batchline.simulation), as it does when started on its own after --no-serve.
        call_command("runserver", options["addrport"], use_reloader=False)
