from django.apps import AppConfig


class RecipesConfig(AppConfig):
    name = "batchline.recipes"
    label = "recipes"
    verbose_name = "Master recipes"
