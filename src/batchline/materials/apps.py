from django.apps import AppConfig


class MaterialsConfig(AppConfig):
    name = "batchline.materials"
    label = "materials"
    verbose_name = "Materials, lots and containers"
