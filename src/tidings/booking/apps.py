from django.apps import AppConfig


class BookingConfig(AppConfig):
    name = "tidings.booking"
    label = "booking"
    verbose_name = "Demo booking"

    def ready(self) -> None:
        from .personal_data import register_sources

        register_sources()
