from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "tidings.crm"
    label = "crm"
    verbose_name = "CRM"

    def ready(self) -> None:
        from .personal_data import register_sources

        register_sources()
