from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "batchline.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import checks, grants, signals  # noqa: F401  (role grants as a change kind; login, lockout auditing)
        from .roles import sync_roles_after_migrate

        post_migrate.connect(sync_roles_after_migrate, sender=self)
