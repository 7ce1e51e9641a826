from django.db import migrations

from batchline.audit.db import triggers_drop, triggers_install


def install(apps, schema_editor):
    triggers_install(schema_editor.connection, ("audit_auditentry",))


def drop(apps, schema_editor):
    triggers_drop(schema_editor.connection, ("audit_auditentry",))


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(install, drop)]
