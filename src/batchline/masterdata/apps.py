from django.apps import AppConfig


class MasterDataConfig(AppConfig):
    name = "batchline.masterdata"
    label = "masterdata"
    verbose_name = "Master data"

    def ready(self) -> None:
        from . import imports, services  # noqa: F401  (register the "master_data" and "master_data_import" kinds)
