from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "batchline.web"
    label = "web"
    verbose_name = "Pages"
