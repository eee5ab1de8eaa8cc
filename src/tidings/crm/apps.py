from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "tidings.crm"
    label = "crm"
    verbose_name = "CRM"

    def ready(self) -> None:
        from datetime import timedelta

        from django.conf import settings

        from tidings.lib.operator_mail import register_settings
        from tidings.lib.periodic import register

        from . import checks  # noqa: F401  (registers the system checks)
        from .emails import register as register_emails
        from .personal_data import register_conversation_sources, register_sources

        register_sources()
        register_conversation_sources()
        register_emails()
        # The mail about campaigns and journeys honours what each operator chose here.
        from .notifications import operator_mail_settings

        register_settings(operator_mail_settings)
        # Reminders (due today, overdue, first responses), digests after their hour, and any
        # notification a failed send left: every few minutes is prompt enough for all three.
        register("crm.periodic", timedelta(minutes=5), "tidings.crm.tasks.crm_periodic_task")
        # The support mailbox (when TIDINGS_INBOUND_MAILBOX_URL is set) and dropping old
        # unprocessed mail's bytes (always).
        register(
            "crm.inbound",
            timedelta(minutes=max(1, int(settings.TIDINGS_INBOUND_FETCH_MINUTES))),
            "tidings.crm.tasks.inbound_mailbox_task",
        )
