from django.apps import AppConfig


class MasterDataConfig(AppConfig):
    name = "batchline.masterdata"
    label = "masterdata"
    verbose_name = "Master data"

    def ready(self) -> None:
        from . import services  # noqa: F401  (registers the "master_data" kind of change)
