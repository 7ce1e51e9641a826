from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "batchline.approvals"
    label = "approvals"
    verbose_name = "Two-person change control"
