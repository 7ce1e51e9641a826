from django.db import migrations

from batchline.audit.db import triggers_drop, triggers_install

TABLES = ("execution_exceptiondisposition",)


def install(apps, schema_editor):
    triggers_install(schema_editor.connection, TABLES)


def drop(apps, schema_editor):
    triggers_drop(schema_editor.connection, TABLES)


class Migration(migrations.Migration):
    dependencies = [("execution", "0004_exception_taxonomy_disposition")]
    operations = [migrations.RunPython(install, drop)]
