from django.apps import AppConfig


class PeriodicConfig(AppConfig):
    name = "batchline.periodic"
    label = "periodic"
    verbose_name = "Periodic reviews: the access review and the periodic evaluation"
