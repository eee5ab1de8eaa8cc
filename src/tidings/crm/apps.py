from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "tidings.crm"
    label = "crm"
    verbose_name = "CRM"
