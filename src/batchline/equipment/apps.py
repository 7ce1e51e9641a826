from django.apps import AppConfig


class EquipmentConfig(AppConfig):
    name = "batchline.equipment"
    label = "equipment"
    verbose_name = "Plant model"
