from django.apps import AppConfig


class AudienceConfig(AppConfig):
    name = "tidings.audience"
    label = "audience"
    verbose_name = "Audience"

    def ready(self) -> None:
        from .personal_data import register_sources

        register_sources()
        from datetime import timedelta

        from tidings.web.scheduler import register

        register(
            "audience.purge-pending",
            timedelta(hours=6),
            "tidings.audience.tasks.purge_pending_signups",
        )
