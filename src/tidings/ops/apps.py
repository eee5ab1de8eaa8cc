from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "tidings.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from . import journal

        # The erasure journal outlives the database: every erasure is appended to it, so a
        # restored backup can be cleaned of the people erased after it was taken.
        journal.connect()
