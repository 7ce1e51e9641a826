from django.apps import AppConfig


class BackupConfig(AppConfig):
    name = "batchline.backup"
    label = "backup"
    verbose_name = "Backup, restore and data-migration checks"
