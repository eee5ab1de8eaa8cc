from django.apps import AppConfig


class RightsConfig(AppConfig):
    name = "tidings.rights"
    label = "rights"
    verbose_name = "Data-subject rights"
