"""``batchline audit verify|checkpoint``: exit 0 only when checkpoints, anchors, chains, triggers and tables agree."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchline.accounts.management.cli import add_actor_arguments
from batchline.audit.anchors import Anchor, FileAnchor, NatsAnchor, configured_anchors
from batchline.audit.checkpoints import Signed
from batchline.integrity.verification import checkpoint_now, full_verify


class Command(BaseCommand):
    help = (
        "Audit trail tools. 'verify' checks the signed checkpoints against the anchors, every chain, "
        "the append-only triggers and replays the trail against the live tables; 'checkpoint' signs "
        "and anchors where the trail stands now."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        v = sub.add_parser("verify", help="check checkpoints, anchors, chains, triggers and the live tables")
        v.add_argument("--chain-only", action="store_true", help="skip the replay against live tables")
        v.add_argument("--max-findings", type=int, default=100)
        v.add_argument(
            "--public-key",
            type=Path,
            help="verify with this public key (PEM) only, e.g. an inspector's copy; default: the installation's",
        )
        v.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="PATH|nats://...",
            help="check against this anchor instead of the configured ones (repeatable); "
            "a nats:// URL names a JetStream anchor (stream from BATCHLINE_ANCHOR_NATS_STREAM)",
        )
        sub.add_parser("checkpoint", help="sign and anchor the chains' heads now")
        r = sub.add_parser(
            "recover",
            help="after an authorised restore from an older backup: record why, and which anchored "
            "checkpoints the restore abandoned (a QA approver; raises a security alert)",
        )
        add_actor_arguments(r)  # --by (a QA approver; asks the password), --reason, --password-stdin

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "recover":
            self._recover(options)
            return
        if options["action"] == "checkpoint":
            made = checkpoint_now()
            c = made.checkpoint
            for problem in made.anchor_problems:
                self.stderr.write(f"WARNING anchor: {problem} (a security alert was raised)")
            self.stdout.write(
                f"checkpoint {c.number}: {c.entries} entries, signed by {c.key_fingerprint}, hash {c.hash}"
            )
            return
        started = time.perf_counter()
        report = full_verify(
            replay=not options["chain_only"],
            max_findings=options["max_findings"],
            public_key=options["public_key"].read_bytes() if options["public_key"] else None,
            anchors=self._anchors(options["anchor"]) if options["anchor"] else None,
        )
        seconds = time.perf_counter() - started
        for finding in report.findings:
            self.stderr.write(f"FAIL {finding.kind}: {finding}")
        for note in report.notes:
            self.stdout.write(f"note: {note}")
        chains = ", ".join(f"{k}:{h.seq}" for k, h in sorted(report.heads.items()))
        summary = (
            f"{report.entries} audit entries on {len(report.heads)} chains ({chains}), "
            f"{report.records} live records, {report.checkpoints} signed checkpoints "
            f"(newest {report.newest_checkpoint or 'none'}), anchors: {'; '.join(report.anchors) or 'none'}; "
            f"checked in {seconds:.2f} s"
        )
        if not report.ok:
            raise CommandError(f"audit trail does NOT verify ({len(report.findings)} findings); {summary}")
        self.stdout.write(f"OK: audit trail verifies. {summary}")

    def _recover(self, options: dict[str, Any]) -> None:
        from batchline.accounts.alerts import security_alert_raise
        from batchline.accounts.management.cli import acting_person
        from batchline.audit.anchors import AnchorProblem
        from batchline.audit.checkpoints import NothingToRecover, recovery_record

        actor = acting_person(options, "approvals.approve_change", "a QA approver (who records a recovery)")
        try:
            made = recovery_record(actor=actor, reason=options["reason"])
        except (NothingToRecover, AnchorProblem, ValueError) as exc:
            raise CommandError(f"{exc}; nothing was recorded") from exc
        first, last = Signed.of(made.checkpoint).abandons() or (0, 0)
        security_alert_raise(
            kind="recovery",
            message=(
                f"{actor.name} ({actor.username}) recorded a recovery: the database was restored from an "
                f"older backup; anchored checkpoints {first}-{last} were abandoned. Reason: {options['reason']}"
            ),
            details={"checkpoint": made.checkpoint.number, "abandons": [first, last]},
        )
        for problem in made.anchor_problems:
            self.stderr.write(f"WARNING anchor: {problem}")
        self.stdout.write(
            f"recovery recorded: checkpoint {made.checkpoint.number} abandons anchored checkpoints "
            f"{first}-{last}; a security alert was raised"
        )

    def _anchors(self, given: list[str]) -> list[Anchor]:
        from django.conf import settings

        anchors: list[Anchor] = []
        for value in given:
            if value.startswith("nats://"):
                anchors.append(NatsAnchor(value, settings.BATCHLINE_ANCHOR_NATS_STREAM))
            else:
                anchors.append(FileAnchor(value))
        return anchors or configured_anchors()
