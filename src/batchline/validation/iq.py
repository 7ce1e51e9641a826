"""Installation qualification (VAL-04): what is installed, checked against what the release pins.

Each check is a :class:`Check`: what was looked at, what was found, and whether
it is as it must be (``ok`` False is a finding; None is a fact recorded without
a judgement, such as the operating system). Nothing here writes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[3]  # src/batchline/validation → the checkout
CONSTRAINTS = PROJECT_ROOT / "constraints.txt"
PYPROJECT = PROJECT_ROOT / "pyproject.toml"
PIN = re.compile(r'^\s*"?([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s";]+)"?,?\s*(?:#.*)?$')
# Installed with the virtual environment itself, not by the project.
TOOLING = {"pip", "setuptools", "wheel", "batchline"}


@dataclass(frozen=True)
class Check:
    area: str
    name: str
    value: str
    ok: bool | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(*texts: str) -> dict[str, str]:
    """``name==version`` pins of constraints.txt and pyproject.toml, by normalised name."""
    out: dict[str, str] = {}
    for text in texts:
        for line in text.splitlines():
            match = PIN.match(line)
            if match:
                out[normalise(match.group(1))] = match.group(2)
    return out


def _record_sha256(dist: importlib.metadata.Distribution) -> str:
    """SHA-256 of the distribution's RECORD: the list of its files with their own hashes."""
    record = dist.read_text("RECORD")
    return hashlib.sha256(record.encode()).hexdigest() if record else ""


def installed() -> dict[str, tuple[str, str]]:
    """Every installed distribution: normalised name → (version, SHA-256 of its RECORD)."""
    out = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out[normalise(name)] = (dist.version, _record_sha256(dist))
    return out


def packages(pinned: dict[str, str], present: dict[str, tuple[str, str]]) -> list[Check]:
    """Each pinned package as installed: a different version or a missing one is a finding."""
    checks = []
    for name in sorted(set(pinned) | set(present)):
        if name in TOOLING:
            continue
        want = pinned.get(name)
        version, record = present.get(name, ("", ""))
        if want is None:
            checks.append(Check("packages", name, version, False, "installed but not pinned by the release"))
        elif not version:
            checks.append(Check("packages", name, "", False, f"pinned at {want}, not installed"))
        elif version != want:
            checks.append(Check("packages", name, version, False, f"pinned at {want}, installed {version}"))
        else:
            checks.append(Check("packages", name, version, True, f"RECORD sha256:{record}"))
    return checks


def _reachable(host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, f"{host}:{port} answers"
    except OSError as exc:
        return False, f"{host}:{port}: {exc.strerror or exc}"


def platform_checks() -> list[Check]:
    return [
        Check("platform", "operating system", platform.platform()),
        Check("platform", "python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        Check("platform", "executable", sys.executable),
        Check(
            "platform",
            "time zone of the server",
            os.environ.get("TZ", "") or "system default",
            None,
            "records are stored in UTC; each site shows its own zone",
        ),
    ]


def database_checks() -> list[Check]:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from batchline.audit.db import triggers_missing

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT version()")
        else:
            cursor.execute("SELECT sqlite_version()")
        version = cursor.fetchone()[0]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    applied = len(executor.loader.applied_migrations)
    missing = triggers_missing(connection)
    return [
        Check("database", "engine", connection.vendor, True, str(version)),
        Check("database", "name", str(connection.settings_dict.get("NAME")), None),
        Check(
            "database",
            "migrations",
            f"{applied} applied",
            not plan,
            "all applied"
            if not plan
            else f"{len(plan)} not applied: {', '.join(f'{m.app_label}.{m.name}' for m, _ in plan[:10])}",
        ),
        Check(
            "database",
            "append-only triggers",
            f"{len(missing)} missing",
            not missing,
            "present on every append-only table"
            if not missing
            else "missing: " + ", ".join(f"{t}.{g}" for t, g in missing),
        ),
    ]


def configuration_checks() -> list[Check]:
    from django.db import DatabaseError

    from batchline.configuration.models import ConfigVersion
    from batchline.rules import canonical

    try:
        version = ConfigVersion.objects.order_by("-number").first()
    except DatabaseError as exc:
        return [Check("configuration", "GMP configuration", "unreadable", False, str(exc))]
    if version is None:
        return [
            Check("configuration", "GMP configuration", "none", False, "no version: run 'batchline migrate'")
        ]
    digest = hashlib.sha256(canonical.dumps(version.values).encode()).hexdigest()
    return [
        Check(
            "configuration",
            "GMP configuration in force",
            f"version {version.number}",
            True,
            f"sha256:{digest}, effective {version.effective_at:%Y-%m-%d %H:%M} UTC",
        )
    ]


def key_checks() -> list[Check]:
    from batchline.keys import KeyProblem, fingerprint, installation_public_key

    try:
        return [Check("keys", "installation key", fingerprint(installation_public_key()), True)]
    except (KeyProblem, OSError) as exc:
        return [Check("keys", "installation key", "absent", False, str(exc))]


def service_checks() -> list[Check]:
    from urllib.parse import urlparse

    from django.conf import settings
    from django.db import connection

    checks = []
    try:
        connection.ensure_connection()
        checks.append(Check("services", "database", "reachable", True))
    except Exception as exc:  # any driver error is the finding
        checks.append(Check("services", "database", "unreachable", False, str(exc)))
    if settings.BATCHLINE_MAIL_RELAY:
        ok, detail = _reachable(settings.EMAIL_HOST, settings.EMAIL_PORT)
        checks.append(Check("services", "mail relay", "configured", ok, detail))
    else:
        checks.append(
            Check("services", "mail relay", "not configured", None, "security alerts are logged, not mailed")
        )
    if settings.BATCHLINE_ANCHOR_NATS_URL:
        url = urlparse(settings.BATCHLINE_ANCHOR_NATS_URL)
        ok, detail = _reachable(url.hostname or "localhost", url.port or 4222)
        checks.append(Check("services", "checkpoint anchor broker (NATS)", "configured", ok, detail))
    anchor = Path(settings.BATCHLINE_ANCHOR_PATH)
    existing = next(p for p in anchor.parents if p.exists())  # the worker creates what is missing
    writable = os.access(existing, os.W_OK)
    checks.append(
        Check(
            "services",
            "checkpoint anchor path",
            str(anchor),
            writable,
            f"{existing} is writable" if writable else f"{existing} is not writable by this user",
        )
    )
    return checks


def qualification(constraints: str | None = None, pyproject: str | None = None) -> list[Check]:
    """Every IQ check; ``constraints`` and ``pyproject`` default to the release's own files."""
    texts = []
    for given, path in ((constraints, CONSTRAINTS), (pyproject, PYPROJECT)):
        if given is not None:
            texts.append(given)
        elif path.exists():
            texts.append(path.read_text(encoding="utf-8"))
    checks = platform_checks()
    if not texts:
        checks.append(Check("packages", "pinned constraints", "absent", False, f"{CONSTRAINTS} not found"))
    else:
        checks += packages(pins(*texts), installed())
    return checks + database_checks() + configuration_checks() + key_checks() + service_checks()
