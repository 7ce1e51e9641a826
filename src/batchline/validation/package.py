"""The validation package: IQ, OQ, trace matrix, compliance matrix and change, as JSON, HTML and PDF in
one archive whose manifest the installation key signs (VAL-03, VAL-04, VAL-05).

The archive holds ``package.json`` (for machines), ``index.html`` (for reading),
``package.pdf`` (for filing), the catalogue it was judged against (``urs.md``),
the risk assessment (``risk.toml``), the OQ run's own results and the browser
tests' screenshots (``evidence/``), and ``manifest.json``: every file with its
SHA-256, signed by the installation key (``manifest.sig``, Ed25519, the public
key beside it). :func:`verify` checks an archive offline, years later, with
nothing but the installation's public key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchline import keys
from batchline.rules import canonical

from . import iq as iq_module
from .risk import RISK_FILE
from .trace import Trace
from .urs import URS_FILE

FORMAT = 1
MATRIX_FAMILIES = {"P11": "21 CFR Part 11", "A11": "EU GMP Annex 11", "DI": "Data integrity (ALCOA+)"}
SOURCE = Path(__file__).resolve().parents[1]  # src/batchline


@dataclass(frozen=True)
class Built:
    path: Path
    sha256: str
    document: dict[str, Any]


def project_version() -> dict[str, Any]:
    """The release and the checkout it runs from: version, commit, tag, and whether it is clean."""
    from importlib.metadata import version

    out: dict[str, Any] = {"version": version("batchline"), "commit": None, "describe": None, "clean": None}

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
                ["git", "-C", str(iq_module.PROJECT_ROOT), *args],  # noqa: S607
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    out["commit"] = git("rev-parse", "HEAD")
    out["describe"] = git("describe", "--tags", "--always", "--dirty")
    status = git("status", "--porcelain", "--untracked-files=no")
    out["clean"] = None if status is None else status == ""
    return out


def source_digests() -> dict[str, str]:
    """SHA-256 of every Python file of the product, by path: what a later package compares."""
    return {
        str(path.relative_to(SOURCE.parent)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(SOURCE.rglob("*.py"))
    }


def compliance_matrix(trace: Trace) -> list[dict[str, Any]]:
    """Part 11, Annex 11 and ALCOA+ rows, generated from the same marks as the trace."""
    rows = []
    for row in trace.rows:
        family = row.requirement.family
        if family not in MATRIX_FAMILIES:
            continue
        rows.append(
            {
                "regulation": MATRIX_FAMILIES[family],
                "id": row.requirement.id,
                "clause": row.requirement.cells[0] if row.requirement.cells else "",
                "requirement": row.requirement.text,
                "priority": row.priority,
                "status": row.status,
                "tests": [t.nodeid for t in row.tests],
            }
        )
    return rows


TEST_NAME = re.compile(r"`(test_[A-Za-z0-9_]+)`")
# A row whose first cell names requirement IDs (rows led by a clause name the IDs later, in words).
MATRIX_ROW = re.compile(r"^\| ([A-Z][A-Z0-9]*-[0-9]+[^|]*)\|")
MATRIX_ID = re.compile(r"[A-Z][A-Z0-9]*-[0-9]+")


DEFINED = re.compile(r"^(?:async )?def (test_[A-Za-z0-9_]+)\(", re.M)


def defined_tests() -> set[str]:
    """The names of the test functions the release's suite defines (its tests/, where shipped)."""
    root = iq_module.PROJECT_ROOT / "tests"
    return {
        name for path in root.rglob("test_*.py") for name in DEFINED.findall(path.read_text(encoding="utf-8"))
    }


def hand_kept_findings(document: str, trace: Trace, known_tests: set[str]) -> list[str]:
    """The hand-kept docs/compliance-matrix.md checked against the catalogue and the suite: every ID
    it names is in the catalogue, and every test it cites by name exists."""
    ids = {row.requirement.id for row in trace.rows}
    findings = []
    for number, line in enumerate(document.splitlines(), start=1):
        match = MATRIX_ROW.match(line)
        if match is None:
            continue
        for rid in MATRIX_ID.findall(match.group(1)):
            if rid not in ids:
                findings.append(f"docs/compliance-matrix.md line {number}: {rid} is not in the catalogue")
        for name in TEST_NAME.findall(line):
            if name not in known_tests:
                findings.append(f"docs/compliance-matrix.md line {number}: the suite has no test {name}")
    return findings


