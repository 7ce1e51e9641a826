from django.apps import AppConfig


class ExecutionConfig(AppConfig):
    name = "batchline.execution"
    label = "execution"
    verbose_name = "Batch execution"
