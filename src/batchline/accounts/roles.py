"""Roles as groups with permissions (21 CFR 11.10(g); Annex 11 §12).

The role definitions live here, in code under change control; ``roles_sync``
brings the database in line after every migration and audits each change.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from batchline.audit.services import SYSTEM, audit_append

# role -> (label, description, permissions as "app_label.codename")
ROLES: dict[str, tuple[str, str, list[str]]] = {
    "operator": (
        "Operator",
        "Executes steps on the shop floor and signs what they performed.",
        [
            "signatures.sign_performed",
            "execution.execute_batch",
            "execution.view_batch",
            # The person at the machine acknowledges its process alarms, saying what was done.
            "execution.acknowledge_alarm",
            "quality.raise_deviation",
            # Operators clean and check the equipment they work with, and write its logbook.
            "equipment.view_equipment",
            "equipment.record_cleaning",
            "equipment.check_scale",
            "equipment.write_logbook",
            # What is left of material dispensed for a batch goes back to stock or to waste.
            "materials.return_material",
        ],
    ),
    "supervisor": (
        "Supervisor",
        "Releases orders to the floor, verifies critical steps, holds and resumes batches.",
        [
            "signatures.sign_performed",
            "signatures.sign_verified",
            "signatures.sign_reviewed",
            "execution.control_batch",
            "quality.raise_deviation",
            "quality.review_production",
            "quality.view_deviation",
            "execution.execute_batch",
            "execution.view_batch",
            "execution.acknowledge_alarm",
            "equipment.view_equipment",
            "equipment.record_cleaning",
            "equipment.check_scale",
            "equipment.write_logbook",
            "training.view_trainingrecord",
            # Supervisors trace what a batch used and where a lot went (genealogy, recall).
            "materials.trace_lot",
            # A second person checks a newcomer's identity when they redeem an enrolment code.
            "accounts.verify_identity",
        ],
    ),
    "warehouse": (
        "Warehouse",
        "Receives material, labels containers, moves stock.",
        [
            "signatures.sign_performed",
            "materials.receive_material",
            "materials.view_lot",
            "materials.return_material",
        ],
    ),
    "recipe_author": (
        "Recipe author",
        "Writes and versions master recipes.",
        [
            "signatures.sign_performed",
            "recipes.author_recipe",
            "recipes.view_masterrecipe",
            "equipment.view_equipment",
            "training.view_trainingrecord",
        ],
    ),
    "qa_reviewer": (
        "QA reviewer",
        "Reviews batches by exception and reads the audit trail.",
        [
            "signatures.sign_performed",  # raising and investigating deviations
            "signatures.sign_reviewed",
            "validation.lead_validation",  # signs a validation package (reviewed) before QA approves it
            "validation.view_package",
            "signatures.sign_verified",
            "accounts.view_audit_trail",
            "materials.view_lot",
            "materials.trace_lot",
            "recipes.view_masterrecipe",
            "execution.view_batch",
            "equipment.view_equipment",
            "training.view_trainingrecord",
            "training.manage_training",
            "signatures.sign_approved",
            "execution.disposition_exception",
            "quality.raise_deviation",
            "quality.investigate_deviation",
            "quality.view_deviation",
            "quality.review_quality",
            # Reviews the audit trail (a batch's, a period's, a user's) and signs the review.
            "auditreview.review_trail",
            # Raising a deviation and submitting its investigation are signed as performed.
            "signatures.sign_performed",
            "accounts.verify_identity",
        ],
    ),
    "qa_approver": (
        "QA approver",
        "Approves recipes, dispositions deviations, releases or rejects batches.",
        [
            "signatures.sign_performed",  # raising and investigating deviations
            "signatures.sign_reviewed",
            "signatures.sign_approved",
            "signatures.sign_released",
            "signatures.sign_rejected",
            "accounts.view_audit_trail",
            "recipes.approve_recipe",
            "recipes.view_masterrecipe",
            "execution.view_batch",
            "materials.disposition_lot",
            "materials.view_lot",
            "materials.trace_lot",
            "equipment.view_equipment",
            "training.view_trainingrecord",
            "training.manage_training",
            "execution.disposition_exception",
            "quality.raise_deviation",
            "quality.investigate_deviation",
            "quality.approve_deviation",
            "quality.view_deviation",
            "quality.review_quality",
            "quality.disposition_batch",
            "auditreview.review_trail",
            "signatures.sign_performed",
            "approvals.approve_change",
            "validation.view_package",
            "accounts.verify_identity",
            # The periodic access review and evaluation: prepared, and signed as their reviewer.
            "periodic.view_periodicreport",
            "periodic.prepare_report",
            "periodic.sign_report",
        ],
    ),
    "qualified_person": (
        "Qualified person (EU)",
        "Certifies batches before release where the plant's licence requires it (EU GMP Annex 16).",
        [
            "signatures.sign_certified",
            "accounts.view_audit_trail",
            "execution.view_batch",
            "materials.view_lot",
            "quality.view_deviation",
            "quality.certify_batch",
        ],
    ),
    "administrator": (
        "Engineer / administrator",
        "Plant model, equipment, integrations, users and roles.",
        [
            "accounts.manage_users",
            "accounts.view_security_events",
            # Requests that a second person approves (a GMP role, the GMP configuration).
            "signatures.sign_requested",
            "configuration.request_change",
            # Master data (materials, equipment, stations, qualifications): GMP changes approved by QA.
            "masterdata.request_change",
            "materials.view_lot",
            "recipes.view_masterrecipe",
            "signatures.sign_approved",
            # Engineers sign the calibrations they perform.
            "signatures.sign_performed",
            "equipment.add_site",
            "equipment.change_site",
            "equipment.view_site",
            "equipment.add_equipment",
            "equipment.change_equipment",
            "equipment.view_equipment",
            "equipment.maintain_equipment",
            "equipment.record_cleaning",
            "equipment.check_scale",
            "equipment.write_logbook",
            "training.view_trainingrecord",
            # Prepares the periodic access review and evaluation; a QA approver signs them.
            "periodic.view_periodicreport",
            "periodic.prepare_report",
            # The messages the ERP sent: what each did, and the parked ones with what they wait for.
            "erp.view_inboundmessage",
            # The integrations: the outbox's delivery log, and a failed message sent again (audited).
            "outbox.view_message",
            "outbox.retry_message",
            # The equipment gateway's endpoints and tags (which unit's which parameter), audited.
            "gateway.configure_gateway",
            "gateway.view_endpoint",
        ],
    ),
    # A machine, not a person: the account an ERP sends its B2MML messages as (erp/inbound.py). It signs
    # nothing; the master data it sends waits for a QA approver, its orders for a supervisor's release.
    "erp_interface": (
        "ERP interface",
        "The account an ERP sends its B2MML messages as: orders, material definitions, goods receipts.",
        [
            "erp.send_message",
            # A material definition from the ERP is a change request, decided by a QA approver.
            "masterdata.request_change",
        ],
    ),
    # The LIMS's own account (a machine's, its token named after it): it posts laboratory results, whose
    # out-of-specification ones stop a batch and block a lot. Granted like a GMP signing role, by two people.
    "lims_interface": (
        "LIMS interface",
        "The laboratory system's interface user: posts test results of samples; reads nothing else.",
        ["lims.post_result"],
    ),
    "auditor": (
        "Auditor / inspector",
        "Reads everything, changes nothing.",
        [
            "gateway.view_endpoint",
            "accounts.view_audit_trail",
            "accounts.view_security_events",
            "equipment.view_site",
            "materials.view_lot",
            "materials.trace_lot",
            "equipment.view_equipment",
            "training.view_trainingrecord",
            "recipes.view_masterrecipe",
            "execution.view_batch",
            "quality.view_deviation",
            "validation.view_package",
            "periodic.view_periodicreport",
            "erp.view_inboundmessage",
            "outbox.view_message",
        ],
    ),
}

# Roles that may read everything (auditor, QA) see read-only views of all records.
READ_ALL_PERMISSION = "accounts.view_audit_trail"


def role_label(name: str) -> str:
    return ROLES[name][0] if name in ROLES else name


def _permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def roles_sync() -> list[str]:
    """Create missing roles and set their permissions to the definition; audit each change."""
    changed: list[str] = []
    with transaction.atomic():
        for name, (_label, _desc, perms) in ROLES.items():
            group, created = Group.objects.get_or_create(name=name)
            before = sorted(
                f"{p.content_type.app_label}.{p.codename}"
                for p in group.permissions.select_related("content_type")
            )
            after = sorted(perms)
            if created or before != after:
                group.permissions.set([_permission(p) for p in after])
                audit_append(
                    actor=SYSTEM,
                    action="create" if created else "update",
                    record_type="auth.group",
                    record_id=name,
                    changes={"permissions": [None if created else before, after]},
                    reason="role definitions of this Batchline release",
                )
                changed.append(name)
    return changed


def sync_roles_after_migrate(sender: Any, apps: Any = None, using: str = "default", **kwargs: Any) -> None:
    # post_migrate creates permissions app by app; make sure all exist before assigning them.
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    roles_sync()
