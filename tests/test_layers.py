"""The dependency direction of DESIGN.md, held by a test."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "batchline"

# app -> packages it must not import (higher layers)
FORBIDDEN = {
    "audit": [
        "batchline.accounts",
        "batchline.signatures",
        "batchline.web",
        "batchline.api",
        "batchline.equipment",
    ],
    # Signing is below the account services (which sign role changes) but uses the user model.
    "signatures": [
        "batchline.web",
        "batchline.api",
        "batchline.accounts.services",
        "batchline.accounts.views",
    ],
    "accounts": ["batchline.api"],
    "equipment": ["batchline.web", "batchline.api"],
}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_rules_import_only_the_standard_library() -> None:
    for path in (SRC / "rules").rglob("*.py"):
        for name in imports_of(path):
            top = name.split(".")[0]
            assert (
                top in sys.stdlib_module_names or name.startswith("batchline.rules") or top == "__future__"
            ), f"{path.name} imports {name}"


def test_lower_layers_do_not_import_higher_ones() -> None:
    for app, forbidden in FORBIDDEN.items():
        for path in (SRC / app).rglob("*.py"):
            for name in imports_of(path):
                assert not any(name.startswith(f) for f in forbidden), f"{app}/{path.name} imports {name}"
