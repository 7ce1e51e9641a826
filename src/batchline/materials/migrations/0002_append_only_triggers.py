from django.db import migrations

from batchline.audit.db import triggers_drop, triggers_install

TABLES = ("materials_ledgerentry", "materials_consumption", "materials_labelprint")


def install(apps, schema_editor):
    triggers_install(schema_editor.connection, TABLES)


def drop(apps, schema_editor):
    triggers_drop(schema_editor.connection, TABLES)


class Migration(migrations.Migration):
    dependencies = [("materials", "0001_initial"), ("audit", "0003_chain_append_function")]
    operations = [migrations.RunPython(install, drop)]
