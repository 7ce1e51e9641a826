from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "batchline.api"
    label = "api"
    verbose_name = "REST API"
