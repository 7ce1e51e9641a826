"""Parallel chains with gapless positions, their head rows, and signed checkpoints.

The entries written so far become chain 0, numbered in id order: their hashes
do not change (the position is not part of the hashed content), so the trail
written before this migration still verifies.
"""

from django.db import migrations, models

from batchline.audit.chain import CHAINS, FUNCTIONS_SQL
from batchline.audit.db import triggers_drop, triggers_install
from batchline.rules.hashchain import GENESIS


def number_entries(apps, schema_editor):
    conn = schema_editor.connection
    triggers_drop(conn, ("audit_auditentry",))
    with conn.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditentry SET seq = n.rn FROM "
            "(SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM audit_auditentry) AS n "
            "WHERE audit_auditentry.id = n.id"
        )


def heads_and_functions(apps, schema_editor):
    conn = schema_editor.connection
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":  # the head rows are what PostgreSQL writers lock
            cursor.execute("SELECT seq, hash FROM audit_auditentry WHERE chain = 0 ORDER BY seq DESC LIMIT 1")
            head = cursor.fetchone() or (0, GENESIS)
            for chain in range(CHAINS):
                seq, hash_ = head if chain == 0 else (0, GENESIS)
                cursor.execute(
                    "INSERT INTO audit_auditchain (id, seq, hash) VALUES (%s, %s, %s)", [chain, seq, hash_]
                )
            cursor.execute("DROP FUNCTION IF EXISTS batchline_audit_append")
            cursor.execute("DROP FUNCTION IF EXISTS batchline_audit_append_many")
            for statement in FUNCTIONS_SQL:
                cursor.execute(statement)
    # The SQLite table rebuilds above dropped its triggers: put them back, and on the new table.
    triggers_install(conn, ("audit_auditentry", "audit_checkpoint"))


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_chain_append_many_function")]

    operations = [
        migrations.AddField("auditentry", "chain", models.SmallIntegerField(default=0)),
        migrations.AddField("auditentry", "seq", models.BigIntegerField(null=True)),
        migrations.RunPython(number_entries, migrations.RunPython.noop),
        migrations.AlterField("auditentry", "seq", models.BigIntegerField()),
        migrations.AddConstraint(
            "auditentry", models.UniqueConstraint(fields=["chain", "seq"], name="audit_chain_seq_uniq")
        ),
        migrations.CreateModel(
            name="AuditChain",
            fields=[
                ("id", models.SmallIntegerField(primary_key=True, serialize=False)),
                ("seq", models.BigIntegerField(default=0)),
                ("hash", models.CharField(max_length=64)),
            ],
        ),
        migrations.CreateModel(
            name="Checkpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.BigIntegerField(unique=True)),
                ("at", models.DateTimeField()),
                ("entries", models.BigIntegerField()),
                ("payload", models.TextField()),
                ("hash", models.CharField(max_length=64)),
                ("signature", models.CharField(max_length=200)),
                ("key_fingerprint", models.CharField(max_length=80)),
            ],
        ),
        migrations.RunPython(heads_and_functions, migrations.RunPython.noop),
    ]
