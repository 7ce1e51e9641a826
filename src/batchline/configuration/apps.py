from django.apps import AppConfig


class ConfigurationConfig(AppConfig):
    name = "batchline.configuration"
    label = "configuration"
    verbose_name = "GMP configuration"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from batchline.approvals.services import kind_register

        from .services import KIND, seed_after_migrate

        kind_register(KIND)
        post_migrate.connect(seed_after_migrate, sender=self)
