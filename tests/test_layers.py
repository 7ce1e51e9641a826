"""The dependency direction of DESIGN.md, held by a test."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "batchline"

# app -> packages it must not import (higher layers)
FORBIDDEN = {
    "audit": [
        "batchline.accounts",
        "batchline.signatures",
        "batchline.web",
        "batchline.api",
        "batchline.equipment",
        "batchline.erp",
    ],
    # Signing is below the account services (which sign role changes) but uses the user model.
    "signatures": [
        "batchline.web",
        "batchline.api",
        "batchline.accounts.services",
        "batchline.accounts.views",
        "batchline.erp",
    ],
    "accounts": ["batchline.api"],
    # Two-person change control sits above signatures and the user model; the account services
    # (role grants), the configuration and the gateway's configuration use it.
    "approvals": [
        "batchline.web",
        "batchline.api",
        "batchline.accounts.services",
        "batchline.configuration",
        "batchline.erp",
        "batchline.gateway",
    ],
    "configuration": ["batchline.web", "batchline.api", "batchline.erp"],
    "equipment": ["batchline.web", "batchline.api", "batchline.execution", "batchline.recipes"],
    # Materials are below execution: batches are named by number, never imported.
    "materials": [
        "batchline.web",
        "batchline.api",
        "batchline.execution",
        "batchline.recipes",
        "batchline.genealogy",
        "batchline.erp",
        "batchline.lims",
    ],
    # Genealogy reads materials, equipment and execution; pages and the API read it.
    "genealogy": ["batchline.web", "batchline.api"],
    # Execution asks training (the qualification gate), never the other way round.
    "training": ["batchline.web", "batchline.api", "batchline.execution", "batchline.recipes"],
    # Quality decides on what execution recorded; execution never asks quality (its gate reads
    # the exception's own disposition row).
    "execution": [
        "batchline.web",
        "batchline.api",
        "batchline.quality",
        "batchline.reports",
        "batchline.erp",
        "batchline.lims",
    ],
    "quality": ["batchline.web", "batchline.api", "batchline.reports", "batchline.lims"],
    # The LIMS connection sits on execution (samples, the batch's exceptions) and materials (a lot
    # blocked); execution publishes the sample and never imports it; pages and the API call it.
    "lims": ["batchline.web", "batchline.api", "batchline.reports"],
    # The outbox sits under every app that reports something: it imports none of them.
    "outbox": [
        "batchline.web",
        "batchline.api",
        "batchline.execution",
        "batchline.materials",
        "batchline.quality",
        "batchline.recipes",
        "batchline.lims",
    ],
    # Simulated devices sit on the equipment registry and the device package; pages call them.
    "simulation": ["batchline.web", "batchline.api", "batchline.execution", "batchline.quality"],
    # Reports read through selectors and models; pages and the API call them, never the reverse.
    "reports": ["batchline.web", "batchline.api"],
    # The audit-trail review reads the trail and a batch's record; pages and the API call it.
    "auditreview": ["batchline.web", "batchline.api"],
    # Master data and recipes make what parked ERP messages wait for; they announce it (batchline.arrivals)
    # and never import the ERP inbound that listens.
    "masterdata": ["batchline.web", "batchline.api", "batchline.erp"],
    "recipes": ["batchline.web", "batchline.api", "batchline.erp"],
    # The ERP sits on materials, recipes, execution, quality and master data: it hears their events
    # and arrivals, and its transports (the API, the watched folder, NATS) call its one entry point.
    "erp": ["batchline.web", "batchline.api", "batchline.integrity"],
    # The gateway stores process values on the plant model; what judges them against a running step
    # (execution) and shows them (pages, the record) sits above and calls its selectors.
    "gateway": [
        "batchline.web",
        "batchline.api",
        "batchline.quality",
        "batchline.reports",
        "batchline.erp",
        "batchline.lims",
    ],
    # Periodic reports read every app's records; pages call them, and the worker raises their alerts.
    "periodic": ["batchline.web", "batchline.api", "batchline.integrity"],
}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


# Devices run in their own process, without Django (DESIGN.md, STACK.md).
@pytest.mark.parametrize("package", ["rules", "devices"])
def test_pure_packages_import_only_the_standard_library(package: str) -> None:
    for path in (SRC / package).rglob("*.py"):
        for name in imports_of(path):
            top = name.split(".")[0]
            assert (
                top in sys.stdlib_module_names
                or name.startswith(f"batchline.{package}")
                or top == "__future__"
            ), f"{path.name} imports {name}"


def test_the_device_package_loads_without_django() -> None:
    code = (
        "import sys, batchline.devices, batchline.devices.scale_sim; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_lower_layers_do_not_import_higher_ones() -> None:
    for app, forbidden in FORBIDDEN.items():
        for path in (SRC / app).rglob("*.py"):
            for name in imports_of(path):
                assert not any(name.startswith(f) for f in forbidden), f"{app}/{path.name} imports {name}"


# The apps that publish what happened (outbox/events.py) never import the integrations that
# hear it: a batch runs the same with or without an ERP, and the ERP's code cannot reach into it.
INTEGRATIONS = ("batchline.erp",)
PUBLISHERS = (
    "audit",
    "accounts",
    "signatures",
    "approvals",
    "configuration",
    "equipment",
    "materials",
    "training",
    "recipes",
    "masterdata",
    "execution",
    "quality",
    "outbox",
    "genealogy",
    "labels",
    "rules",
    "reports",
    "simulation",
)


def test_the_publishing_apps_do_not_import_the_integrations() -> None:
    for app in PUBLISHERS:
        for path in (SRC / app).rglob("*.py"):
            for name in imports_of(path):
                assert not name.startswith(INTEGRATIONS), f"{app}/{path.name} imports {name}"


def test_the_gateways_readings_contract_imports_only_the_standard_library() -> None:
    # Every protocol adapter builds on gateway/readings.py and is tested without Django.
    for name in imports_of(SRC / "gateway" / "readings.py"):
        assert name.split(".")[0] in sys.stdlib_module_names or name == "__future__", name


def test_the_erp_document_builder_imports_neither_django_nor_another_app() -> None:
    # erp/performance.py turns plain data into B2MML; its tests need no database.
    for name in imports_of(SRC / "erp" / "performance.py"):
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or top in ("__future__", "lxml"), name


def test_labels_import_neither_django_nor_another_app() -> None:
    # Labels and scanning are plain Python over plain data (docs/labels.md): the materials
    # and dispensing services call them, and their tests need no database.
    for path in (SRC / "labels").rglob("*.py"):
        for name in imports_of(path):
            top = name.split(".")[0]
            assert top not in ("django", "ninja", "rules"), f"labels/{path.name} imports {name}"
            if top == "batchline":
                assert name.startswith(("batchline.labels", "batchline.rules")), (
                    f"labels/{path.name} imports {name}"
                )


def test_the_gateway_protocol_adapters_import_neither_django_nor_another_app() -> None:
    # The adapters run in the gateway's own asyncio process (batchline/gateway/__init__.py): they hand plain
    # readings (batchline.gateway.readings) to the gateway and know nothing of where they go.
    for path in (SRC / "gateway" / "protocols").rglob("*.py"):
        for name in imports_of(path):
            top = name.split(".")[0]
            assert top not in ("django", "ninja"), f"gateway/protocols/{path.name} imports {name}"
            if top == "batchline":
                assert name.startswith(("batchline.gateway.protocols", "batchline.gateway.readings")), (
                    f"gateway/protocols/{path.name} imports {name}"
                )


def test_the_gateway_protocol_adapters_load_without_django() -> None:
    code = (
        "import sys, batchline.gateway.protocols.sparkplug, batchline.gateway.protocols.mqtt_json, "
        "batchline.gateway.protocols.opcua, batchline.gateway.protocols.modbus; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_archive_verifier_imports_only_the_standard_library_rules_and_keys() -> None:
    # An archive is checked years later without Django or a database (docs/records.md); the
    # manifest's signature is checked with batchline.keys, which loads no Django at import.
    for name in imports_of(SRC / "reports" / "verify.py"):
        top = name.split(".")[0]
        assert (
            top in sys.stdlib_module_names
            or top == "__future__"
            or name.startswith("batchline.rules")
            or name == "batchline"  # from batchline import keys
        ), name
    assert "from batchline import keys" in (SRC / "reports" / "verify.py").read_text()


def test_the_execution_engine_is_split_by_command() -> None:
    # Issue 15: execution/services.py had grown to a thousand lines; each command now lives in the
    # module of its command and services.py only names them for callers. A module past ~500 lines
    # is the sign to split again, before a new step kind is added to it.
    for path in (SRC / "execution").glob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 520, f"execution/{path.name} has {lines} lines"
    facade = (SRC / "execution" / "services.py").read_text()
    assert "def " not in facade, "execution/services.py names the commands; it defines none"
