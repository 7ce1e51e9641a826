from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "batchline.audit"
    label = "audit"
    verbose_name = "Audit trail"
