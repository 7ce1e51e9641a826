"""Put back the append-only triggers that SQLite table rebuilds dropped.

Migrations that altered columns of step values, exceptions and signatures
rebuilt those tables on SQLite without their triggers; nothing noticed. This
reinstalls every one (a no-op where they exist, and on PostgreSQL), after the
latest migration of every app that owns such a table. ``apps.py`` now refuses
a ``migrate`` that leaves one missing.
"""

from django.db import migrations

from batchline.audit.db import APPEND_ONLY_TABLES, triggers_install


def install(apps, schema_editor):
    # Only the tables there are by now: an app added later (lims) installs its own in its migration.
    present = set(schema_editor.connection.introspection.table_names())
    triggers_install(schema_editor.connection, tuple(t for t in APPEND_ONLY_TABLES if t in present))


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0005_chains_and_checkpoints"),
        ("signatures", "0004_requested"),
        ("execution", "0006_stepvalue_critical"),
        ("materials", "0004_lot_produced_by_batch"),
        ("equipment", "0004_logbook_batch_idx"),
        ("quality", "0003_qms_outbox"),
        ("configuration", "0002_versions_append_only"),
    ]
    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
