from django.apps import AppConfig


class BookingConfig(AppConfig):
    name = "tidings.booking"
    label = "booking"
    verbose_name = "Demo booking"

    def ready(self) -> None:
        from datetime import timedelta

        from tidings.lib.periodic import register

        from .personal_data import register_sources

        register_sources()
        # Reminders before demos: every minute, so an hour's reminder goes within a minute of
        # its time (the query reads only the demos of the next day or so).
        register(
            "booking.reminders", timedelta(minutes=1), "tidings.booking.tasks.demo_reminders_task"
        )
