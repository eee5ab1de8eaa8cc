from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "tidings.web"
    label = "web"
    verbose_name = "Operator interface"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (registers the system checks)

        signals.connect_axes()
        from .checklist import register_defaults

        register_defaults()
