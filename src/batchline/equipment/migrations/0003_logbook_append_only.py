from django.db import migrations

from batchline.audit.db import triggers_drop, triggers_install

TABLES = ("equipment_logbookentry",)


def install(apps, schema_editor):
    triggers_install(schema_editor.connection, TABLES)


def drop(apps, schema_editor):
    triggers_drop(schema_editor.connection, TABLES)


class Migration(migrations.Migration):
    dependencies = [("equipment", "0002_equipment_units_logbook"), ("audit", "0003_chain_append_function")]
    operations = [migrations.RunPython(install, drop)]
