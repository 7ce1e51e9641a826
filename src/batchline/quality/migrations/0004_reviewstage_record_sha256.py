"""A review stage binds the SHA-256 of the complete batch record it approves (issue 10, 21 CFR 11.70).

Nullable and without a default: SQLite adds the column with ALTER TABLE ADD COLUMN,
so the table is not rebuilt and its append-only triggers stay.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("quality", "0003_qms_outbox")]

    operations = [
        migrations.AddField(
            model_name="reviewstage",
            name="record_sha256",
            field=models.CharField(
                blank=True,
                help_text="SHA-256 of the complete batch record this stage approved (rules.bindings.record_sha256)",
                max_length=64,
                null=True,
            ),
        ),
    ]
