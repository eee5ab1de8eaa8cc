from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "tidings.api"
    label = "api"
    verbose_name = "REST API and webhooks"

    def ready(self) -> None:
        from datetime import timedelta

        from tidings.lib.periodic import register

        from . import webhooks

        webhooks.connect_signals()
        from django.core.checks import register as register_check

        from .auth import check_route_permissions

        register_check(check_route_permissions, "security")
        from .personal_data import register_sources

        register_sources()  # the webhook log: in the access package, cleared by erasure
        # Retries of webhook deliveries that failed: a new event enqueues its own send at once.
        register(
            "api.webhooks-due",
            timedelta(seconds=30),
            "tidings.api.tasks.send_due_webhooks",
        )
        # Idempotency-Key answers of POST /api/tx are kept 24 hours (idempotency.py).
        register(
            "api.idempotency-keys",
            timedelta(hours=1),
            "tidings.api.tasks.prune_idempotency_keys",
        )
