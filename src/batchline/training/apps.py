from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "batchline.training"
    label = "training"
    verbose_name = "Training and qualifications"
