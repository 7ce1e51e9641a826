from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "batchline.gateway"
    label = "gateway"
    verbose_name = "Equipment gateway"
