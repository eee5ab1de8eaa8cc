from django.apps import AppConfig


class AudienceConfig(AppConfig):
    name = "tidings.audience"
    label = "audience"
    verbose_name = "Audience"
