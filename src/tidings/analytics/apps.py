from datetime import timedelta

from django.apps import AppConfig

ROLLUP_EVERY = timedelta(minutes=5)  # how stale today's figures on the dashboard may be


class AnalyticsConfig(AppConfig):
    name = "tidings.analytics"
    label = "analytics"
    verbose_name = "Website analytics and cookie consent"

    def ready(self) -> None:
        from tidings.lib.periodic import register

        from . import ingest

        ingest.register_sinks()
        register(
            "analytics.salts", timedelta(minutes=5), "tidings.analytics.tasks.delete_past_salts"
        )
        # Every 5 minutes, not hourly: an operator who has just added the snippet looks at the
        # dashboard for their own first visits (it read "0 page views" for up to an hour).
        register("analytics.rollups", ROLLUP_EVERY, "tidings.analytics.tasks.roll_up")
