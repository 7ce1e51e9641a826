"""``batchline validate``: the IQ/OQ validation package of this installation (docs/validation.md)."""

from __future__ import annotations

import getpass
import json
import socket
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from batchline.audit.services import Actor
from batchline.validation import iq, oq, package, risk, trace, urs
from batchline.validation.services import package_register


class Command(BaseCommand):
    help = "Build the validation package (IQ, OQ, trace matrix), or verify one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "paths", nargs="*", help="test paths to run (default: every requirement-marked test)"
        )
        parser.add_argument(
            "--out", default="", help="where the archive goes (default: $BATCHLINE_HOME/validation)"
        )
        parser.add_argument(
            "--oq-results", default="", help="use the results a run of the suite wrote (BATCHLINE_OQ_RESULTS)"
        )
        parser.add_argument(
            "--previous", default="", help="the last validated package (.zip or package.json)"
        )
        parser.add_argument("--verify", default="", metavar="ZIP", help="check an archive offline instead")
        parser.add_argument(
            "--public-key", default="", help="with --verify: the installation's public key (PEM)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["verify"]:
            self._verify(Path(options["verify"]), options["public_key"])
            return
        checks = iq.qualification()
        if options["oq_results"]:
            results = json.loads(Path(options["oq_results"]).read_text(encoding="utf-8"))
            artefacts = Path(options["oq_results"]).parent / "artefacts"
        else:
            try:
                results, artefacts = oq.run(options["paths"])
            except oq.OqProblem as exc:
                raise CommandError(str(exc)) from None
        try:
            matrix = trace.trace(
                urs.requirements(), risk.assessment(), [trace.TestResult.of(t) for t in results["tests"]]
            )
        except risk.RiskProblem as exc:
            raise CommandError(str(exc)) from None
        hand_kept = iq.PROJECT_ROOT / "docs" / "compliance-matrix.md"
        content = package.document(
            iq=checks,
            oq=results,
            trace=matrix,
            previous=package.read_previous(Path(options["previous"])) if options["previous"] else None,
            hand_kept=hand_kept.read_text(encoding="utf-8") if hand_kept.exists() else None,
        )
        evidence = {"oq-results.json": json.dumps(results, indent=1, ensure_ascii=False).encode()}
        if artefacts.is_dir():
            for shot in sorted(artefacts.rglob("*.png")):
                evidence[f"screens/{shot.name}"] = shot.read_bytes()
        out = Path(options["out"]) if options["out"] else Path(settings.HOME) / "validation"
        built = package.build(content, out_dir=out, evidence=evidence)
        unmigrated = [c for c in checks if (c.area, c.name) == ("database", "migrations") and c.ok is False]
        record = None
        if not unmigrated:  # the record's own table may be among what is not migrated
            who = f"{getpass.getuser()}@{socket.gethostname()}"
            record = package_register(
                built,
                engine=connection.vendor,
                actor=Actor(
                    id=None, username="batchline-validate", name=f"batchline validate ({who})", via="cli"
                ),
            )
        summary = content["trace"]["summary"]
        self.stdout.write(f"Validation package: {built.path}")
        self.stdout.write(f"SHA-256: {built.sha256}")
        if record is not None:
            self.stdout.write(
                f"Registered as validation package {record.pk}: its validation lead signs it, then a QA approver "
                "approves it, on the Validation page (/validation/)."
            )
        else:
            self.stdout.write(
                "Not registered for signing: the database is not migrated (run 'batchline migrate')."
            )
        self.stdout.write(
            f"P0 requirements shown: {summary['p0_shown']} of {summary['p0']}; tests: {summary['tests']} "
            f"run, {summary['tests_failed']} failed"
        )
        findings = content["verdict"]["findings"]
        if findings:
            for finding in findings:
                self.stdout.write(f"  finding: {finding}")
            raise CommandError(
                f"{len(findings)} findings: the package records them; this is not a validated state.",
                returncode=1,
            )
        self.stdout.write(self.style.SUCCESS("No findings."))

    def _verify(self, path: Path, public_key: str) -> None:
        pem = Path(public_key).read_bytes() if public_key else None
        result = package.verify(path, pem)
        self.stdout.write(f"Signed by the key {result.fingerprint}")
        if not result.ok:
            for problem in result.problems:
                self.stdout.write(f"  {problem}")
            raise CommandError(f"{path} does not verify.", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"{path}: every file as signed."))
