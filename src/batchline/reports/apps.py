from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "batchline.reports"
    label = "reports"
    verbose_name = "Batch record documents and archives"
