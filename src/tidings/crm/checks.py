"""System checks of the CRM's settings (``tidings check``, and at start-up)."""

from __future__ import annotations

from email.utils import parseaddr

from django.conf import settings
from django.core.checks import Error, register

from .business_hours import BadHours, parse


@register()
def check_crm_settings(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    try:
        parse(
            settings.TIDINGS_SUPPORT_HOURS,
            settings.TIME_ZONE,
            list(settings.TIDINGS_SUPPORT_CLOSED),
        )
    except BadHours as exc:
        errors.append(
            Error(
                f"TIDINGS_SUPPORT_HOURS / TIDINGS_SUPPORT_CLOSED: {exc}",
                hint='For example TIDINGS_SUPPORT_HOURS="mon-fri 09:00-17:30".',
                id="tidings.crm.E001",
            )
        )
    address = settings.TIDINGS_SUPPORT_ADDRESS
    if address and "@" not in parseaddr(address)[1]:
        errors.append(
            Error(
                "TIDINGS_SUPPORT_ADDRESS: not an email address",
                hint='For example "Support <support@example.com>".',
                id="tidings.crm.E002",
            )
        )
    if settings.TIDINGS_INBOUND_MAILBOX_URL:
        from tidings.campaigns.bounces.mailbox import MailboxError, parse_url

        try:
            parse_url(settings.TIDINGS_INBOUND_MAILBOX_URL)
        except MailboxError as exc:
            errors.append(
                Error(
                    str(exc).replace("TIDINGS_BOUNCE_MAILBOX_URL", "TIDINGS_INBOUND_MAILBOX_URL"),
                    id="tidings.crm.E003",
                )
            )
    return errors
