from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "batchline.quality"
    label = "quality"
    verbose_name = "Quality: deviations, review by exception, batch disposition"