def change_since(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> dict[str, Any] | None:
    """What differs from the last validated package: packages, source files, tests and the
    requirements they carry, the catalogue and the risk assessment."""
    if previous is None:
        return None
    was = {c["name"]: c["value"] for c in previous.get("iq", []) if c["area"] == "packages"}
    now = {c["name"]: c["value"] for c in current["iq"] if c["area"] == "packages"}
    packages = [
        {"name": n, "was": was.get(n), "now": now.get(n)}
        for n in sorted(set(was) | set(now))
        if was.get(n) != now.get(n)
    ]
    src_was, src_now = previous.get("source", {}), current["source"]
    source = sorted(p for p in set(src_was) | set(src_now) if src_was.get(p) != src_now.get(p))
    tests_was = {t["nodeid"]: t for t in previous.get("oq", {}).get("tests", [])}
    tests_now = {t["nodeid"]: t for t in current["oq"]["tests"]}
    changed_tests = sorted(
        n
        for n in set(tests_was) | set(tests_now)
        if (tests_was.get(n) or {}).get("file_sha256") != (tests_now.get(n) or {}).get("file_sha256")
        or (tests_was.get(n) or {}).get("reqs") != (tests_now.get(n) or {}).get("reqs")
    )
    requirements = sorted(
        {
            rid
            for n in changed_tests
            for t in (tests_was.get(n), tests_now.get(n))
            if t
            for rid in t.get("reqs", [])
        }
    )
    return {
        "previous": {
            "generated_at": previous.get("generated_at"),
            "project": previous.get("project"),
            "sha256": previous.get("package_sha256"),
        },
        "packages": packages,
        "source_files": source,
        "tests": changed_tests,
        "requirements": requirements,
        "urs_changed": previous.get("urs_sha256") != current["urs_sha256"],
        "risk_changed": previous.get("risk_sha256") != current["risk_sha256"],
    }


def document(
    *,
    iq: Sequence[iq_module.Check],
    oq: Mapping[str, Any],
    trace: Trace,
    previous: Mapping[str, Any] | None = None,
    hand_kept: str | None = None,
    project: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The package's content, JSON-ready; ``verdict.ok`` is what the command's exit status says."""
    known_tests = defined_tests() | {t["nodeid"].split("::")[-1].split("[")[0] for t in oq.get("tests", [])}
    iq_findings = [f"IQ {c.area}: {c.name}: {c.detail or c.value}" for c in iq if c.ok is False]
    doc_findings = hand_kept_findings(hand_kept, trace, known_tests) if hand_kept is not None else []
    summary = trace.summary()
    findings = (
        iq_findings
        + [f"P0 requirement {g['id']} not shown: {g['why']}" for g in summary["gaps"]]
        + [
            f"tests marked with {rid}, which the catalogue does not hold: {', '.join(n)}"
            for rid, n in sorted(trace.unknown.items())
        ]
        + [f"test failed: {t.nodeid}" for t in trace.failed]
        + doc_findings
    )
    content: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "project": dict(project) if project is not None else project_version(),
        "urs_sha256": hashlib.sha256(URS_FILE.read_bytes()).hexdigest(),
        "risk_sha256": hashlib.sha256(RISK_FILE.read_bytes()).hexdigest(),
        "iq": [c.as_dict() for c in iq],
        "oq": dict(oq),
        "trace": {
            "summary": summary,
            "rows": [
                {
                    "id": r.requirement.id,
                    "section": r.requirement.section,
                    "requirement": r.requirement.text,
                    "priority": r.priority,
                    "function": r.risk.function,
                    "tier": r.risk.tier,
                    "high_process_risk": r.risk.high_process_risk,
                    "status": r.status,
                    "gap": r.gap,
                    "tests": [{"nodeid": t.nodeid, "outcome": t.outcome} for t in r.tests],
                }
                for r in trace.rows
            ],
        },
        "compliance_matrix": compliance_matrix(trace),
        "hand_kept_matrix_findings": doc_findings,
        "source": source_digests(),
        "verdict": {"ok": not findings, "findings": findings},
    }
    content["change"] = change_since(previous, content)
    return content


# --- files ---------------------------------------------------------------------------------------


# A file inside the archive, read offline: never served by the application (so not under templates/,
# whose pages the Content-Security-Policy governs); its styles are inline, for a file opened alone.
HTML_TEMPLATE = Path(__file__).with_name("package.html.tmpl")


def _html(content: Mapping[str, Any]) -> str:
    from django.template import engines

    return engines["django"].from_string(HTML_TEMPLATE.read_text(encoding="utf-8")).render({"p": content})


def _pdf(content: Mapping[str, Any]) -> bytes:
    import io

    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    from batchline.reports.layout import Story
    from batchline.reports.pdfa import fonts

    fonts()
    buffer = io.BytesIO()
    page = landscape(A4)
    doc = SimpleDocTemplate(
        buffer,
        pagesize=page,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title="Batchline validation package",
        author="Batchline",
        invariant=1,
    )
    s = Story(doc.width)
    verdict = content["verdict"]
    project = content["project"]
    s.say("Batchline validation package", "title")
    s.fields(
        [
            ("Generated", content["generated_at"]),
            ("Release", f"{project.get('version')} ({project.get('describe') or 'no checkout'})"),
            ("Commit", f"{project.get('commit') or '—'}; clean: {project.get('clean')}"),
            ("Verdict", "passed: no findings" if verdict["ok"] else f"{len(verdict['findings'])} findings"),
            ("Catalogue (URS)", f"urs.md sha256:{content['urs_sha256']}"),
            ("Risk assessment", f"risk.toml sha256:{content['risk_sha256']}"),
        ]
    )
    if verdict["findings"]:
        s.section("Findings")
        s.table(["#", "Finding"], [(i, f) for i, f in enumerate(verdict["findings"], 1)], [0.05, 0.95])
    s.section("1. Installation qualification")
    s.table(
        ["Area", "Check", "Found", "Result", "Detail"],
        [
            (
                c["area"],
                c["name"],
                c["value"],
                {True: "ok", False: "FINDING", None: "recorded"}[c["ok"]],
                c["detail"],
            )
            for c in content["iq"]
        ],
        [0.1, 0.18, 0.22, 0.08, 0.42],
        marks=[i for i, c in enumerate(content["iq"]) if c["ok"] is False],
    )
    oq = content["oq"]
    s.section("2. Operational qualification")
    s.fields(
        [
            ("Run", f"{oq.get('started')} → {oq.get('finished')}"),
            ("Where", f"{oq.get('platform')}, Python {oq.get('python')}, database {oq.get('database')}"),
            ("Arguments", " ".join(oq.get("arguments", []))),
            ("Tests", str(len(oq.get("tests", [])))),
        ]
    )
    s.section("3. Trace matrix (requirement → risk → tests → result)")
    rows = content["trace"]["rows"]
    s.table(
        ["ID", "Pri", "Tier", "Requirement", "Status", "Tests"],
        [
            (
                r["id"],
                r["priority"] or "—",
                r["tier"],
                r["requirement"],
                r["status"] + (f": {r['gap']}" if r["gap"] else ""),
                "\n".join(f"{t['nodeid']} ({t['outcome']})" for t in r["tests"][:12])
                + (f"\n… {len(r['tests']) - 12} more" if len(r["tests"]) > 12 else ""),
            )
            for r in rows
        ],
        [0.06, 0.04, 0.05, 0.35, 0.12, 0.38],
        marks=[i for i, r in enumerate(rows) if r["gap"]],
    )
    change = content.get("change")
    if change:
        s.section("4. Change since the last validated state")
        s.fields(
            [
                (
                    "Previous package",
                    f"{change['previous']['generated_at']} sha256:{change['previous']['sha256']}",
                ),
                (
                    "Packages changed",
                    ", ".join(f"{p['name']} {p['was']} → {p['now']}" for p in change["packages"]) or "none",
                ),
                ("Source files changed", str(len(change["source_files"]))),
                ("Tests changed", str(len(change["tests"]))),
                ("Requirements to re-assess", ", ".join(change["requirements"]) or "none"),
                (
                    "Catalogue / risk assessment changed",
                    f"{change['urs_changed']} / {change['risk_changed']}",
                ),
            ]
        )
    doc.build(s.flowables)
    return buffer.getvalue()


def build(
    content: dict[str, Any],
    *,
    out_dir: Path,
    evidence: Mapping[str, bytes] | None = None,
    key: keys.InstallationKey | None = None,
) -> Built:
    """Write the archive into ``out_dir``; its manifest signed by ``key`` (default: the installation's)."""
    key = key or keys.installation_key()
    public = key.public_key_pem()
    content["key_fingerprint"] = keys.fingerprint(public)  # the key that signs the manifest below
    stamp = content["generated_at"].replace(":", "").replace("-", "")[:15]
    files: dict[str, bytes] = {
        "package.json": json.dumps(content, indent=1, ensure_ascii=False, sort_keys=True).encode(),
        "index.html": _html(content).encode(),
        "package.pdf": _pdf(content),
        "urs.md": URS_FILE.read_bytes(),
        "risk.toml": RISK_FILE.read_bytes(),
    }
    for name, data in (evidence or {}).items():
        files[f"evidence/{name}"] = data
    manifest = {
        "format": FORMAT,
        "generated_at": content["generated_at"],
        "verdict_ok": content["verdict"]["ok"],
        "key_fingerprint": keys.fingerprint(public),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    manifest_bytes = canonical.dumps(manifest).encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"batchline-validation-{stamp}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(name, data)
        archive.writestr("manifest.json", manifest_bytes)
        archive.writestr("manifest.sig", key.sign(manifest_bytes))
        archive.writestr("installation-ed25519.pub", public)
    return Built(path, hashlib.sha256(path.read_bytes()).hexdigest(), content)


@dataclass(frozen=True)
class Verified:
    ok: bool
    fingerprint: str
    problems: list[str]


def verify(path: Path, public_key_pem: bytes | None = None) -> Verified:
    """Check an archive offline: every file against the manifest, the manifest against its signature.

    ``public_key_pem``: the installation's public key as the plant holds it; without it the key
    inside the archive is used, which proves the archive is whole but not whose it is (compare
    the fingerprint with the one the plant published)."""
    problems = []
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        for needed in ("manifest.json", "manifest.sig", "installation-ed25519.pub"):
            if needed not in names:
                return Verified(False, "", [f"{needed} is missing"])
        manifest_bytes = archive.read("manifest.json")
        signature = archive.read("manifest.sig")
        public = public_key_pem or archive.read("installation-ed25519.pub")
        if not keys.verify(public, manifest_bytes, signature):
            problems.append("the manifest's signature does not verify with this public key")
        manifest = json.loads(manifest_bytes)
        for name, digest in manifest["files"].items():
            if name not in names:
                problems.append(f"{name} is listed in the manifest and missing")
            elif hashlib.sha256(archive.read(name)).hexdigest() != digest:
                problems.append(f"{name} differs from the manifest (altered after signing)")
        extra = names - set(manifest["files"]) - {"manifest.json", "manifest.sig", "installation-ed25519.pub"}
        problems += [f"{name} is not in the manifest (added after signing)" for name in sorted(extra)]
    return Verified(not problems, keys.fingerprint(public), problems)


def read_previous(path: Path) -> dict[str, Any]:
    """The content of an earlier package (its archive or its package.json), with the archive's hash."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            content = json.loads(archive.read("package.json"))
        content["package_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        return dict(content)
    return dict(json.loads(path.read_text(encoding="utf-8")))
