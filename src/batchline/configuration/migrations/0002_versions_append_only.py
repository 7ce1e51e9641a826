from django.db import migrations

from batchline.audit.db import triggers_drop, triggers_install

TABLES = ("configuration_configversion",)


def install(apps, schema_editor):
    triggers_install(schema_editor.connection, TABLES)


def drop(apps, schema_editor):
    triggers_drop(schema_editor.connection, TABLES)


class Migration(migrations.Migration):
    dependencies = [("configuration", "0001_initial"), ("audit", "0004_chain_append_many_function")]
    operations = [migrations.RunPython(install, drop)]
