from django.db import migrations

from batchline.audit.chain import APPEND_MANY_FUNCTION_SQL


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_MANY_FUNCTION_SQL)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS batchline_audit_append_many")


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_chain_append_function")]
    operations = [migrations.RunPython(install, drop)]
