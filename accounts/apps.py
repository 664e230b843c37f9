from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    # allauth's "account" app is also called "Accounts" in the admin; ours holds the tenants.
    verbose_name = "Users and workspaces"

    def ready(self) -> None:
        from accounts import signals  # noqa: F401
