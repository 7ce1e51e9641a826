from django.db import migrations

from batchline.audit.db import triggers_drop, triggers_install

TABLES = ("execution_stepvalue", "execution_batchexception")


def install(apps, schema_editor):
    triggers_install(schema_editor.connection, TABLES)


def drop(apps, schema_editor):
    triggers_drop(schema_editor.connection, TABLES)


class Migration(migrations.Migration):
    dependencies = [("execution", "0001_initial"), ("audit", "0003_chain_append_function")]
    operations = [migrations.RunPython(install, drop)]
