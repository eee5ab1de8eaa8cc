from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "tidings.media"
    label = "media"
    verbose_name = "Media library"

    def ready(self) -> None:
        from .personal_data import register_sources

        register_sources()
