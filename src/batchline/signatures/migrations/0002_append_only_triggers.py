from django.db import migrations

from batchline.audit.db import triggers_drop, triggers_install


def install(apps, schema_editor):
    triggers_install(schema_editor.connection, ("signatures_signature",))


def drop(apps, schema_editor):
    triggers_drop(schema_editor.connection, ("signatures_signature",))


class Migration(migrations.Migration):
    dependencies = [("signatures", "0001_initial"), ("audit", "0002_append_only_triggers")]
    operations = [migrations.RunPython(install, drop)]
