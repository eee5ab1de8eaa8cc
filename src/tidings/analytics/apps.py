from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "tidings.analytics"
    label = "analytics"
    verbose_name = "Website analytics and cookie consent"

    def ready(self) -> None:
        from datetime import timedelta

        from tidings.lib.periodic import register

        from . import ingest

        ingest.register_sinks()
        register(
            "analytics.salts", timedelta(minutes=5), "tidings.analytics.tasks.delete_past_salts"
        )
        register("analytics.rollups", timedelta(hours=1), "tidings.analytics.tasks.roll_up")
