from django.apps import AppConfig


class ValidationConfig(AppConfig):
    name = "batchline.validation"
    label = "validation"
    verbose_name = "Validation"
