from django.apps import AppConfig


class SimulationConfig(AppConfig):
    name = "batchline.simulation"
    label = "simulation"
    verbose_name = "Simulated devices for demos and tests"
