from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "mesoclinic.accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from mesoclinic.accounts import signals  # noqa: F401  (connects the audit receivers)
