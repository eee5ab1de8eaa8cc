from django.apps import AppConfig


class AudienceConfig(AppConfig):
    name = "tidings.audience"
    label = "audience"
    verbose_name = "Audience"

    def ready(self) -> None:
        from tidings.policy.notice import register_source_provider

        from .imports.notice import notice_sources
        from .personal_data import register_sources

        register_sources()
        register_source_provider(notice_sources)
        from datetime import timedelta

        from tidings.lib.periodic import register

        register(
            "audience.purge-pending",
            timedelta(hours=6),
            "tidings.audience.tasks.purge_pending_signups",
        )
        # The dashboard's audience figures at a large audience (stats.py: why a snapshot).
        from .stats import REFRESH

        register("audience.snapshot", REFRESH, "tidings.audience.tasks.take_audience_snapshot")
