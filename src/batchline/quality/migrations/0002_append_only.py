from django.db import migrations

from batchline.audit.db import triggers_drop, triggers_install

# A deviation changes state (audited); what it links to and a batch's signed review stages never change.
TABLES = ("quality_deviationlink", "quality_reviewstage")


def install(apps, schema_editor):
    triggers_install(schema_editor.connection, TABLES)


def drop(apps, schema_editor):
    triggers_drop(schema_editor.connection, TABLES)


class Migration(migrations.Migration):
    dependencies = [("quality", "0001_initial")]
    operations = [migrations.RunPython(install, drop)]
