from django.apps import AppConfig


class RightsConfig(AppConfig):
    name = "tidings.rights"
    label = "rights"
    verbose_name = "Data-subject rights"

    def ready(self) -> None:
        from datetime import timedelta

        from tidings.lib.periodic import register

        # The retention sweep: daily is enough for periods counted in months and years (a record
        # goes within a day of its date), and a sweep with nothing to do costs a few queries.
        register("rights.retention", timedelta(days=1), "tidings.rights.tasks.run_retention_sweep")
        # Near-due reminders: hourly, so one goes out on the day a request enters its last week.
        register(
            "rights.near-due", timedelta(hours=1), "tidings.rights.tasks.remind_near_due_requests"
        )

        from .personal_data import register_sources

        register_sources()
