from django.apps import AppConfig


class AuditReviewConfig(AppConfig):
    name = "batchline.auditreview"
    label = "auditreview"
    verbose_name = "Audit-trail review"
